"""docs/config.md documents every key of the published config schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segmint.engine.config import config_json_schema

DOC = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
SCHEMA = config_json_schema()
KEYS = sorted({(struct, key) for struct, d in SCHEMA["$defs"].items() for key in d.get("properties", {})})


@pytest.mark.parametrize("struct,key", KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_every_schema_key_has_a_table_row(struct, key):
    if struct == "Config" and key not in ("plugins",):  # sections have their own heading
        heading = {"segments": "[segments.NAME]", "campaigns": "[[campaigns]]"}.get(key, f"[{key}]")
        assert f"## `{heading}`" in DOC, f"docs/config.md has no section for {heading}"
        return
    assert re.search(rf"^\| `{re.escape(key)}` \|", DOC, re.M), f"{struct}.{key} is not documented in docs/config.md"


def test_the_documented_defaults_match_the_schema():
    for section in ("middleware", "cache", "stats", "identity", "api", "store"):
        defaults = SCHEMA["$defs"]["Config"]["properties"][section]["default"]
        for key, value in defaults.items():
            if isinstance(value, (bool, int, float, str)) and not isinstance(value, list):
                shown = {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else value
                if isinstance(shown, float) and shown.is_integer():
                    shown = int(shown)
                text = f'"{shown}"' if isinstance(value, str) else str(shown)
                row = re.search(rf"^\| `{key}` \|[^|]*\| `?([^|`]*)`? \|", DOC, re.M)
                assert row and row.group(1) == text, f"[{section}] {key}: docs say {row and row.group(1)!r}, schema {text}"


SCENARIO_DOCS = sorted((Path(__file__).resolve().parents[1] / "docs" / "scenarios").glob("[0-9]_*.md"))


@pytest.mark.parametrize("page", SCENARIO_DOCS, ids=lambda p: p.name)
def test_each_scenario_page_shows_its_example_config_verbatim(page):
    root = Path(__file__).resolve().parents[1]
    config = (root / "examples" / "scenarios" / (page.stem + ".toml")).read_text().rstrip()
    assert f"```toml\n{config}\n```" in page.read_text()


def test_there_is_a_page_per_scenario():
    assert len(SCENARIO_DOCS) == 5
