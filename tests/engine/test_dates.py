"""The one date parser (``segmint.engine.dates``) and every input that reads dates with it.

Each accepted form must mean the same instant in event ``at``, CSV and JSONL imports, catalog
``created_at`` and config schedules; each rejected one must be refused everywhere with the
field named and accepted forms shown.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.config import parse_config
from segmint.engine.dates import EXAMPLES, INSTANT_JSON_SCHEMA, InstantError, parse_instant, read_instant
from segmint.engine.errors import ConfigError
from segmint.engine.events import Order, decode_event, decode_events
from segmint.engine.importer import import_orders
from segmint.engine.stores import MemoryStore

UTC = timezone.utc

ACCEPTED = [
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T10:30:00Z", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01t10:30:00z", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T12:30:00+02:00", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T12:30:00+0200", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T12:30:00+02", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T05:30:00-05:00", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T10:30:00", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01 10:30:00", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T10:30", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01 12:30+02:00", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T10:30:00.25Z", datetime(2026, 11, 1, 10, 30, 0, 250000, tzinfo=UTC)),
    # Beyond microseconds msgspec rounds; the parser is msgspec's, so it rounds too.
    ("2026-11-01T10:30:00.9999995Z", datetime(2026, 11, 1, 10, 30, 1, tzinfo=UTC)),
]
REJECTED = ["01/11/2026", "2026-13-01", "2026-02-30", "20261101", "2026-11-01T10", "yesterday",
            "2026-11-01T25:00:00Z", "", " 2026-11-01", "2026-11-01T10:30:00+24:00",
            "2026-11-01" + "0" * 80]


@pytest.mark.parametrize(("text", "instant"), ACCEPTED)
def test_accepted_forms(text, instant):
    parsed = parse_instant(text)
    assert parsed == instant
    assert parsed.tzinfo is UTC  # the singleton: comparisons between instants stay cheap


@pytest.mark.parametrize("text", REJECTED)
def test_rejected_forms(text):
    assert parse_instant(text) is None
    with pytest.raises(InstantError) as info:
        read_instant(text, "created_at")
    assert info.value.field == "created_at"
    assert str(info.value) == f"created_at: {text!r} is not a date or time; write it like {EXAMPLES}"


def test_python_dates_and_datetimes_read_as_utc():
    assert read_instant(date(2026, 11, 1), "start") == datetime(2026, 11, 1, tzinfo=UTC)
    assert read_instant(datetime(2026, 11, 1, 10), "start") == datetime(2026, 11, 1, 10, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    assert read_instant(datetime(2026, 11, 1, 12, tzinfo=plus2), "start").tzinfo is UTC
    with pytest.raises(InstantError, match=r"start: 1700000000 is not a date"):
        read_instant(1_700_000_000, "start")


def test_the_rfc3339_forms_read_as_msgspec_reads_struct_fields():
    decode = msgspec.json.Decoder(datetime).decode
    for text, instant in ACCEPTED:
        try:
            native = decode(json.dumps(text).encode())
        except msgspec.ValidationError:
            continue  # a form only segmint reads
        assert (native if native.tzinfo else native.replace(tzinfo=UTC)) == instant, text


# -- events ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "instant"), ACCEPTED)
def test_event_at_accepts_every_form(text, instant):
    event = {"type": "page_view", "visitor_id": "v1", "at": text}
    for body in ([event], json.dumps([event]).encode()):
        events, errors = decode_events(body)
        assert errors == [] and events[0].at == instant


@pytest.mark.parametrize("text", REJECTED)
def test_event_at_rejects_with_field_and_example(text):
    event = {"type": "page_view", "visitor_id": "v1", "at": text}
    for body in ([event], json.dumps([event]).encode()):
        events, errors = decode_events(body)
        assert events == []
        assert (errors[0].index, errors[0].field) == (0, "at")
        assert errors[0].message == f"{text!r} is not a date or time; write it like {EXAMPLES}"


def test_an_event_with_a_date_alone_still_reports_its_other_problems():
    events, errors = decode_events([{"type": "page_view", "visitor_id": "v1", "at": "2026-11-01", "pth": "/"}])
    assert events == [] and errors[0].field == "pth"


def test_decode_event_reads_one_order():
    order = decode_event('{"order_id": "o1", "customer_id": "c1", "at": "2026-11-01", "items": [{"sku": "a"}]}', Order)
    assert order.at == datetime(2026, 11, 1, tzinfo=UTC)


# -- imports: CSV and JSONL read the same forms -----------------------------------------------

CSV_HEADER = "order_id,customer_id,at,sku,quantity,price\n"


def _import_both(tmp_path, at):
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text(CSV_HEADER + f"o1,c1,{at},a,1,5\n")
    jsonl_path = tmp_path / "orders.jsonl"
    jsonl_path.write_text(json.dumps({"order_id": "o1", "customer_id": "c1", "at": at,
                                      "items": [{"sku": "a", "price": 5}]}) + "\n")
    return [(import_orders(path, store := MemoryStore()), store) for path in (csv_path, jsonl_path)]


@pytest.mark.parametrize(("text", "instant"), [a for a in ACCEPTED if "," not in a[0]])
def test_csv_and_jsonl_imports_accept_the_same_forms(tmp_path, text, instant):
    for report, store in _import_both(tmp_path, text):
        assert report.orders == 1 and report.rejected == []
        assert [e.at for e in store.iter_events()] == [instant]


@pytest.mark.parametrize("text", ["01/11/2026", "2026-02-30", "yesterday"])
def test_csv_and_jsonl_imports_reject_the_same_forms_alike(tmp_path, text):
    (csv_report, _), (jsonl_report, _) = _import_both(tmp_path, text)
    reason = f"at: {text!r} is not a date or time; write it like {EXAMPLES}"
    assert csv_report.rejected == [(2, reason + " (order skipped)")]
    assert jsonl_report.rejected == [(1, reason)]


# -- config schedules -------------------------------------------------------------------------

CAMPAIGN = '[[campaigns]]\nid = "c1"\nslots = ["home"]\nstrategy = "bestsellers"\n'


@pytest.mark.parametrize(("value", "instant"), [
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),                  # a TOML date
    ("2026-11-01T10:30:00", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),  # a TOML local datetime
    ("2026-11-01T12:30:00+02:00", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    *((json.dumps(text), instant) for text, instant in ACCEPTED),       # TOML strings
])
def test_toml_schedules_take_every_form(value, instant):
    config = parse_config(CAMPAIGN + f"[campaigns.schedule]\nstart = {value}\n", file="segmint.toml")
    assert config.campaigns[0].schedule.start == instant


def test_yaml_and_json_schedules_take_dates_alone():
    yaml_text = "campaigns:\n- id: c1\n  slots: [home]\n  strategy: bestsellers\n  schedule: {start: 2026-11-01, end: '2026-11-02 10:00'}\n"
    json_text = json.dumps({"campaigns": [{"id": "c1", "slots": ["home"], "strategy": "bestsellers",
                                           "schedule": {"start": "2026-11-01", "end": "2026-11-02T10:00"}}]})
    for text, fmt in ((yaml_text, "yaml"), (json_text, "json")):
        schedule = parse_config(text, fmt=fmt).campaigns[0].schedule
        assert (schedule.start, schedule.end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, 10, tzinfo=UTC))


def test_a_schedule_that_is_no_date_names_file_line_field_and_example():
    text = CAMPAIGN + '[campaigns.schedule]\nstart = "2026-11-01"\nend = "01/12/2026"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="segmint.toml")
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.path) == ("segmint.toml", 7, "$.campaigns[0].schedule.end")
    assert problem.message == f"'01/12/2026' is not a date or time; write it like {EXAMPLES}"


def test_the_published_schema_pattern_takes_every_accepted_form():
    pattern = re.compile(INSTANT_JSON_SCHEMA["pattern"])
    for text, _ in ACCEPTED:
        assert pattern.match(text), text
