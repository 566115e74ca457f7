"""docs/config.md documents every key and default of the config structs and the common strategy params."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from segmint.engine.config import schema as config_schema
from segmint.engine.config import config_json_schema
from segmint.engine.strategy import StrategyParams

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
    for section in ("middleware", "cache", "stats", "analytics", "identity", "api", "store", "render"):
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
    assert len(SCENARIO_DOCS) == 6


# -- every default of every config struct, in its section's table -----------------------------
# Each config struct and the heading of its table in docs/config.md (a new struct needs one).
SECTIONS = {
    "Config": "## Top level", "StoreConfig": "## `[store]`", "IdentityConfig": "## `[identity]`",
    "ApiConfig": "## `[api]`", "CatalogConfig": "## `[catalog]`", "Segment": "## `[segments.NAME]`",
    "Campaign": "## `[[campaigns]]`", "Coupon": "### `coupon`, `schedule`, `frequency_cap`",
    "Schedule": "### `coupon`, `schedule`, `frequency_cap`",
    "FrequencyCap": "### `coupon`, `schedule`, `frequency_cap`", "Variant": "### `variants`",
    "MiddlewareConfig": "## `[middleware]`", "CacheConfig": "## `[cache]`", "RenderConfig": "## `[render]`",
    "StatsConfig": "## `[stats]`", "AnalyticsConfig": "## `[analytics]`",
}
CONFIG_STRUCTS = [cls for name, cls in vars(config_schema).items()
                  if isinstance(cls, type) and issubclass(cls, config_schema.ConfigBase)
                  and cls is not config_schema.ConfigBase]
FIELDS = [(cls, f) for cls in CONFIG_STRUCTS for f in msgspec.structs.fields(cls)
          if f.name not in config_schema.LOADER_FIELDS and not (cls is config_schema.Config and f.name != "plugins")]


def doc_section(heading: str) -> str:
    level = heading.split(" ")[0]
    start = DOC.index(heading + "\n")
    end = DOC.find("\n" + level + " ", start + len(heading))
    return DOC[start:end if end != -1 else None]


def literal(value: object) -> str | None:
    """How docs/config.md writes a default, or None when words describe it (a long list)."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)):
        return f"`{value}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if value in ([], {}, ()):
        return "`[]`" if isinstance(value, (list, tuple)) else "`{}`"
    return None


@pytest.mark.parametrize("cls,field", FIELDS, ids=[f"{c.__name__}.{f.name}" for c, f in FIELDS])
def test_every_config_default_is_in_its_table(cls, field):
    assert cls.__name__ in SECTIONS, f"docs/config.md: which section documents {cls.__name__}? (SECTIONS)"
    row = re.search(rf"^\| `{field.encode_name}` \|[^|]*\| ([^|]*) \|", doc_section(SECTIONS[cls.__name__]), re.M)
    assert row, f"{cls.__name__}.{field.name} has no row in {SECTIONS[cls.__name__]}"
    shown = row.group(1)
    if field.required:
        assert shown == "required"
        return
    default = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
    expected = literal(default) if default is not None else None
    if expected is None:  # none, or described in words ("the campaign's", "common bots")
        assert shown != "required" and shown.strip(), f"{cls.__name__}.{field.name}: no default shown"
    else:
        assert shown.startswith(expected), f"{cls.__name__}.{field.name}: docs say {shown!r}, code {expected}"


def test_every_common_strategy_param_default_is_in_the_params_row():
    params = re.search(r"^\| `params` \|.*$", doc_section(SECTIONS["Campaign"]), re.M)
    assert params
    for field in msgspec.structs.fields(StrategyParams):
        shown = literal(field.default) if field.default is not None else "none"
        assert f"`{field.name}` = {shown}" in params.group(0), f"params row lacks `{field.name}` = {shown}"


def test_the_strategy_defaults_the_params_row_names_are_the_strategies():
    from segmint.middleware.refdocs.strategies import builtin_strategies

    strategies = builtin_strategies()
    row = re.search(r"^\| `params` \|.*$", doc_section(SECTIONS["Campaign"]), re.M).group(0)
    named = re.findall(r"`(\w+)` has `(\w+)` = (`[^`]+`)", row)
    assert named
    for strategy, param, shown in named:
        default = next(f.default for f in msgspec.structs.fields(strategies[strategy].Params) if f.name == param)
        assert literal(default) == shown, f"{strategy}.{param}: docs say {shown}, code {literal(default)}"


# -- the catalog formats and the dates of docs/config.md are the code's ---------------------------


def _block(lang: str) -> str:
    match = re.search(rf"^```{lang}\n(.*?)^```$", DOC, re.M | re.S)
    assert match, f"docs/config.md has no {lang} block"
    return match.group(1)


def test_the_product_field_table_lists_the_product_struct():
    from segmint.engine.catalog import FIELD_EXAMPLES, Product

    section = DOC[DOC.index("| field | type | required | meaning |"):]
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| (yes|no) \|", section[:section.index("\n\n")], re.M)
    fields = msgspec.structs.fields(Product)
    assert rows == [(f.name, "yes" if f.required else "no") for f in fields]
    assert set(FIELD_EXAMPLES) == {f.name for f in fields}


def test_the_json_and_csv_catalog_examples_load_alike(tmp_path):
    from segmint.engine.catalog import load_catalog_file

    (tmp_path / "catalog.json").write_text(_block("json"))
    (tmp_path / "catalog.csv").write_text(_block("csv"))
    from_json, from_csv = (load_catalog_file(tmp_path / name) for name in ("catalog.json", "catalog.csv"))
    assert from_json.problems == () and from_csv.problems == ()
    assert list(from_json) == list(from_csv) and len(from_json) == 2


def test_the_dates_table_is_what_the_parser_reads():
    from segmint.engine.dates import parse_instant

    section = DOC[DOC.index("## Dates"):]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", section, re.M)
    assert len(rows) >= 6
    for written, meaning in rows:
        assert parse_instant(written) == parse_instant(meaning) is not None, written
