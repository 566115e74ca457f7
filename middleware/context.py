"""What the middleware shares across requests: ``Core`` (no per-request state here).

``Core`` owns the runtime, a bounded thread pool for blocking work (profile loads, decisions),
the event-loop tasks of stores that load without blocking (Redis: ``spawn``), the failure
counters, a small render cache and the settings derived from the current config
(recomputed only when a hot reload swaps the config). Per-request state lives in
``state.SegmintState`` and ``responder.Responder``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, TypeVar

from cachetools import LRUCache

from segmint.engine.identity import Identity
from segmint.engine.profile import Profile

from .counters import Counters
from .tracking import identify_event, product_path_pattern

__all__ = ["Core", "Settings", "Overloaded", "consume_exception"]

T = TypeVar("T")
#: Profile used for bots and visitors without consent: nothing known, so defaults apply.
ANONYMOUS_PROFILE_KEY = "v:anonymous"
_ANONYMOUS_ID = "anonymous"
_IDENTIFY_ARGS = ("scope", "config")


#: ``INLINE_STRIKES`` inline decisions using more CPU than ``INLINE_LIMIT`` within
#: ``INLINE_COOLDOWN`` s (a rare one is a garbage collection pass), or one past the time
#: budget (a plugin blocked), send decisions to the pool for ``INLINE_COOLDOWN`` s.
INLINE_LIMIT = 0.005
INLINE_STRIKES = 3
INLINE_COOLDOWN = 60.0
#: Rendered widgets kept (str and page bytes); the cache starts over when full.
RENDER_CACHE_SIZE = 2048


class Overloaded(Exception):
    """Too much segmint work is queued (a hung store or plugin): skip personalization."""


class Settings:
    """Per-config values the hot path needs, precomputed once per config object."""

    __slots__ = (
        "config", "prefix", "budget", "max_body", "debug", "product_re", "track_page_views",
        "cookie_name", "cookie_attrs", "secret",
    )

    def __init__(self, config: Any) -> None:
        mw, ident, api = config.middleware, config.identity, config.api
        self.config = config
        self.prefix: str = api.prefix.rstrip("/")
        self.budget: float = mw.time_budget_ms / 1000.0
        self.max_body: int = mw.max_body_bytes
        self.debug: bool = mw.debug_header
        self.product_re = product_path_pattern(mw.product_path)
        self.track_page_views: bool = mw.track_page_views
        self.cookie_name: str = ident.cookie
        self.cookie_attrs = f"; Max-Age={int(ident.max_age_days * 86400)}; Path=/; HttpOnly; SameSite=Lax"

    def set_cookie(self, value: str, scheme: str) -> bytes:
        secure = "; Secure" if scheme in ("https", "wss") else ""
        return f"{self.cookie_name}={value}{self.cookie_attrs}{secure}".encode("latin-1")


class Core:
    """The shared machinery of one middleware instance (no per-request state)."""

    def __init__(self, runtime: Any, *, max_workers: int = 8, max_pending: int | None = None,
                 counters: Counters | None = None) -> None:
        self.runtime = runtime
        self.counters = counters or Counters()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="segmint")
        self._max_pending = max_pending if max_pending is not None else max_workers * 8
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()  # the loop only keeps weak references
        self._settings: Settings | None = None
        # visitor id -> customer id already linked by an identify event from this process.
        self._linked: LRUCache[str, str] = LRUCache(maxsize=50_000)
        self._linked_lock = threading.Lock()
        self._rendered: dict[tuple[Any, ...], Any] = {}  # widget HTML (str) and its bytes
        self._render_config: Any = None
        self._inline_until = 0.0  # the breaker: no inline decisions before this monotonic time
        self._strikes: deque[float] = deque(maxlen=INLINE_STRIKES)  # when slow ones happened

    # -- config ------------------------------------------------------------------------------
    def settings(self) -> Settings:
        config = self.runtime.config
        settings = self._settings
        if settings is None or settings.config is not config:
            settings = self._settings = Settings(config)
        return settings

    def now(self) -> datetime:
        clock: Callable[[], datetime] | None = getattr(self.runtime, "clock", None)
        return clock() if clock is not None else datetime.now(timezone.utc)

    # -- blocking work -----------------------------------------------------------------------
    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run blocking ``fn`` in the pool; raise ``Overloaded`` instead of queueing forever.

        Call on the event loop thread. A future (not a task): awaiting it under
        ``asyncio.wait_for`` costs no extra task per request.
        """
        self._reserve()
        work = self._executor.submit(fn, *args)
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

    def _reserve(self) -> None:
        with self._pending_lock:
            if self._pending >= self._max_pending:
                raise Overloaded(f"{self._pending} segmint tasks pending or running")
            self._pending += 1

    def _done(self, work: Any) -> None:
        with self._pending_lock:
            self._pending -= 1

    # -- decisions on the event loop ---------------------------------------------------------
    def decides_inline(self) -> bool:
        """Whether to decide on the event loop now (when the profile is already in memory).

        A thread hop costs more than a typical decision, and under load the GIL hand-over
        between the loop and a worker adds milliseconds; so decisions run inline when no
        plugin on the decision path may block (``runtime.decides_on_loop``) and the breaker
        is closed.
        """
        return self._inline_until <= time.monotonic() and getattr(self.runtime, "decides_on_loop", False) is True

    def run_inline(self, fn: Callable[..., T], *args: Any, budget: float) -> T:
        """``fn(*args)`` on the loop, watched by the breaker (see ``INLINE_LIMIT``).

        Past ``budget`` this raises ``TimeoutError``, so the page goes out unchanged, as it
        would had the pool missed the budget. CPU time, not wall time, judges speed: waiting
        for the GIL held by another thread is not the decision's cost.
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

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- identity and tracking ---------------------------------------------------------------
    def identify(self, scope: MutableMapping[str, Any], config: Any) -> Identity:
        """Ask the plugins who this is. Raises whatever a plugin raised (caller fails open)."""
        hook = self.runtime.pm.hook.segmint_identify_visitor
        impls = hook.get_hookimpls()
        if len(impls) == 1 and impls[0].argnames == _IDENTIFY_ARGS and not (impls[0].hookwrapper or impls[0].wrapper):
            identity = impls[0].function(scope, config)  # one plugin (the built-in): no pluggy loop
        else:
            identity = hook(scope=scope, config=config)
        if not isinstance(identity, Identity):
            raise TypeError(f"segmint_identify_visitor returned {type(identity).__name__}, not Identity")
        return identity

    def track(self, events: Sequence[Any]) -> None:
        if events:
            self.runtime.track(list(events))

    def link(self, identity: Identity, events: list[Any]) -> None:
        """Add one ``identify`` event the first time a cookie visitor is seen as a customer."""
        visitor, customer = identity.visitor_id, identity.customer_id
        if not (visitor and customer and identity.track):
            return
        with self._linked_lock:
            if self._linked.get(visitor) == customer:
                return
            self._linked[visitor] = customer
        events.append(identify_event(identity, self.now()))

    def unlink(self, visitor_ids: Iterable[str]) -> None:
        """Forget that these visitors were linked (their person was erased): a later login
        sends ``identify`` again, so the link is stored anew."""
        with self._linked_lock:
            for visitor in visitor_ids:
                self._linked.pop(visitor, None)

    def known_profile(self, identity: Identity) -> Profile | None:
        """The profile when it needs no I/O (else None): empty for bots and brand-new visitors,
        or already in the runtime's cache (``Profiles.peek``, when the runtime has it)."""
        if not identity.personalize or not identity.known:
            return Profile(key=ANONYMOUS_PROFILE_KEY)
        if identity.is_new and not identity.customer_id:  # a fresh random id has no history
            assert identity.visitor_id is not None
            return Profile(key=f"v:{identity.visitor_id}", visitor_ids=(identity.visitor_id,))
        peek = getattr(getattr(self.runtime, "profiles", None), "peek", None)
        if peek is not None:
            return peek(visitor_id=identity.visitor_id, customer_id=identity.customer_id)
        return None

    def load_profile(self, identity: Identity) -> Profile:
        """The profile to decide for (blocking: run it in the pool)."""
        known = self.known_profile(identity)
        if known is not None:
            return known
        return self.runtime.profile(visitor_id=identity.visitor_id, customer_id=identity.customer_id)

    @property
    def async_profiles(self) -> bool:
        """True when the runtime's store loads profiles without blocking (``aload_profile``)."""
        return bool(getattr(getattr(self.runtime, "profiles", None), "supports_async", False))

    async def aload_profile(self, identity: Identity) -> Profile:
        """``load_profile`` on the event loop, for stores with an async client (Redis)."""
        known = self.known_profile(identity)
        if known is not None:
            return known
        profiles = self.runtime.profiles
        return await profiles.aget(visitor_id=identity.visitor_id, customer_id=identity.customer_id)

    def render(self, slot_decision: Any) -> str:
        """The widget HTML of one slot decision, cached per (config, decision content).

        Most visitors of a page get one of a few decisions, and rendering costs more than
        deciding; the renderer hook sees only the decision and the config, so equal inputs
        give equal HTML. The cache is dropped when a hot reload swaps the config.
        """
        return self._cached(_render_key(slot_decision), lambda: self.runtime.render(slot_decision))

    def widget(self, slot_decision: Any, charset: str) -> bytes:
        """``render`` encoded for a page in ``charset`` (characters it lacks as references),
        cached alongside: the bytes a page's slot is filled with."""
        return self._cached((charset, _render_key(slot_decision)),
                            lambda: self.render(slot_decision).encode(charset, "xmlcharrefreplace"))

    def _cached(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        # A plain dict swapped whole on reload or when full: a read is one atomic ``get``
        # under the GIL, with no lock and no LRU bookkeeping on the request path.
        config = self.runtime.config
        cache = self._rendered
        if self._render_config is not config:
            cache = self._rendered = {}
            self._render_config = config
        value = cache.get(key)
        if value is None:
            value = make()
            if len(cache) >= RENDER_CACHE_SIZE:
                cache = self._rendered = {}
            cache[key] = value
        return value

    def decide(self, identity: Identity, profile: Profile, slots: Iterable[str], path: str,
               exclude: Iterable[str] = (), now: datetime | None = None) -> Any:
        """Decide (blocking). ``exclude``: skus already on the page (a product page's own);
        ``now``: the request's time when the caller has it already."""
        visitor = identity.visitor_id if identity.personalize and identity.visitor_id else _ANONYMOUS_ID
        return self.runtime.decide(profile, slots, path=path, visitor_id=visitor, now=now or self.now(),
                                   exclude=exclude)


def _render_key(slot_decision: Any) -> tuple[Any, ...]:
    """What a rendered widget depends on besides the config."""
    return (slot_decision.slot, slot_decision.campaign, slot_decision.variant, slot_decision.segment,
            slot_decision.title, slot_decision.strategy, slot_decision.coupon, slot_decision.control,
            tuple([p.sku for p in slot_decision.products]))


def consume_exception(future: asyncio.Future[Any]) -> None:
    """Done callback: a failure is reported where the result is awaited (if it is); never
    "exception was never retrieved" for work whose waiter gave up (time budget)."""
    if not future.cancelled():
        future.exception()
