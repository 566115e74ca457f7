"""Dates and times the way shops write them: the one parser behind every input.

Catalog fields, event ``at``, CSV and JSONL order import, config schedules and the values
filters compare all read text dates here, so a form accepted in one place is accepted
everywhere and means the same instant there:

=============================  ==============================================================
``2026-11-01``                 a date alone: midnight UTC
``2026-11-01T10:30:00Z``       RFC 3339 with ``Z`` or an offset: ``+02:00``, ``+0200``, ``+02``
``2026-11-01T10:30:00``        no offset: UTC
``2026-11-01 10:30``           a space for the ``T``; seconds and their fraction optional
=============================  ==============================================================

The core is msgspec's RFC 3339 parser, the code that also decodes the datetime fields of
structs straight from JSON, so a struct field msgspec decoded and a value read here cannot
disagree (msgspec rounds fractions beyond microseconds; so does this module). The other forms
are rewritten to RFC 3339 first. Every result is an aware datetime in UTC whose ``tzinfo`` is
the ``timezone.utc`` singleton, which makes comparing two of them a plain memory compare.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, timezone
from typing import Any

import msgspec

__all__ = ["EXAMPLES", "InstantError", "parse_instant", "read_instant", "read_instant_fields", "as_utc",
           "INSTANT_JSON_SCHEMA"]

UTC = timezone.utc

#: What error messages show as accepted forms.
EXAMPLES = "2026-11-01, 2026-11-01T10:30:00Z or 2026-11-01T12:30:00+02:00"

#: The JSON Schema of a text instant (the published config schema uses it).
INSTANT_JSON_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?)?$",
    "examples": ["2026-11-01", "2026-11-01T10:30:00Z", "2026-11-01T12:30:00+02:00"],
}

#: Longer text is never a date: a page of text is not handed to the parser.
MAX_TEXT_LENGTH = 64
_decode_rfc3339 = msgspec.json.Decoder(datetime).decode
_quote = msgspec.json.encode
# The forms msgspec's RFC 3339 parser does not take, to be completed before it reads them.
_LOOSE = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)


def _rfc3339(text: str) -> datetime | None:
    try:
        # Through JSON on purpose: the quoting escapes whatever the text holds, and the
        # decoder is msgspec's own datetime parser (the one struct fields use).
        return _decode_rfc3339(_quote(text))
    except (msgspec.MsgspecError, ValueError):  # not RFC 3339, or not encodable (surrogates)
        return None


def parse_instant(text: str) -> datetime | None:
    """The instant ``text`` denotes (aware, UTC), or None when it is not a date or time.

    >>> parse_instant("2026-11-01"), parse_instant("2026-11-01T12:30+02:00")
    (datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc), \
datetime.datetime(2026, 11, 1, 10, 30, tzinfo=datetime.timezone.utc))
    >>> parse_instant("01/11/2026") is None, parse_instant("2026-13-45") is None
    (True, True)
    """
    size = len(text)
    if size > MAX_TEXT_LENGTH:
        return None
    # The common loose forms are completed up front (a failed parse costs several good ones),
    # and a time without an offset gets "Z" (cheaper than ``datetime.replace``).
    if size == 10:  # 2026-11-01
        text = text + "T00:00:00Z"
    elif size == 16 and text[13:14] == ":":  # 2026-11-01T10:30
        text = text + ":00Z"
    moment = _rfc3339(text)
    if moment is None:
        match = _LOOSE.fullmatch(text)
        if match is None:
            return None
        day, minutes, seconds, offset = match.groups()
        if offset is not None and len(offset) == 3:  # +02
            offset += ":00"
        text = f"{day}T{minutes or '00:00'}{seconds or ':00'}{offset or 'Z'}"
        moment = _rfc3339(text)
        if moment is None:  # the shape of a date, not a real one (2026-02-30)
            return None
    if moment.tzinfo is None:
        return _rfc3339(text + "Z")
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def as_utc(moment: date) -> datetime:
    """A ``datetime`` or ``date`` as an aware UTC datetime: naive is UTC, a date is midnight."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return datetime.combine(moment, time(), tzinfo=UTC)


class InstantError(ValueError):
    """A value that is not a date or time. ``field`` names it; ``reason`` (the message without
    the field) shows the value and the accepted forms, for loaders that say where themselves.
    """

    def __init__(self, field: str, value: Any) -> None:
        self.field = field
        shown = repr(value) if isinstance(value, (str, int, float)) else f"a {type(value).__name__}"
        self.reason = f"{shown} is not a date or time; write it like {EXAMPLES}"
        super().__init__(f"{field}: {self.reason}")


def read_instant(value: Any, field: str) -> datetime:
    """``value`` (text, ``date`` or ``datetime``) as an aware UTC datetime.

    Raises ``InstantError`` naming ``field`` and showing the accepted forms.
    """
    if isinstance(value, date):  # TOML and YAML give dates and datetimes as such
        return as_utc(value)
    moment = parse_instant(value) if isinstance(value, str) else None
    if moment is None:
        raise InstantError(field, value)
    return moment


def read_instant_fields(obj: Any, fields: Iterable[str]) -> Any:
    """``obj`` (a decoded JSON object) with the text of ``fields`` read as instants.

    msgspec decodes struct datetime fields from RFC 3339 text only; a struct that failed to
    decode is converted again from this, so a date alone or a time without seconds is
    accepted too. Missing and null fields are left for the struct's own checks. Raises
    ``InstantError`` for the first field that holds no date (text or not).
    """
    if not isinstance(obj, dict):
        return obj
    copied: dict[str, Any] | None = None
    for field in fields:
        value = obj.get(field)
        if value is not None:
            copied = copied if copied is not None else dict(obj)
            copied[field] = read_instant(value, field)
    return copied if copied is not None else obj
