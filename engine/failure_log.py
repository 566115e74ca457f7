"""``FailureLog``: failures counted, and logged at most once a minute each.

A plugin that fails on every request (a strategy whose service is down, an enricher with a
bug) is contained: the request goes on without it. Logging each failure with its traceback
would flood the log of a busy shop, so the runtime's ``FailureLog`` counts every failure by
key (plugin and hook) and logs a key again only after ``interval`` seconds, saying how many
were suppressed meanwhile. The counts are served by the middleware's health endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

__all__ = ["FailureLog"]

#: At most this many keys remember when they were last logged (the counts keep every key).
_MAX_KEYS = 256


class FailureLog:
    """Thread-safe failure counts with rate-limited logging; ``timer`` injectable for tests."""

    def __init__(self, *, interval: float = 60.0, timer: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._timer = timer
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def allow(self, key: str, amount: int = 1) -> int | None:
        """Count ``amount`` failures of ``key``. When ``key`` was not logged in the last
        ``interval`` seconds, it may be now: returns how many were counted under it since
        it was last logged (not these); otherwise None, and they count as suppressed.

        The one rate limit of segmint's failure logging: ``report`` (contained plugin
        failures), the middleware's ``Counters`` (requests that failed open) and the event
        writer (write errors, a full queue) each log through it."""
        now = self._timer()
        with self._lock:
            self._counts[key] += amount
            last = self._last_logged.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] += amount
                return None
            if len(self._last_logged) >= _MAX_KEYS and key not in self._last_logged:
                self._last_logged.pop(next(iter(self._last_logged)))
            self._last_logged[key] = now
            return self._suppressed.pop(key, 0)

    def report(self, logger: logging.Logger, key: str, message: str, exc: BaseException | None = None) -> bool:
        """Count a failure of ``key``; log ``message`` (with ``exc``'s traceback) unless this key
        was logged less than ``interval`` seconds ago. True when a line was logged."""
        suppressed = self.allow(key)
        if suppressed is None:
            return False
        more = f" ({suppressed} more since last logged)" if suppressed else ""
        logger.error("%s%s", message, more, exc_info=exc)
        return True

    def counts(self) -> dict[str, int]:
        """Failures so far by key (``"<plugin> in <hook> (<error type>)"``)."""
        with self._lock:
            return dict(sorted(self._counts.items()))
