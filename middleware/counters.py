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

from segmint.engine.failure_log import FailureLog

__all__ = ["Counters", "logger"]

logger = logging.getLogger("segmint.middleware")


class Counters:
    """Thread-safe event counters (``personalized``, ``clicks``, failures by cause...).

    ``timer`` is injectable so tests can check the rate limit without sleeping.
    """

    def __init__(self, *, log_interval: float = 60.0, timer: Callable[[], float] = time.monotonic) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._log = FailureLog(interval=log_interval, timer=timer)  # when a cause is logged again
        #: Pages whose slots were filled: the one count of every personalized page, so the
        #: responder adds to it with a plain ``+= 1`` on the event loop (no lock, no call).
        #: Only loop threads write it: when one middleware serves several loops at once, an
        #: increment may be lost now and then, which a traffic figure can afford.
        self.personalized = 0

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def failure(self, cause: str, exc: BaseException | None = None) -> bool:
        """Count a failure of ``cause`` and log it unless it was logged recently.

        Returns True when a line was logged. The cause is a short stable name
        (``"decide"``, ``"budget"``, ``"identify"``); the exception type is added to it so
        two different failures of one step are both reported.
        """
        with self._lock:
            self._counts["failures"] += 1
            self._counts[f"failure.{cause}"] += 1
        suppressed = self._log.allow(f"{cause}:{type(exc).__name__}" if exc is not None else cause)
        if suppressed is None:
            return False
        more = f" ({suppressed} more since last logged)" if suppressed else ""
        if exc is not None:
            logger.warning("segmint failed open (%s)%s: %s: %s", cause, more, type(exc).__name__, exc)
        else:
            logger.warning("segmint failed open (%s)%s", cause, more)
        return True

    def get(self, name: str) -> int:
        if name == "personalized":
            return self.personalized
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        if self.personalized:
            counts["personalized"] = self.personalized
        return dict(sorted(counts.items()))
