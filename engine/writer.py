"""``EventWriter``: folds queued events into the store from one background thread.

Page views and impressions are recorded off the request path: ``submit`` appends to a
bounded in-memory queue and returns at once (``False``, counted as ``rejected``, when the
queue is full: shedding load beats blocking a page). The thread takes up to
``batch_size`` events at a time (whole submits, so a page's events stay in one batch; a
submit larger than a batch is split), waiting at most ``flush_interval`` seconds to fill a
batch, and calls ``profiles.record``.

While the store is unavailable (``StoreError``: Redis down, SQLite locked or read-only) a
batch is retried with a backoff capped at ``max_retry_delay`` for as long as the writer
runs, so the queue bound ``max_pending`` is the real limit of what an outage can lose, and
writing resumes by itself on recovery. Any other error (a bug, a plugin) is retried
``max_retries`` times, then the batch is dropped and counted (``dropped``). Errors and
rejections are logged at most once per ``log_interval`` seconds with a count of the ones
suppressed.

Batches are small on purpose: folding is pure Python, and while the writer folds it holds
the GIL that the event loop serving pages needs. 100 events fold in about 1-2 ms; 500 took
long enough (with the interpreter's 5 ms switch interval) to show in the pages' tail
latency, for no gain in throughput (measured under uvicorn + wrk: p99 12 ms -> 7-9 ms at the
same req/s). The short interval also means a visitor's next page sees their last one.

Reads through ``profiles`` show the queued events at once (``Profiles.note_pending``): a
visitor's next page sees their last one before it is stored.

Events queued but not yet written are lost if the process dies: use ``Profiles.record``
directly (synchronously) for events that must be durable when acknowledged (orders).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from .errors import StoreError
from .events import Event
from .failure_log import FailureLog
from .profiles import Profiles
from .stores.base import AppendResult

__all__ = ["EventWriter"]

log = logging.getLogger("segmint.writer")


class EventWriter:
    def __init__(
        self, profiles: Profiles, *, batch_size: int = 100, flush_interval: float = 0.05,
        max_pending: int = 100_000, max_retries: int = 3, retry_delay: float = 0.1,
        max_retry_delay: float = 5.0, log_interval: float = 60.0,
        on_recorded: Callable[[Sequence[Event], AppendResult], None] | None = None,
    ) -> None:
        self.profiles = profiles
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.log_interval = log_interval
        self.on_recorded = on_recorded
        #: Submitted lists, whole: a batch never splits one ``submit`` (a page's view and its
        #: impressions share one time; split over two batches, the cache could not extend the
        #: visitor's profile with the second, see ``Profiles.record``).
        self._queue: deque[list[Event]] = deque()
        self._queued = 0  # events in ``_queue``
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        #: Set by close(): outages are no longer waited out, so close() always returns.
        self._closing = False
        self._flushing = 0
        self._log = FailureLog(interval=log_interval)  # write errors and rejections, rate limited
        self._stats = dict.fromkeys(
            ("submitted", "rejected", "written", "duplicates", "batches", "errors", "retries",
             "dropped"), 0)
        self._thread = threading.Thread(target=self._run, name="segmint-event-writer", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> dict[str, int]:
        """Counters: submitted, rejected (queue full), written, duplicates, batches, errors,
        retries, dropped (after failed retries) and pending (queued now)."""
        with self._cond:
            return {**self._stats, "pending": self._queued + self._in_flight}

    def submit(self, events: Iterable[Event]) -> bool:
        """Queue events for writing; never blocks. False (and counted) if the queue is full
        or the writer is closed."""
        batch = list(events)
        with self._cond:
            if self._stopping or self._queued + self._in_flight + len(batch) > self.max_pending:
                self._stats["rejected"] += len(batch)
                self._log_rejected(len(batch))
                return False
            if not batch:
                return True
            was_empty = not self._queue
            # Before the thread can take them: reads show them until they are stored.
            self.profiles.note_pending(batch)
            self._queue.append(batch)
            self._queued += len(batch)
            self._stats["submitted"] += len(batch)
            if was_empty or self._queued >= self.batch_size:
                self._cond.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was written (or dropped). False on timeout."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: not self._queue and not self._in_flight, timeout)
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread. Later ``submit`` calls return False.

        While closing, a batch the store refuses is retried ``max_retries`` times and then
        dropped (counted and logged), so a store that stays down cannot hang a shutdown.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list[Event]:
        with self._cond:
            # Idle: sleep until there is work. Then give a batch flush_interval to fill up,
            # unless someone is waiting in flush() or close().
            self._cond.wait_for(lambda: self._queue or self._stopping)
            self._cond.wait_for(
                lambda: self._queued >= self.batch_size or self._stopping or self._flushing,
                self.flush_interval,
            )
            batch: list[Event] = []
            while self._queue and len(batch) + len(self._queue[0]) <= self.batch_size:
                batch += self._queue.popleft()
            if not batch and self._queue:  # one submit larger than a batch: in batch-size parts
                first = self._queue[0]
                batch, self._queue[0] = first[:self.batch_size], first[self.batch_size:]
            count = len(batch)
            self._queued -= count
            self._in_flight = count
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._write(batch)
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()
                if self._stopping and not self._queue:
                    return

    def _write(self, batch: list[Event]) -> None:
        attempt = 0
        while True:
            try:
                result = self.profiles.record(batch, pending=True)
            except Exception as exc:  # noqa: BLE001 - a bad batch must not kill the thread
                # An unavailable store is waited out (bounded by max_pending); anything else
                # is retried a few times. Once closing, nothing is retried past max_retries.
                with self._cond:
                    closing = self._closing
                outage = isinstance(exc, StoreError) and not closing
                final = not outage and attempt >= self.max_retries
                with self._cond:
                    self._stats["errors"] += 1
                    if final:
                        self._stats["dropped"] += len(batch)
                    else:
                        self._stats["retries"] += 1
                self._log_error(exc, len(batch), final)
                if final:
                    self.profiles.forget_pending(batch)
                    return
                attempt += 1
                delay = min(self.max_retry_delay, self.retry_delay * attempt)
                with self._cond:  # close() wakes us up instead of sleeping through it
                    self._cond.wait_for(lambda: self._closing, delay)
                continue
            with self._cond:
                self._stats["written"] += result.stored
                self._stats["duplicates"] += result.duplicates
                self._stats["batches"] += 1
            if self.on_recorded is not None:
                try:
                    self.on_recorded(batch, result)
                except Exception:  # noqa: BLE001
                    log.exception("segmint: on_recorded callback failed")
            return

    def _log_rejected(self, count: int) -> None:
        # Called with the lock held. Shedding is logged, rate limited, with a running count.
        suppressed = self._log.allow("queue full", count)
        if suppressed is not None:
            log.warning("segmint: event queue full (%d pending): %d events rejected since the last warning",
                        self._queued + self._in_flight, suppressed + count)

    def _log_error(self, exc: Exception, size: int, final: bool) -> None:
        suppressed = self._log.allow("write")
        if suppressed is None:
            return
        what = "dropped" if final else "will retry"
        more = f" ({suppressed} similar errors suppressed)" if suppressed else ""
        log.error("segmint: writing %d events failed, %s: %r%s", size, what, exc, more)
