"""``segmint report`` and ``segmint segments``: tables, JSON, CSV and clear errors."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine.events import Click, Impression, Order, OrderItem
from segmint.engine.stores import SQLiteStore
from segmint.middleware.cli import main

ROOT = Path(__file__).resolve().parents[2]
# The CLI reports up to the wall clock, so the traffic is placed in the recent past.
START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=20)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def config(tmp_path):
    shutil.copy(ROOT / "examples" / "catalog.json", tmp_path / "catalog.json")
    db = tmp_path / "shop.db"
    path = tmp_path / "segmint.toml"
    path.write_text(f'[store]\npath = "{db}"\n[catalog]\npath = "catalog.json"\n'
                    '[segments.buyers]\nfilter = {"orders.count" = {"$gte" = 1}}\n'
                    '[segments.big]\nfilter = {"spend.total" = {"$gte" = 40}}\n')
    rng = random.Random(5)
    events = []
    for i in range(2000):
        variant = ("control", "B")[i % 2]
        at = START + timedelta(minutes=5 * i)
        events.append(Impression(campaign="winback", variant=variant, visitor_id=f"v{i}", at=at,
                                 skus=[] if variant == "control" else ["s1"]))
        if i % 10 == 0:
            events.append(Click(campaign="winback", variant=variant, visitor_id=f"v{i}", at=at))
        if rng.random() < (0.03 if variant == "control" else 0.09):
            events.append(Order(order_id=f"o{i}", visitor_id=f"v{i}", at=at + timedelta(hours=1),
                                items=[OrderItem(sku="s1", price=20.0 + i % 50)]))
    events.append(Impression(campaign="banner", variant="default", visitor_id="v1", at=START))
    store = SQLiteStore(str(db))
    store.append(sorted(events, key=lambda e: e.at))
    store.close()
    return path


def test_report_table_names_every_campaign_and_the_verdict(capsys, config):
    code, out, err = run(capsys, "report", str(config))
    assert code == 0, err
    assert "campaign winback" in out and "campaign banner" in out
    assert "B: B beats control by" in out and "significant" in out
    assert "default: no control variant: lift cannot be measured" in out


def test_report_json(capsys, config):
    code, out, _ = run(capsys, "report", str(config), "--json", "--campaign", "winback", "--window", "3")
    data = json.loads(out)
    assert code == 0 and data["window_days"] == 3
    (campaign,) = data["campaigns"]
    control, b = campaign["variants"]
    assert (control["variant"], b["variant"]) == ("control", "B")
    assert control["visitors"] == b["visitors"] == 1000
    assert b["lift"]["significant"] is True and b["lift"]["relative"] > 0


def test_report_shows_revenue_lifts_and_the_engine_is_chosen_per_report(capsys, config):
    code, out, err = run(capsys, "report", str(config))
    assert code == 0, err
    assert "revenue/visitor +" in out and "AOV " in out
    code, out, err = run(capsys, "report", str(config), "--engine", "bayesian")
    assert code == 0, err
    assert "chance to beat control" in out and "Bayesian" in out
    code, out, _ = run(capsys, "report", str(config), "--json", "--engine", "bayesian")
    data = json.loads(out)
    b = data["campaigns"][1]["variants"][1]
    assert data["analysis"]["engine"] == "bayesian" and b["lift"]["chance_to_win"] > 0.975
    assert b["revenue_lift"]["relative"] > 0 and b["revenue_guardrail"] is False
    assert data["campaigns"][1]["multi_arm_visitors"] == 0
    (config.parent / "bayes.toml").write_text(config.read_text() + '[analytics]\nengine = "bayesian"\n')
    code, out, _ = run(capsys, "report", str(config.parent / "bayes.toml"), "--engine", "frequentist", "--json")
    assert json.loads(out)["campaigns"][1]["variants"][1]["lift"]["chance_to_win"] is None


def test_report_csv_and_since(capsys, config):
    code, out, _ = run(capsys, "report", str(config), "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["campaign"], r["variant"]) for r in rows] == [
        ("banner", "default"), ("winback", "control"), ("winback", "B")]
    since = (START + timedelta(days=3)).date().isoformat()
    code, out, _ = run(capsys, "report", str(config), "--csv", "--since", since)
    later = {r["variant"]: int(r["visitors"]) for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and 0 < later["B"] < 1000


def test_report_flags_a_sample_ratio_mismatch_and_states_its_method(capsys, config):
    # The log splits winback 1:1; a config that says 1:3 makes that a mismatch.
    config.write_text(config.read_text() + '[[campaigns]]\nid = "winback"\nslots = ["home"]\n'
                      'strategy = "bestsellers"\nvariants = [{ name = "holdout", control = true, weight = 1 },'
                      ' { name = "B", weight = 3 }]\n[analytics]\nsequential = false\n')
    code, out, err = run(capsys, "report", str(config), "--campaign", "winback")
    assert code == 0, err
    assert "SAMPLE RATIO MISMATCH" in out and "must not be trusted" in out
    assert "B: do not trust (sample ratio mismatch): B beats control by" in out
    assert "method: relative lift" in out and "fixed horizon" in out
    code, out, _ = run(capsys, "report", str(config), "--json", "--campaign", "winback")
    (campaign,) = json.loads(out)["campaigns"]
    assert campaign["trusted"] is False and campaign["srm"]["expected"] == {"control": 0.25, "B": 0.75}


def test_report_resumes_from_saved_state_and_fresh_reads_everything(capsys, config, monkeypatch):
    from segmint.engine.analytics import checkpoint

    monkeypatch.setattr(checkpoint, "MIN_EVENTS", 1)
    code, first, err = run(capsys, "report", str(config), "--json")  # saves the report state
    assert code == 0, err
    store = SQLiteStore(str(config.parent / "shop.db"))  # under the name the report page resumes from
    assert store.get_meta(checkpoint.ReportCheckpoint(store, window_days=7.0, campaign=None, since=None).meta_name)
    store.close()
    from segmint.engine.analytics.eventlog import SQLiteAttributionLog

    reads = []
    original = SQLiteAttributionLog.attribution_rows  # how a report reads a SQLite store's log

    def counted(self, **options):
        for row in original(self, **options):
            reads.append(row)
            yield row

    monkeypatch.setattr(SQLiteAttributionLog, "attribution_rows", counted)
    code, resumed, _ = run(capsys, "report", str(config), "--json")
    assert code == 0 and reads == []  # all traffic is older than the saved state
    code, fresh, _ = run(capsys, "report", str(config), "--json", "--fresh")
    assert code == 0 and len(reads) > 2000
    strip = lambda out: {k: v for k, v in json.loads(out).items() if k not in ("generated_at", "until")}  # noqa: E731
    assert strip(first) == strip(resumed) == strip(fresh)


def test_report_shows_its_progress_on_a_terminal(capsys, config, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, "report", str(config), "--json", "--fresh")
    assert code == 0 and json.loads(out)["events"] > 2000
    counts = [int(part.split()[-1].replace(",", "")) for part in err.split("\r") if part.strip()]
    assert counts and counts[-1] == json.loads(out)["events"]  # every event read was counted


def test_report_on_a_terminal_reads_through_the_configured_reader(capsys, config, monkeypatch):
    """With the progress line (a terminal), the report still reads with ``[analytics] reader``
    (here the DuckDB projection, which folds impressions into fewer rows), and the count is of
    events, not rows."""
    import sys

    pytest.importorskip("duckdb")
    config.write_text(config.read_text() + '[analytics]\nreader = "duckdb"\n')
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, "report", str(config), "--json", "--fresh")
    assert code == 0, err
    counts = [int(part.split()[-1].replace(",", "")) for part in err.split("\r") if part.strip()]
    assert counts and counts[-1] == json.loads(out)["events"]
    assert (config.parent / "shop.db.report.duckdb").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "last week"), "--since: 'last week' is not a date"),
    (("--window", "0"), "--window"),
    (("--json", "--csv"), "--json or --csv"),
])
def test_report_errors_are_one_clear_line(capsys, config, args, message):
    code, out, err = run(capsys, "report", str(config), *args)
    assert code == 1 and message in err and "Traceback" not in err


def test_segments_snapshot_then_history(capsys, config):
    code, out, _ = run(capsys, "segments", str(config))
    assert code == 0 and "no segment snapshots yet" in out
    code, out, err = run(capsys, "segments", str(config), "--snapshot")
    assert code == 0, err
    assert "buyers" in out and "overlap" in out
    code, out, _ = run(capsys, "segments", str(config), "--json")
    data = json.loads(out)
    assert len(data["history"]) == 1
    sizes = data["latest"]["sizes"]
    assert sizes["buyers"] > 0 and sizes["big"] <= sizes["buyers"]
    assert data["latest"]["overlap"] == [{"a": "big", "b": "buyers", "both": sizes["big"]}]
