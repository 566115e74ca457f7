"""The injectable clock: every time-dependent computation asks a clock for ``now``.

A clock is any zero-argument callable returning a timezone-aware UTC ``datetime``. The
runtime takes one (``Segmint.from_config(..., clock=FrozenClock(...))``) so tests fix time
instead of sleeping, and the same code runs in production with ``system_clock``.
"""

from __future__ import annotations

import threading
from functools import partial
from datetime import datetime, timedelta, timezone
from typing import Protocol

from .dates import as_utc, read_instant

__all__ = ["Clock", "system_clock", "FrozenClock", "as_utc"]


class Clock(Protocol):
    def __call__(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


#: The wall clock, in UTC. A ``partial`` of ``datetime.now``, not a function: it is read on
#: every page, and a C call adds no Python frame to the request path.
system_clock: Clock = partial(datetime.now, timezone.utc)


class FrozenClock:
    """A clock that only moves when told to (tests, replays, ``segmint explain --at``).

    >>> clock = FrozenClock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    >>> clock.advance(days=2).isoformat()
    '2026-03-03T00:00:00+00:00'
    """

    def __init__(self, start: datetime | str) -> None:
        self._now = read_instant(start, "start")  # text in any form segmint.engine.dates reads
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = as_utc(moment)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or ``timedelta(**kwargs)``; returns the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        with self._lock:
            self._now = self._now + step
            return self._now
