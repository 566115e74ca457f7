"""``segmint forget`` / ``segmint export``: one person erased or printed; nobody else touched."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine.runtime import Segmint
from segmint.middleware.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def vip_orders(customer: str) -> list[dict]:
    """Three big orders two to three months ago: the demo config's ``lapsed_vip``."""
    return [
        {"type": "order", "customer_id": customer, "order_id": f"{customer}-{i}",
         "at": (NOW - timedelta(days=60 + i * 10)).isoformat(), "total": 700.0,
         "items": [{"sku": "FA-DRS-002", "category": "dresses", "quantity": 1, "price": 700.0}]}
        for i in range(3)
    ]


@pytest.fixture()
def config(tmp_path):
    """The demo config on a SQLite file: two lapsed VIPs, one of whom browsed before logging in."""
    shutil.copy(EXAMPLES / "catalog.json", tmp_path / "catalog.json")
    text = re.sub(r'(?m)^path = ".*\.db"$', f'path = "{tmp_path / "shop.db"}"',
                  (EXAMPLES / "segmint.toml").read_text(), count=1)
    path = tmp_path / "segmint.toml"
    path.write_text(text)
    rt = Segmint.from_config(path, watch=False, clock=lambda: NOW)
    try:
        rt.record([{"type": "page_view", "visitor_id": "vip-1-phone", "path": "/",
                    "at": (NOW - timedelta(days=90)).isoformat()},
                   {"type": "identify", "visitor_id": "vip-1-phone", "customer_id": "vip-1",
                    "at": (NOW - timedelta(days=89)).isoformat()}])
        rt.record(vip_orders("vip-1") + vip_orders("vip-2"))
    finally:
        rt.close()
    return path


def test_export_prints_the_person_as_json(capsys, config):
    code, out, err = run(capsys, "export", str(config), "--visitor", "vip-1-phone")
    assert code == 0, err
    data = json.loads(out)
    assert data["customer_id"] == "vip-1" and data["visitor_ids"] == ["vip-1-phone"]
    assert [p["key"] for p in data["profiles"]] == ["c:vip-1"] and data["profiles"][0]["orders"] == 3
    assert data["links"] == {"vip-1-phone": "vip-1"}
    assert [e["type"] for e in data["events"]] == ["page_view", "identify", "order", "order", "order"]
    assert {e["order_id"] for e in data["events"] if e["type"] == "order"} == {"vip-1-0", "vip-1-1", "vip-1-2"}


def test_forget_erases_the_person_from_reads_scans_and_exports(capsys, config):
    code, out, _ = run(capsys, "audience", str(config), "lapsed_vip", "--json")
    assert code == 0 and json.loads(out)["members"] == 2
    code, out, err = run(capsys, "forget", str(config), "--customer", "vip-1")
    assert code == 0, err
    assert "erased customer vip-1 (visitors vip-1-phone): 1 profile, 1 identity link, 5 events" in out
    code, out, _ = run(capsys, "audience", str(config), "lapsed_vip", "--json")
    assert [s["key"] for s in json.loads(out)["sample"]] == ["c:vip-2"]
    code, out, _ = run(capsys, "export", str(config), "--customer", "vip-1")
    assert json.loads(out) == {"customer_id": "vip-1", "visitor_ids": [], "profiles": [], "links": {}, "events": [],
                               "report_states": []}
    code, out, _ = run(capsys, "export", str(config), "--customer", "vip-2")
    assert len(json.loads(out)["events"]) == 3  # the other VIP keeps everything
    code, out, _ = run(capsys, "forget", str(config), "--customer", "vip-1")
    assert code == 0 and "nothing was stored about customer vip-1" in out


def test_forget_by_a_linked_visitor_says_the_whole_person_goes(capsys, config):
    code, out, err = run(capsys, "forget", str(config), "--visitor", "vip-1-phone")
    assert code == 0, err
    assert "visitor vip-1-phone is linked to customer vip-1: the whole person is erased" in out
    code, out, _ = run(capsys, "export", str(config), "--customer", "vip-2")
    assert len(json.loads(out)["events"]) == 3


def test_forget_json_counts_what_was_erased(capsys, config):
    code, out, err = run(capsys, "forget", str(config), "--visitor", "vip-1-phone", "--json")
    assert code == 0, err
    assert json.loads(out) == {"customer_id": "vip-1", "visitor_ids": ["vip-1-phone"], "profiles": 1, "links": 1,
                               "events": 5, "report_states": 0}
    code, out, _ = run(capsys, "forget", str(config), "--visitor", "vip-1-phone")
    assert "nothing was stored about visitor vip-1-phone" in out


def test_one_id_is_required(capsys, config):
    with pytest.raises(SystemExit):
        main(["forget", str(config)])
    assert "one of the arguments --customer --visitor is required" in capsys.readouterr().err
