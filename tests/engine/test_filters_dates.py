"""Date operands: ISO-8601 and relative expressions, resolved against an injected ``now``."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from segmint.engine import compile_filter

UTC = timezone.utc
NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("operand", "instant"),
    [
        ("now", NOW),
        ("today", datetime(2026, 11, 22, tzinfo=UTC)),
        ("now-14d", NOW - timedelta(days=14)),
        ("today-45d", datetime(2026, 11, 22, tzinfo=UTC) - timedelta(days=45)),
        ("now+2h", NOW + timedelta(hours=2)),
        ("now-30m", NOW - timedelta(minutes=30)),
        ("now-90s", NOW - timedelta(seconds=90)),
        ("now-2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T10:00:00Z", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T12:00:00+02:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01 10:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
    ],
)
def test_operand_denotes_an_instant(operand, instant):
    at = compile_filter({"t": {"$eq": operand}})
    before = compile_filter({"t": {"$lt": operand}})
    after = compile_filter({"t": {"$gte": operand}})
    second = timedelta(seconds=1)
    assert at.matches({"t": instant}, NOW)
    assert before.matches({"t": instant - second}, NOW) and not before.matches({"t": instant}, NOW)
    assert after.matches({"t": instant}, NOW) and not after.matches({"t": instant - second}, NOW)


def test_relative_dates_follow_the_now_passed_in():
    f = compile_filter({"last_purchase": {"$lte": "now-14d"}})
    doc = {"last_purchase": datetime(2026, 11, 1, tzinfo=UTC)}
    assert f.needs_now
    assert f.matches(doc, now=datetime(2026, 11, 20, tzinfo=UTC))
    assert not f.matches(doc, now=datetime(2026, 11, 10, tzinfo=UTC))
    assert f.explain(doc, now=datetime(2026, 11, 20, tzinfo=UTC)).matched


def test_default_now_is_the_current_time():
    f = compile_filter({"t": {"$gte": "now-1h"}})
    assert f.matches({"t": datetime.now(UTC)})
    assert not f.matches({"t": datetime.now(UTC) - timedelta(hours=2)})


def test_naive_now_is_utc_and_aware_now_in_another_zone_is_converted():
    f = compile_filter({"t": {"$gte": "today"}})
    doc = {"t": datetime(2026, 11, 22, 0, 30, tzinfo=UTC)}
    assert f.matches(doc, now=datetime(2026, 11, 22, 23, 0))
    # 01:00 in UTC+2 is still the 21st in UTC: "today" starts on the 21st, which the doc is after.
    plus2 = timezone(timedelta(hours=2))
    assert f.matches(doc, now=datetime(2026, 11, 23, 1, 0, tzinfo=plus2))
    assert not f.matches({"t": datetime(2026, 11, 20, 23, 0, tzinfo=UTC)}, now=datetime(2026, 11, 23, 1, 0, tzinfo=plus2))


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 1, 10, tzinfo=UTC),
        datetime(2026, 11, 1, 10),  # naive = UTC
        datetime(2026, 11, 1, 11, tzinfo=timezone(timedelta(hours=1))),
        "2026-11-01T10:00:00Z",
        "2026-11-01T10:00:00",
    ],
)
def test_document_values_that_are_instants(value):
    assert compile_filter({"t": "2026-11-01T10:00:00Z"}).matches({"t": value})
    assert compile_filter({"t": {"$gt": "2026-11-01"}}).matches({"t": value})


def test_a_date_alone_is_midnight_utc_on_both_sides():
    assert compile_filter({"d": "2026-11-01"}).matches({"d": date(2026, 11, 1)})
    assert compile_filter({"d": {"$lt": "2026-11-01T00:00:01Z"}}).matches({"d": date(2026, 11, 1)})
    assert compile_filter({"d": {"$eq": date(2026, 11, 1)}}).matches({"d": "2026-11-01T00:00:00Z"})


def test_date_operands_inside_in_and_between():
    f = compile_filter({"d": {"$in": ["2026-11-01", "2026-11-02"]}})
    assert f.matches({"d": datetime(2026, 11, 2, tzinfo=UTC)})
    assert not f.matches({"d": datetime(2026, 11, 3, tzinfo=UTC)})
    g = compile_filter({"d": {"$between": ["today-7d", "today"]}})
    assert g.matches({"d": datetime(2026, 11, 20, tzinfo=UTC)}, NOW)
    assert not g.matches({"d": datetime(2026, 11, 22, 10, tzinfo=UTC)}, NOW)
    assert g.matches({"d": ["2025-01-01", "2026-11-19"]}, NOW)


def test_date_operand_against_strings_that_are_not_dates():
    # Ordering: a date and a non-date string are different types, so nothing matches.
    assert not compile_filter({"s": {"$lt": "2026-11-01"}}).matches({"s": "2025-xx"})
    assert not compile_filter({"s": {"$gte": "now-1d"}}).matches({"s": "now"}, NOW)
    # Equality also keeps the literal meaning: the same string matches itself.
    assert compile_filter({"s": "now"}).matches({"s": "now"}, NOW)
    assert compile_filter({"s": {"$in": ["today", "x"]}}).matches({"s": "today"}, NOW)
    assert not compile_filter({"s": {"$ne": "today"}}).matches({"s": "today"}, NOW)
    # A number is never a date.
    assert not compile_filter({"s": {"$gte": "2020-01-01"}}).matches({"s": 1_900_000_000})


def test_strings_that_only_look_like_dates_stay_strings():
    for text in ["2026-13-45", "20261101", "yyyy-mm-dd", "now - 14d", "now-14y", "Today"]:
        f = compile_filter({"s": {"$gt": text}})
        assert f.matches({"s": text + "z"}), text  # plain string ordering applies
        assert not f.needs_now


def test_datetime_objects_in_a_mapping_spec():
    f = compile_filter({"t": {"$gte": datetime(2026, 1, 1)}})
    assert f.matches({"t": "2026-06-01"})
    assert not f.matches({"t": datetime(2025, 12, 31, 23, tzinfo=UTC)})


# -- documents holding dates as text (a shop's own data) ------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from segmint.engine.filters import _dates  # noqa: E402

_INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))
_OPERANDS = st.one_of(
    st.sampled_from(["now", "today", "now-14d", "today-45d", "now+2h"]),
    _INSTANTS.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    _INSTANTS.map(lambda d: d.strftime("%Y-%m-%d")),
)


def _as_texts(moment: datetime) -> list[str]:
    """Ways a shop writes ``moment``: Z, another offset, no offset, a space, a date alone."""
    plus2 = moment.astimezone(timezone(timedelta(hours=2)))
    texts = [moment.isoformat().replace("+00:00", "Z"), plus2.isoformat(),
             moment.replace(tzinfo=None).isoformat(), moment.replace(tzinfo=None).isoformat(" ")]
    if moment == moment.replace(hour=0, minute=0, second=0, microsecond=0):
        texts.append(moment.date().isoformat())
    return texts


@settings(max_examples=300, deadline=None)
@given(moment=_INSTANTS, operand=_OPERANDS, op=st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
       negate=st.booleans(), midnight=st.booleans())
def test_string_dates_give_the_answers_datetimes_give(moment, operand, op, negate, midnight):
    if midnight:
        moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    cond = {op: operand}
    f = compile_filter({"t": {"$not": cond} if negate else cond})
    expected = f.matches({"t": moment}, NOW)
    for text in _as_texts(moment):
        # Twice: the first sight parses the text, the second reads the instant known for it.
        assert f.matches({"t": text}, NOW) == expected, text
        assert f.matches({"t": text}, NOW) == expected, text
        assert f.explain({"t": text}, NOW).matched == expected, text


def test_a_string_that_is_not_a_date_takes_the_full_rules_every_time():
    lt = compile_filter({"s": {"$lt": "2026-11-01"}})
    not_lt = compile_filter({"s": {"$not": {"$lt": "2026-11-01"}}})
    for _ in range(2):
        assert not lt.matches({"s": "2025-xx"}) and not_lt.matches({"s": "2025-xx"})
        assert lt.matches({"s": "2025-10-31"}) and not not_lt.matches({"s": "2025-10-31"})


def test_known_texts_stay_bounded(monkeypatch):
    monkeypatch.setattr(_dates, "MAX_KNOWN_TEXTS", 8)
    _dates.KNOWN_TEXTS.clear()
    f = compile_filter({"t": {"$gte": "2026-01-01"}})
    for day in range(1, 29):
        assert f.matches({"t": f"2026-02-{day:02d}"})
    assert 0 < len(_dates.KNOWN_TEXTS) <= 8
    long_text = "2026-02-01" + " " * 100
    assert not f.matches({"t": long_text})
    assert long_text not in _dates.KNOWN_TEXTS
