"""Reference docs generated from the code, so that they cannot drift from it.

``PAGES`` maps each generated file under ``docs/`` to the function that renders it from the
code: structs' fields, types, defaults and ``Meta(description=...)``, docstrings, and the
answers of the real endpoints of an example shop. ``make docs`` (``python -m
segmint.middleware.refdocs docs``) writes them; ``--check`` lists the stale ones instead,
and a test fails when a file differs from what the code generates.

Hand-written prose stays out of these files: it belongs in the other pages of ``docs/``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from segmint.engine.config import config_json_schema
from segmint.engine.field_table import fields_markdown

from .events import events_markdown
from .imports import imports_markdown
from .recommendations import recommendations_markdown
from .strategies import strategies_markdown

__all__ = ["PAGES", "generate", "stale", "main"]


def _config_schema() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"


#: Each generated file, relative to ``docs/``, and what renders it.
PAGES: dict[str, Callable[[], str]] = {
    "config.schema.json": _config_schema,
    "fields.md": fields_markdown,
    "events.md": events_markdown,
    "imports.md": imports_markdown,
    "strategies.md": strategies_markdown,
    "recommendations.md": recommendations_markdown,
}


def generate() -> dict[str, str]:
    """Every generated page's text, by file name."""
    return {name: render() for name, render in PAGES.items()}


def stale(docs: Path, pages: dict[str, str] | None = None) -> list[str]:
    """Names of the pages whose file in ``docs`` differs from ``pages`` (default: generated)."""
    pages = generate() if pages is None else pages
    return [name for name, text in pages.items()
            if not (docs / name).is_file() or (docs / name).read_text(encoding="utf-8") != text]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated pages into a docs folder, or with ``--check`` list stale ones."""
    parser = argparse.ArgumentParser(prog="python -m segmint.middleware.refdocs", description=main.__doc__)
    parser.add_argument("docs", type=Path, help="the docs folder, e.g. docs")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    pages = generate()
    outdated = stale(args.docs, pages)
    for name in outdated:
        if args.check:
            print(f"{args.docs / name} is stale: run make docs")
        else:
            (args.docs / name).write_text(pages[name], encoding="utf-8")
            print(f"wrote {args.docs / name}")
    return 1 if args.check and outdated else 0
