"""Dates in filters: ISO-8601 operands, relative expressions (``now-14d``) and document values.

An operand string is an *instant* when it is an ISO-8601 date or datetime
(``2024-05-01``, ``2024-05-01T10:30:00Z``) or a relative expression: ``now`` or ``today``,
optionally followed by ``+N`` / ``-N`` and a unit among s, m, h, d, w (``now-14d``,
``today-45d``, ``now+2h``). ``today`` is midnight UTC of ``now``. Naive times are UTC; a
date alone is midnight UTC. Relative expressions resolve against the ``now`` of each call.

Document values that are instants: ``datetime`` (naive = UTC), ``date`` and ISO-8601 strings.
Text is read by ``segmint.engine.dates``, the parser of every other input too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..dates import MAX_TEXT_LENGTH, parse_instant
from ._values import as_utc

__all__ = ["DateOperand", "date_operand", "to_instant", "text_instant", "normalize_now"]

UTC = timezone.utc

_RELATIVE = re.compile(r"(now|today)(?:([+-])(\d{1,6})([smhdw]))?\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Documents repeat date strings (a day, a signup date); parsing is the slow part of comparing
# one, so each string's instant (None for text that is not a date) is kept: at most this many
# strings, none longer than a date can be (then the map starts over), so it stays bounded
# whatever a shop's data holds. A plain dict, read by the generated filter code with a
# subscript (the cheapest lookup there is: a dict subclass with __missing__ costs twice as
# much); a string not seen yet raises KeyError there, which takes the full rules, which
# parse it through ``text_instant``.
MAX_KNOWN_TEXTS = 1 << 14
KNOWN_TEXTS: dict[str, datetime | None] = {}


def text_instant(text: str) -> datetime | None:
    """``parse_instant(text)``, remembered for the next document holding the same string."""
    try:
        return KNOWN_TEXTS[text]
    except KeyError:
        pass
    moment = parse_instant(text)
    if len(text) <= MAX_TEXT_LENGTH:
        if len(KNOWN_TEXTS) >= MAX_KNOWN_TEXTS:
            KNOWN_TEXTS.clear()
        KNOWN_TEXTS[text] = moment
    return moment


def to_instant(value: Any) -> datetime | None:
    """The instant a document value denotes (datetime, date or ISO string), else None."""
    if type(value) is datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return as_utc(value)
    if type(value) is str:
        return text_instant(value)
    return None


def normalize_now(now: Any) -> datetime:
    """``now`` as an aware UTC datetime; None means the current time."""
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, datetime):
        return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    if isinstance(now, (int, float)) and not isinstance(now, bool):
        return datetime.fromtimestamp(now, UTC)
    raise TypeError(f"now must be a datetime, got {type(now).__name__}")


@dataclass(frozen=True, slots=True)
class DateOperand:
    """A date operand: either a fixed instant or ``now``/``today`` plus an offset."""

    text: str | None  # the operand as written (None for a datetime given in a Mapping spec)
    fixed: datetime | None = None
    base: str | None = None  # "now" or "today"
    offset: timedelta = timedelta(0)

    @property
    def relative(self) -> bool:
        return self.fixed is None

    def at(self, now: datetime) -> datetime:
        """The instant this operand denotes at ``now`` (already normalized to UTC)."""
        if self.fixed is not None:
            return self.fixed
        if self.base == "today":
            now = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return now + self.offset

    def __str__(self) -> str:
        return self.text if self.text is not None else self.fixed.isoformat()  # type: ignore[union-attr]


def date_operand(value: Any) -> DateOperand | None:
    """The DateOperand for a filter literal that denotes an instant, else None."""
    if isinstance(value, datetime | date) and not isinstance(value, bool):
        return DateOperand(None, fixed=as_utc(value))
    if type(value) is not str:
        return None
    m = _RELATIVE.match(value)
    if m:
        base, sign, amount, unit = m.groups()
        offset = timedelta(**{_UNITS[unit]: int(amount)}) if amount else timedelta(0)
        return DateOperand(value, base=base, offset=-offset if sign == "-" else offset)
    fixed = parse_instant(value)
    return DateOperand(value, fixed=fixed) if fixed is not None else None
