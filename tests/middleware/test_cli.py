"""The ``segmint`` CLI: exit codes, every problem reported, no tracebacks, JSON output."""

from __future__ import annotations

import contextlib
import argparse
import json
import re
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine.config import config_json_schema, load_config
from segmint.engine.events import Order, OrderItem
from segmint.engine.runtime import Segmint
from segmint.middleware.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLE_CONFIGS = [EXAMPLES / "segmint.toml", *sorted((EXAMPLES / "scenarios").glob("*.toml"))]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("config", EXAMPLE_CONFIGS, ids=lambda p: p.name)
def test_check_is_clean_on_every_example(capsys, config):
    code, out, err = run(capsys, "check", str(config))
    assert code == 0, out + err
    assert out.startswith("ok")
    assert "campaigns" in out


def test_check_json_summary_lists_segments_campaigns_and_slots(capsys):
    code, out, _ = run(capsys, "check", str(EXAMPLES / "segmint.toml"), "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True
    assert "lapsed_vip" in data["segments"]
    assert "winback-vip" in data["campaigns"]
    assert {"home", "cart", "pdp"} <= set(data["slots"])


def write_config(tmp_path: Path, body: str) -> Path:
    shutil.copy(EXAMPLES / "catalog.json", tmp_path / "catalog.json")
    path = tmp_path / "segmint.toml"
    path.write_text('[store]\npath = ":memory:"\n[catalog]\npath = "catalog.json"\n' + body)
    return path


BAD_INPUTS = {
    "unknown key": ('[[campaigns]]\nid = "a"\nslots = ["home"]\nstrategy = "bestsellers"\nsegmnt = "x"\n',
                    "segmnt", "segment"),
    "unknown strategy": ('[[campaigns]]\nid = "a"\nslots = ["home"]\nstrategy = "bestseller"\n',
                         "bestseller", "bestsellers"),
    "unknown segment": ('[segments.vips]\nfilter = {"spend.total" = {"$gte" = 1}}\n'
                        '[[campaigns]]\nid = "a"\nslots = ["home"]\nstrategy = "bestsellers"\nsegment = "vip"\n',
                        "vip", "vips"),
    "unknown field": ('[segments.a]\nfilter = \'{"orders.cont": {"$gte": 1}}\'\n', "orders.cont", "orders.count"),
    "wrong type": ('[[campaigns]]\nid = "a"\nslots = "home"\nstrategy = "bestsellers"\n', "slots", None),
    "bad param": ('[[campaigns]]\nid = "a"\nslots = ["home"]\nstrategy = "bestsellers"\nparams = { limt = 3 }\n',
                  "limt", "limit"),
    "placeholder date": ('[segments.a]\nfilter = \'{"customer_segment.last_purchase_date": {"$lte": "yyyy-mm-dd"}}\'\n',
                         "yyyy-mm-dd", None),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_check_reports_bad_input_with_location_and_exit_1(capsys, tmp_path, name):
    body, needle, suggestion = BAD_INPUTS[name]
    config = write_config(tmp_path, body)
    code, out, err = run(capsys, "check", str(config))
    assert code == 1
    assert "Traceback" not in out + err
    assert "segmint.toml" in out and needle in out
    if suggestion:
        assert f"did you mean {suggestion!r}" in out


def test_counts_are_singular_for_one(capsys, tmp_path):
    config = write_config(tmp_path, BAD_INPUTS["unknown strategy"][0])
    code, out, _ = run(capsys, "check", str(config))
    assert code == 1 and "1 problem found" in out
    config = write_config(tmp_path, '[segments.a]\nfilter = {"spend.total" = {"$gte" = 1}}\n'
                                    '[[campaigns]]\nid = "c"\nslots = ["home"]\nstrategy = "bestsellers"\n')
    code, out, _ = run(capsys, "check", str(config))
    assert code == 0 and "1 segment, 1 campaign, 1 slot (home)" in out


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"segmint {version('segmint')}"


def _arguments(parser: argparse.ArgumentParser, prefix: str = "segmint"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _arguments(sub, f"{prefix} {name}")
        elif action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
            yield f"{prefix} {'/'.join(action.option_strings) or action.dest}", action.help


def test_every_argument_has_help_text():
    arguments = list(_arguments(build_parser()))
    assert len(arguments) > 30
    assert [name for name, help in arguments if not help] == []


def test_check_warns_when_no_identity_secret_is_set(capsys, tmp_path):
    # Valid, but visitors get no cookie: a silent mode made loud (exit code stays 0).
    config = write_config(tmp_path, "")
    code, out, _ = run(capsys, "check", str(config))
    assert code == 0 and out.startswith("ok")
    assert "warning: no [identity] secret: anonymous visitors will get no cookie and no personalization" in out
    code, out, _ = run(capsys, "check", str(config), "--json")
    assert code == 0 and json.loads(out)["warnings"][0].startswith("no [identity] secret")
    config.write_text(config.read_text() + '[identity]\nsecret = "0123456789abcdef0123"\n')
    code, out, _ = run(capsys, "check", str(config), "--json")
    assert code == 0 and json.loads(out)["warnings"] == []


def test_check_json_lists_problems_with_path(capsys, tmp_path):
    config = write_config(tmp_path, BAD_INPUTS["unknown strategy"][0])
    code, out, _ = run(capsys, "check", str(config), "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert data["problems"][0]["path"] == "$.campaigns[0].strategy"
    assert data["problems"][0]["suggestion"] == "bestsellers"


def test_check_lists_each_bad_product_and_exits_1(capsys, tmp_path):
    config = write_config(tmp_path, "")
    products = json.loads((tmp_path / "catalog.json").read_text())
    products[1]["price"] = "cheap"
    products[3]["created_at"] = "someday"
    (tmp_path / "catalog.json").write_text(json.dumps(products, indent=1))
    code, out, err = run(capsys, "check", str(config))
    assert code == 1 and "Traceback" not in out + err
    lines = out.splitlines()
    assert len(lines) == 3 and lines[-1] == "2 problems found"
    assert "catalog.json:" in lines[0] and f"$[1].price: bad product {products[1]['sku']!r}" in lines[0]
    assert f"$[3].created_at: bad product {products[3]['sku']!r}: 'someday' is not a date" in lines[1]
    code, out, _ = run(capsys, "check", str(config), "--json")
    data = json.loads(out)
    assert code == 1 and [p["path"] for p in data["problems"]] == ["$[1].price", "$[3].created_at"]
    assert all(p["line"] and p["file"].endswith("catalog.json") for p in data["problems"])


def test_missing_config_file_is_an_error_not_a_traceback(capsys, tmp_path):
    code, out, err = run(capsys, "check", str(tmp_path / "nope.toml"))
    assert code == 1
    assert "nope.toml" in out + err
    assert "Traceback" not in out + err


def test_schema_prints_the_published_json_schema(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(config_json_schema()))


NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


def lapsed_vip_orders(customer: str) -> list[dict]:
    return [
        {"type": "order", "customer_id": customer, "order_id": f"{customer}-{i}",
         "at": (NOW - timedelta(days=60 + i * 10)).isoformat(), "total": 700.0,
         "items": [{"sku": "FA-DRS-002", "category": "dresses", "quantity": 1, "price": 700.0, "discount": 0}]}
        for i in range(3)
    ]


@pytest.fixture()
def seeded_config(tmp_path):
    """The demo config on a SQLite file holding one lapsed VIP and one small buyer."""
    shutil.copy(EXAMPLES / "catalog.json", tmp_path / "catalog.json")
    text = (EXAMPLES / "segmint.toml").read_text()
    config = tmp_path / "segmint.toml"
    db = tmp_path / "shop.db"
    import re

    text = re.sub(r'(?m)^path = ".*\.db"$|^path = ":memory:"$', f'path = "{db}"', text, count=1)
    config.write_text(text)
    rt = Segmint.from_config(config, watch=False, clock=lambda: NOW)
    try:
        rt.record(lapsed_vip_orders("vip-1"))
        # Another customer bought the VIP's dress with a cardigan: the win-back picks need peers.
        rt.record([{"type": "order", "customer_id": "peer-1", "order_id": "p1", "at": (NOW - timedelta(days=5)).isoformat(),
                    "total": 294.0, "items": [
                        {"sku": "FA-DRS-002", "category": "dresses", "quantity": 1, "price": 159.0, "discount": 0},
                        {"sku": "FA-KNT-002", "category": "knitwear", "quantity": 1, "price": 135.0, "discount": 0}]}])
        rt.record([{"type": "order", "customer_id": "small-1", "order_id": "s1", "at": (NOW - timedelta(days=3)).isoformat(),
                    "total": 20.0, "items": [{"sku": "FA-DRS-001", "category": "dresses", "quantity": 1,
                                               "price": 20.0, "discount": 0}]}])
    finally:
        rt.close()
    return config


def test_explain_names_the_segment_and_the_failing_clause(capsys, seeded_config):
    code, out, err = run(capsys, "explain", str(seeded_config), "--customer", "small-1", "--slot", "home")
    assert code == 0, err
    lapsed = next(line for line in out.splitlines() if line.startswith("lapsed_vip"))
    assert "no" in lapsed
    assert "spend.total" in lapsed and "20" in lapsed  # the failing clause with the actual value
    assert "home:" in out


def test_explain_json_for_a_matching_customer(capsys, seeded_config):
    code, out, _ = run(capsys, "explain", str(seeded_config), "--customer", "vip-1", "--slot", "home", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["segments"]["lapsed_vip"]["matched"] is True
    assert data["document"]["spend"]["total"] == pytest.approx(2100.0)
    home = data["decision"]["slots"]["home"]
    assert home["campaign"] == "winback-vip"
    if not home["control"]:
        assert "FA-KNT-002" in [p["sku"] for p in home["products"]]


def test_audience_counts_members_and_samples(capsys, seeded_config):
    code, out, _ = run(capsys, "audience", str(seeded_config), "lapsed_vip", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["members"] == 1 and data["profiles"] == 3
    assert [s["key"] for s in data["sample"]] == ["c:vip-1"]


def test_audience_unknown_segment_suggests_and_lists_the_known_ones(capsys, seeded_config):
    code, out, err = run(capsys, "audience", str(seeded_config), "lapsed_vips")
    assert code == 1
    assert "did you mean 'lapsed_vip'" in err
    assert "discount_seekers, frequent_low_spenders, frequent_low_value_buyers" in err


def test_explain_rounds_numbers_for_people(capsys, seeded_config):
    code, out, err = run(capsys, "explain", str(seeded_config), "--customer", "small-1", "--slot", "home")
    assert code == 0, err
    assert not re.search(r"\de-\d", out), "a number in scientific notation"
    assert re.search(r"(?m)^days_since_last_purchase +\d+\.\d$", out)  # days to a tenth
    assert re.search(r"(?m)^spend\.total +20\.00$", out)
    lapsed = next(line for line in out.splitlines() if line.startswith("lapsed_vip"))
    assert "spend.total >= 2000 (actual: 20.00)" in lapsed


def test_import_reports_rejected_lines_and_stores_good_ones(capsys, seeded_config, tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,customer_id,at,sku,category,quantity,price,discount,coupon\n"
        "o1,imp-1,2026-10-01T10:00:00Z,FA-DRS-001,dresses,1,89,0,\n"
        "o1,imp-1,2026-10-01T10:00:00Z,FA-DRS-002,dresses,1,159,10,\n"
        "o2,imp-2,not-a-date,FA-DRS-001,dresses,1,89,0,\n"
    )
    code, out, _ = run(capsys, "import", str(seeded_config), str(orders))
    assert code == 1  # one rejected line
    assert "imported 1 order (3 lines)" in out and "1 rejected line:" in out
    assert (f"  {orders}:4: at: 'not-a-date' is not a date or time; write it like 2026-11-01, "
            "2026-11-01T10:30:00Z or 2026-11-01T12:30:00+02:00 (order skipped)") in out
    rt = Segmint.from_config(seeded_config, watch=False, clock=lambda: NOW)
    try:
        profile = rt.profile(customer_id="imp-1")
    finally:
        rt.close()
    assert profile.orders == 1 and profile.items == 2


def test_rfm_computes_thresholds(capsys, seeded_config):
    code, out, _ = run(capsys, "rfm", str(seeded_config), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["customers"] == 3
    assert len(data["recency_days"]) == 4


@pytest.fixture()
def churn_config(tmp_path):
    """Scenario 6 on a SQLite file holding 120 customers (every third buys again) and a VIP
    who still buys every 20 days; the runtime that stored them fitted the model."""
    shutil.copy(EXAMPLES / "catalog.json", tmp_path / "catalog.json")
    config = tmp_path / "segmint.toml"
    text = (EXAMPLES / "scenarios" / "6_vip_churn.toml").read_text()
    config.write_text(text.replace('path = ":memory:"', f'path = "{tmp_path / "shop.db"}"')
                      .replace('path = "../catalog.json"', 'path = "catalog.json"'))

    def orders(customer, days_ago, price=100.0):
        return [{"type": "order", "customer_id": customer, "order_id": f"{customer}-{d}",
                 "at": (datetime.now(timezone.utc) - timedelta(days=d)).isoformat(),
                 "items": [{"sku": "FA-DRS-001", "quantity": 1, "price": price}]} for d in days_ago]

    rt = Segmint.from_config(config, watch=False)
    try:
        for i in range(120):  # a population to fit: every third customer buys again
            first = 20 + (i * 37) % 330
            rt.record(orders(f"c{i}", [first - k * 15 for k in range(1 + (i % 5 if i % 3 == 0 else 0))]))
        rt.record(orders("vip-active", [3 + 20 * k for k in range(8)], price=400.0))
    finally:
        rt.close()
    return config


def test_explain_shows_the_predictive_fields_and_the_churn_clause(capsys, churn_config):
    """Once the batch job has fitted the model, `explain` prints a customer's predict.* values
    and why a still-active VIP is not at risk."""
    code, out, err = run(capsys, "explain", str(churn_config), "--customer", "vip-active", "--slot", "home")
    assert code == 0, err
    assert re.search(r"(?m)^predict\.p_alive +0\.\d\d$", out)
    assert re.search(r"(?m)^predict\.value_90d +\d+\.\d\d$", out)
    at_risk = next(line for line in out.splitlines() if line.startswith("vip_churn_risk"))
    assert "predict.p_alive < 0.3 (actual: 0." in at_risk


def test_predict_refits_and_prints_the_parameters(capsys, churn_config):
    code, out, err = run(capsys, "predict", str(churn_config), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["customers"] == 121 and set(data["bgnbd"]) == {"r", "alpha", "a", "b", "log_likelihood"}
    code, out, _ = run(capsys, "predict", str(churn_config))
    assert code == 0 and "fitted over 121 customers" in out
    assert re.search(r"BG/NBD \(purchases\) +r \d+\.\d{4}, alpha \d+\.\d{4}", out)


def test_predict_with_too_few_customers_says_what_a_fit_needs(capsys, seeded_config):
    code, out, _ = run(capsys, "predict", str(seeded_config))  # 3 customers
    assert code == 0 and "no model fitted: a fit needs 100 customers with orders" in out


def test_predict_without_scipy_names_the_extra(capsys, seeded_config, monkeypatch):
    from segmint.engine import predict

    predict._scipy.cache_clear()
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    try:
        code, _, err = run(capsys, "predict", str(seeded_config))
    finally:
        monkeypatch.undo()
        predict._scipy.cache_clear()
    assert code == 1 and 'error: predictive fields need scipy: pip install "segmint[predict]"' in err


def test_fold_compacts_the_log_into_the_rows_once(capsys, seeded_config):
    code, out, _ = run(capsys, "fold", str(seeded_config), "--json")
    first = json.loads(out)
    assert code == 0 and first["folded"] > 0 and first["waiting"] == 0
    code, out, _ = run(capsys, "fold", str(seeded_config))
    assert code == 0 and out.strip() == "folded 0 events into profiles; 0 waiting"


def test_fold_keeps_the_reports_duckdb_projection_current(capsys, seeded_config):
    """With ``[analytics] reader = "duckdb"`` the compactor also appends what was logged to the
    reports' projection once a report has built it (the serving processes do it too)."""
    duckdb = pytest.importorskip("duckdb")
    from segmint.engine.analytics import build_report
    from segmint.engine.analytics.columnar import projection_path
    from segmint.engine.stores import SQLiteStore

    seeded_config.write_text(seeded_config.read_text() + '\n[analytics]\nreader = "duckdb"\n')
    db = str(seeded_config.parent / "shop.db")
    store = SQLiteStore(db)
    try:
        build_report(store, now=NOW, checkpoint=False, analysis=load_config(seeded_config).analytics)
        store.append([Order(order_id="after", customer_id="vip-1", at=NOW, items=[OrderItem(sku="FA-DRS-001",
                                                                                          price=20.0)])])
        newest = store.event_fingerprint(float("inf"))[1]
    finally:
        store.close()
    with duckdb.connect(projection_path(db)) as duck:
        assert duck.execute("SELECT projected_to FROM projection").fetchone()[0] < newest
    code, _, _ = run(capsys, "fold", str(seeded_config))
    with duckdb.connect(projection_path(db)) as duck:
        assert code == 0 and duck.execute("SELECT projected_to FROM projection").fetchone()[0] == newest
        assert duck.execute("SELECT count(*) FROM events WHERE id = ?", [newest]).fetchone()[0] == 1


def test_fold_on_a_store_that_folds_on_append_is_a_clear_error(capsys, tmp_path, monkeypatch):
    import segmint.middleware.cli_commands as commands

    class FoldsOnAppend:
        url = "redis://cache:6379/0"

        def close(self):
            pass

    monkeypatch.setattr(commands, "config_store", lambda config: contextlib.nullcontext(FoldsOnAppend()))
    code, _, err = run(capsys, "fold", str(tmp_path / "segmint.toml"))
    assert code == 1 and "nothing to compact" in err and "redis://cache:6379/0" in err
