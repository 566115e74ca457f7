"""Where segmint's blocking work runs: a bounded pool, and a breaker for work on the loop.

Profile loads that need the store, and decisions whose plugins may block, run in a small
thread pool; a hung store or plugin must not pile up work, so past ``max_pending`` tasks a
submit raises ``Overloaded`` (the page goes out unchanged). Decisions whose plugins never
block run on the event loop instead (a thread hop costs more than a typical decision), watched
by a breaker that sends them back to the pool when they turn slow.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .counters import Counters

__all__ = ["Executor", "Overloaded", "consume_exception", "INLINE_LIMIT", "INLINE_STRIKES", "INLINE_COOLDOWN"]

T = TypeVar("T")

#: ``INLINE_STRIKES`` inline decisions using more CPU than ``INLINE_LIMIT`` within
#: ``INLINE_COOLDOWN`` s (a rare one is a garbage collection pass), or one past the time
#: budget (a plugin blocked), send decisions to the pool for ``INLINE_COOLDOWN`` s.
INLINE_LIMIT = 0.005
INLINE_STRIKES = 3
INLINE_COOLDOWN = 60.0


class Overloaded(Exception):
    """Too much segmint work is queued (a hung store or plugin): skip personalization."""


class Executor:
    """The bounded pool and the inline breaker of one middleware instance."""

    def __init__(self, counters: Counters, *, max_workers: int = 8, max_pending: int | None = None) -> None:
        self.counters = counters
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="segmint")
        self._max_pending = max_pending if max_pending is not None else max_workers * 8
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()  # the loop only keeps weak references
        self._inline_until = 0.0  # the breaker: no inline work before this monotonic time
        self._strikes: deque[float] = deque(maxlen=INLINE_STRIKES)  # when slow ones happened

    # -- the pool ------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run blocking ``fn`` in the pool; raise ``Overloaded`` instead of queueing forever.

        Call on the event loop thread. A future (not a task): awaiting it under
        ``asyncio.wait_for`` costs no extra task per request.
        """
        self._reserve()
        work = self._pool.submit(fn, *args)
        work.add_done_callback(self._done)  # when the thread finishes, not when we stop waiting
        future = asyncio.wrap_future(work)
        future.add_done_callback(consume_exception)
        return future

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> asyncio.Task[T]:
        """Run ``fn(*args)`` as a task on the running loop, counted like pool work.

        For non-blocking I/O (an async store): no thread hop, but the same bound, so a hung
        store still sheds load with ``Overloaded`` instead of piling up tasks.
        """
        loop = asyncio.get_running_loop()
        self._reserve()
        task = loop.create_task(fn(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._done)
        task.add_done_callback(consume_exception)
        return task

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    def _reserve(self) -> None:
        with self._pending_lock:
            if self._pending >= self._max_pending:
                raise Overloaded(f"{self._pending} segmint tasks pending or running")
            self._pending += 1

    def _done(self, work: Any) -> None:
        with self._pending_lock:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- work on the event loop ----------------------------------------------------------------
    @property
    def inline_allowed(self) -> bool:
        """False for ``INLINE_COOLDOWN`` s after the breaker opened."""
        return self._inline_until <= time.monotonic()

    def run_inline(self, fn: Callable[..., T], *args: Any, budget: float) -> T:
        """``fn(*args)`` on the loop, watched by the breaker (see ``INLINE_LIMIT``).

        Past ``budget`` this raises ``TimeoutError``, so the page goes out unchanged, as it
        would had the pool missed the budget. CPU time, not wall time, judges speed: waiting
        for the GIL held by another thread is not the work's cost.
        """
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return_value = fn(*args)
        finally:
            elapsed, spent = time.perf_counter() - started, time.thread_time() - cpu
            if spent > INLINE_LIMIT or elapsed > budget:
                self._strike(elapsed, spent, hung=elapsed > budget)
        if elapsed > budget:
            raise TimeoutError(f"the decision took {elapsed * 1000:.1f} ms")
        return return_value

    def _strike(self, elapsed: float, spent: float, *, hung: bool) -> None:
        now = time.monotonic()
        self._strikes.append(now)
        strikes = self._strikes
        if hung or (len(strikes) == INLINE_STRIKES and now - strikes[0] <= INLINE_COOLDOWN):
            self._inline_until = now + INLINE_COOLDOWN
            strikes.clear()
            self.counters.failure("inline_slow", TimeoutError(
                f"a decision took {elapsed * 1000:.1f} ms ({spent * 1000:.1f} ms of CPU) on the "
                f"event loop; deciding in the worker pool for the next {INLINE_COOLDOWN:.0f} s"))


def consume_exception(future: asyncio.Future[Any]) -> None:
    """Done callback: a failure is reported where the result is awaited (if it is); never
    "exception was never retrieved" for work whose waiter gave up (time budget)."""
    if not future.cancelled():
        future.exception()
