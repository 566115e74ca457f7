"""Every name the docs and the README import from segmint exists where they import it from.

Plugin authors and shop developers copy these lines (docs/plugins.md above all); moving a
module or a name must keep them working (a re-export) or change the docs with it."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_LINE = re.compile(r"^\s*from (segmint[\w.]*) import ([\w, ]+)$", re.M)


def _imports(path: Path) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for block in _BLOCK.findall(path.read_text()):
        try:
            tree = ast.parse(block)
        except SyntaxError:  # an excerpt: its one-line imports still count
            found.update((module, name.strip()) for module, names in _LINE.findall(block)
                         for name in names.split(",") if name.strip())
            continue
        found.update((node.module, alias.name) for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segmint")
                     for alias in node.names)
    return found


DOCUMENTED = sorted({(str(path.relative_to(ROOT)), module, name)
                     for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
                     for module, name in _imports(path)})


def test_the_docs_import_something():
    assert len(DOCUMENTED) > 20
    assert ("docs/plugins.md", "segmint.engine", "hookimpl") in DOCUMENTED


@pytest.mark.parametrize(("doc", "module", "name"), DOCUMENTED)
def test_a_documented_import_works(doc, module, name):
    assert hasattr(importlib.import_module(module), name), f"{doc}: from {module} import {name}"
