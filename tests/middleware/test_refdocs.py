"""The generated reference docs match the code, and their examples are what the code accepts
and answers (issue #18 part 7)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from starlette.applications import Starlette

from segmint.engine.events import EVENT_TYPES, decode_events
from segmint.engine.importer import CSV_COLUMNS, import_orders
from segmint.engine.stores.memory import MemoryStore
from segmint.engine.strategy import StrategyParams
from segmint.middleware import SegmintMiddleware
from segmint.middleware.endpoints import DEBUG_ONLY_KEYS
from segmint.middleware.refdocs import PAGES, main, stale
from segmint.middleware.refdocs._tables import struct_fields
from segmint.middleware.refdocs.events import EXAMPLES
from segmint.middleware.refdocs.imports import CSV_EXAMPLE, JSONL_EXAMPLE
from segmint.middleware.refdocs.strategies import builtin_strategies

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {name: render() for name, render in PAGES.items()}


@pytest.mark.parametrize("name", list(PAGES))
def test_each_generated_page_is_what_the_code_generates(name, pages):
    assert (DOCS / name).read_text(encoding="utf-8") == pages[name], (
        f"docs/{name} is stale: regenerate it with `make docs`")


def test_check_mode_lists_stale_pages_and_writing_mends_them(tmp_path, capsys):
    assert main([str(tmp_path), "--check"]) == 1
    assert "events.md is stale" in capsys.readouterr().out
    assert main([str(tmp_path)]) == 0
    assert stale(tmp_path) == []
    (tmp_path / "strategies.md").write_text("edited by hand\n")
    assert stale(tmp_path) == ["strategies.md"]


# -- events -----------------------------------------------------------------------------------
def section(page: str, heading: str) -> str:
    """The text of a page from ``heading`` to the next heading of the same level."""
    level = heading.split(" ")[0]
    start = page.index(heading + "\n")
    end = page.find("\n" + level + " ", start + len(heading))
    return page[start:end if end != -1 else None]


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_each_event_example_decodes_with_the_real_decoder(name):
    events, errors = decode_events(json.dumps(EXAMPLES[name]).encode())
    assert errors == [] and [type(e) for e in events] == [EVENT_TYPES[name]]


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_each_event_type_has_a_section_with_every_field(name, pages):
    text = section(pages["events.md"], f"## `{name}`")
    common = section(pages["events.md"], "## Fields of every event")
    for field in msgspec.structs.fields(EVENT_TYPES[name]):
        assert re.search(rf"^\| `{field.encode_name}` \|", text + common, re.M), f"{name}.{field.name}"
    assert json.dumps(EXAMPLES[name], indent=2) in text


def test_the_intake_answers_on_the_page_are_the_real_intakes(pages):
    text = section(pages["events.md"], "## The intake: `POST /_segmint/events`")
    answers = re.findall(r"^Answer: `(\d+)`$", text, re.M)
    assert answers == ["200", "200", "200", "400", "400", "400", "401"]
    all_rejected = section(text, "### every event invalid: nothing stored")
    assert '"stored": 0' in all_rejected and '"index": 0' in all_rejected
    assert '"error": "every event was rejected (1); nothing was stored"' in all_rejected
    unknown = section(text, "### an unknown type: the valid types are listed")
    assert "valid types: page_view, product_view, cart_update" in unknown


def test_a_field_without_a_meaning_stops_the_generator():
    class Undocumented(msgspec.Struct):
        known: Annotated[int, msgspec.Meta(description="Documented.")] = 0
        mystery: int = 0

    with pytest.raises(ValueError, match="Undocumented.mystery has no Meta"):
        struct_fields(Undocumented)


# -- strategies -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(builtin_strategies()))
def test_each_strategy_param_is_documented_with_its_default(name, pages):
    strategy = builtin_strategies()[name]
    own = section(pages["strategies.md"], f"## `{name}`")
    common = section(pages["strategies.md"], "## Params every strategy takes")
    common_rows = {f.name: f for f in struct_fields(StrategyParams)}
    for f in struct_fields(strategy.Params, inherit_from=StrategyParams):
        where = common if common_rows.get(f.name) == f else own
        assert re.search(rf"^\| `{f.name}` \| [^|]* \| {re.escape(f.default)} \|", where, re.M), f"{name}.{f.name}"


def test_a_default_a_strategy_changes_is_shown_in_its_own_section(pages):
    cart = section(pages["strategies.md"], "## `cart_reminder`")
    assert re.search(r"^\| `exclude_in_cart` \| boolean \| `false` \|", cart, re.M)
    assert re.search(r"^\| `exclude_in_cart` \| boolean \| `true` \|", pages["strategies.md"], re.M)


# -- imports ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,text", [("orders.csv", CSV_EXAMPLE), ("orders.jsonl", JSONL_EXAMPLE)])
def test_the_import_examples_import(name, text, tmp_path):
    path = tmp_path / name
    path.write_text(text)
    store = MemoryStore()
    report = import_orders(path, store)
    assert (report.orders, report.rejected_count) == (2, 0)
    assert store.load(customer_id="c-42").orders == 1


def test_every_csv_column_has_a_row(pages):
    for column in CSV_COLUMNS:
        assert re.search(rf"^\| `{column}` \| (yes|no) \|", pages["imports.md"], re.M), column


# -- /recommendations -------------------------------------------------------------------------
def documented_slot_keys(page: str) -> set[str]:
    return set(re.findall(r"^\| `(\w+)` \|", section(page, "### A slot"), re.M))


@pytest.mark.parametrize("debug", [False, True])
def test_the_documented_slot_keys_are_the_real_endpoints(debug, make_runtime, mw, pages):
    app = SegmintMiddleware(Starlette(), runtime=make_runtime(debug=debug))
    with mw.TestClient(app) as client:
        answer: Any = client.get("/_segmint/recommendations?slot=cart&slot=nowhere&path=/cart").json()
    documented = documented_slot_keys(pages["recommendations.md"])
    for slot in answer["slots"].values():
        expected = documented if debug else documented - set(DEBUG_ONLY_KEYS)
        assert set(slot) == expected
        for product in slot["products"]:
            assert set(product) <= set(re.findall(r"^\| `(\w+)` \|", section(pages["recommendations.md"],
                                                                            "### A product"), re.M))
