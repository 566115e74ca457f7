"""Failure counters and rate-limited logging: fail open, but never silently.

Every time segmint gives up on a request (store down, plugin error, time budget) it counts the
cause and logs it, at most once per cause per ``log_interval`` seconds, so a broken store
produces one log line a minute instead of one per page view. The counts are served by
``GET {prefix}/health``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["Counters", "logger"]

logger = logging.getLogger("segmint.middleware")

#: At most this many distinct causes are remembered for log rate limiting.
_MAX_CAUSES = 256


class Counters:
    """Thread-safe event counters (``served``, ``personalized``, failures by cause).

    ``timer`` is injectable so tests can check the rate limit without sleeping.
    """

    def __init__(self, *, log_interval: float = 60.0, timer: Callable[[], float] = time.monotonic) -> None:
        self._counts: Counter[str] = Counter()
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._interval = log_interval
        self._timer = timer

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def failure(self, cause: str, exc: BaseException | None = None) -> bool:
        """Count a failure of ``cause`` and log it unless it was logged recently.

        Returns True when a line was logged. The cause is a short stable name
        (``"decide"``, ``"budget"``, ``"identify"``); the exception type is added to it so
        two different failures of one step are both reported.
        """
        key = f"{cause}:{type(exc).__name__}" if exc is not None else cause
        now = self._timer()
        with self._lock:
            self._counts["failures"] += 1
            self._counts[f"failure.{cause}"] += 1
            last = self._last_logged.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] += 1
                return False
            if len(self._last_logged) >= _MAX_CAUSES and key not in self._last_logged:
                self._last_logged.pop(next(iter(self._last_logged)))
            self._last_logged[key] = now
            suppressed = self._suppressed.pop(key, 0)
        more = f" ({suppressed} more since last logged)" if suppressed else ""
        if exc is not None:
            logger.warning("segmint failed open (%s)%s: %s: %s", cause, more, type(exc).__name__, exc)
        else:
            logger.warning("segmint failed open (%s)%s", cause, more)
        return True

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(sorted(self._counts.items()))
