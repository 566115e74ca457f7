"""``Segmint``: the assembled runtime that the middleware, the CLI and scripts use.

It owns the store, the profile cache, the event writer and the product statistics, and holds
the current compiled config (``CompiledConfig``: config, plugins, segments, campaigns,
strategies, catalog) in one attribute. Hot reload builds a new compiled config and swaps it
in with a single assignment, so a request sees either the old state or the new one, never a
mix; each call takes one snapshot of it first. An invalid file keeps the last good state
running and is logged once.

What the store and cache were opened with (``[store]``, ``[cache]``) needs a restart to
change; everything else reloads.

    rt = Segmint.from_config("segmint.toml")
    profile = rt.profile(visitor_id="v1")          # blocking: run it in a worker thread
    decision = rt.decide(profile, ["home"], path="/")
    html = rt.render(decision.slots["home"])
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import msgspec

from .analytics.columnar import KEEP_UP_SECONDS, kept_projection
from .batch_stats import STATS_POLL, BatchStats
from .cache_invalidation import wire_invalidation
from .catalog import Catalog
from .clock import Clock, system_clock
from .config import CompiledConfig, Config, compile_config, load_compiled
from .config.reload import ConfigReloader, PeriodicThread
from .decide import Decision, SlotDecision
from .document import enriched_document, profile_document
from .personalize import PageVisit, Personalization, Personalizer
from .errors import EventError, SegmintError, StoreError
from .events import Event, Order, decode_events, stamp_events
from .failure_log import FailureLog
from .hooks import IDENTIFY_HOOKS, SegmintPluginManager, blocking_plugins, call_each, first_result
from .product_stats import ProductStats
from .profile import Profile
from .profiles import Profiles
from .stores import AppendResult, CompactingStore, ProfileStore, open_store
from .stores.base import PersonalData
from .writer import EventWriter

__all__ = ["Runtime", "Segmint", "RuntimeExplanation"]

log = logging.getLogger("segmint.runtime")

#: How often the config file is polled for changes (a change shows within 2 s).
RELOAD_INTERVAL = 0.5
#: How long ``forget`` waits for this process's queued events to be written first.
PRIVACY_FLUSH_SECONDS = 5.0
#: Seconds between the embedded compactor's tries (each folds everything waiting).
COMPACT_INTERVAL = 0.2


@dataclass(frozen=True)
class RuntimeExplanation:
    """What ``segmint explain`` shows: the document, each segment's verdict, the decision."""

    document: dict[str, Any]
    #: Segment name -> ``Explanation`` (``.matched``, ``str()``, ``.to_dict()``).
    segments: dict[str, Any]
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": msgspec.to_builtins(self.document),
            "segments": {name: exp.to_dict() for name, exp in self.segments.items()},
            "decision": self.decision.to_dict(),
        }


def _log_catalog_problems(catalog: Catalog, previous: Catalog | None = None) -> None:
    """Log each bad product the catalog left out, once: a reload that finds the same ones
    (the config changed, not the catalog) says nothing new. The good products are served."""
    messages = [str(problem) for problem in catalog.problems]
    if not catalog.rejected or (previous is not None and previous.rejected == catalog.rejected
                                and messages == [str(problem) for problem in previous.problems]):
        return
    for message in messages:
        log.warning("segmint: bad product left out of the catalog: %s", message)
    unlisted = catalog.rejected - len(messages)
    if unlisted:
        log.warning("segmint: %d more bad products left out of the catalog (not listed)", unlisted)


class Runtime(Protocol):
    """What the middleware and the CLI use of a runtime (``Segmint`` is the one
    implementation; tests may pass their own). Typed, so that no caller probes it."""

    clock: Clock
    store: ProfileStore
    profiles: Profiles
    writer: EventWriter
    batch: BatchStats
    failures: FailureLog
    compaction: dict[str, Any] | None
    personalize: Callable[[PageVisit, Profile], Personalization]
    #: The compiled config in use (a hot reload swaps it whole): read it once per request.
    state: CompiledConfig
    #: Whether no plugin on the decision path (``decide``, ``render``) may block.
    decides_on_loop: bool
    #: Whether no ``segmint_identify_visitor`` plugin may block.
    identifies_on_loop: bool

    @property
    def config(self) -> Config: ...
    @property
    def pm(self) -> SegmintPluginManager: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def last_reload_error(self) -> SegmintError | None: ...

    def profile(self, visitor_id: str | None = None, customer_id: str | None = None) -> Profile: ...
    def document_builder(self, now: datetime | None = None, *,
                         only: Collection[str] | None = None) -> Callable[[Profile], dict[str, Any]]: ...
    def explain(self, profile: Profile, slot: str | None = None, *, path: str = "/",
                visitor_id: str | None = None, now: datetime | None = None) -> RuntimeExplanation: ...
    def decide(self, profile: Profile, slots: Iterable[str], *, path: str = "/", visitor_id: str | None = None,
               now: datetime | None = None, exclude: Iterable[str] = ()) -> Decision: ...
    def render(self, slot_decision: SlotDecision) -> str: ...
    def track(self, events: Iterable[Event | Mapping[str, Any]]) -> bool: ...
    def record(self, events: Iterable[Event | Mapping[str, Any]]) -> AppendResult: ...
    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData: ...
    def close(self) -> None: ...


class Segmint:
    """The runtime. Build it with ``Segmint.from_config``; close it with ``close()``."""

    def __init__(
        self,
        state: CompiledConfig,
        *,
        store: ProfileStore,
        clock: Clock = system_clock,
        extra_plugins: Sequence[str | ModuleType | Any] = (),
        watch_file: bool = True,
        watch: bool = True,
        owns_store: bool = True,
    ) -> None:
        self.clock = clock
        self.store = store
        self._owns_store = owns_store
        self._reloader = ConfigReloader(state, extra_plugins=extra_plugins, watch_file=watch_file)
        self._reload_lock = threading.Lock()
        #: The compiled config in use: swapped whole by a hot reload (``_install``).
        self.state: CompiledConfig
        #: Whether ``decide``/``render`` and identification never block (``_check_loop_safety``).
        self.decides_on_loop = self.identifies_on_loop = False
        self._install(state)
        self.batch = BatchStats(store, clock)
        #: Contained plugin failures (strategies, enrichers, observers, renderers): counted by
        #: plugin and hook, logged at most once a minute each.
        self.failures = FailureLog()
        cache = state.config.cache
        self.profiles = Profiles(store, maxsize=cache.maxsize, ttl=cache.ttl_seconds)
        # Shared stores (Redis) tell every server which profiles changed; others rely on the TTL.
        wire_invalidation(store, self.profiles)
        self.writer = EventWriter(self.profiles, on_recorded=self._events_recorded)
        self._personalizer = Personalizer(self)
        #: Decide and render one page (``Personalizer.personalize``): the middleware's one call.
        self.personalize: Callable[[PageVisit, Profile], Personalization] = self._personalizer.personalize
        self._threads: list[PeriodicThread] = []
        #: ``{"events", "seconds"}`` not yet folded into the store's rows, as last measured by
        #: the embedded compactor (None without one); shown on ``/health``.
        self.compaction: dict[str, Any] | None = None
        self._log_ends: deque[tuple[float, int]] = deque(maxlen=3000)  # (time, log end) looks
        #: Whether this process's compactor folded at its last try (no other process held the lock).
        self._compacts = True
        try:
            self.refresh_stats()
        except BaseException:
            self.writer.close(timeout=1.0)  # nothing was queued; the caller closes the store
            raise
        _log_catalog_problems(state.catalog)  # once up: a failed start that is retried would repeat it
        if watch:
            if self._reloader.watching:
                self._threads.append(PeriodicThread(self.reload_if_changed, lambda: RELOAD_INTERVAL,
                                                    name="segmint-config-watch").start())
            self._threads.append(PeriodicThread(self.refresh_stats_if_due, lambda: STATS_POLL,
                                                name="segmint-stats").start())
            if isinstance(store, CompactingStore):
                # The embedded compactor: every process tries the store's lock, one folds.
                with contextlib.suppress(StoreError):  # /health shows the lag from the start
                    self._measure_lag(store)
                self._threads.append(PeriodicThread(self.compact, lambda: COMPACT_INTERVAL,
                                                    name="segmint-compactor").start())
            if kept_projection(store, "auto") is not None:  # reports may read the store through DuckDB
                self._threads.append(PeriodicThread(self.keep_report_projection_current,
                                                    lambda: KEEP_UP_SECONDS, name="segmint-report-projection").start())

    @classmethod
    def from_config(
        cls,
        config: str | Path | Config,
        *,
        clock: Clock | None = None,
        extra_plugins: Sequence[str | ModuleType | Any] = (),
        store: ProfileStore | None = None,
        watch: bool = True,
    ) -> Segmint:
        """Load (or take) a config, its plugins and catalog, open the store, start the threads.

        ``store``: use this store instead of the one ``[store]`` names (it is not closed by
        ``close()``). ``watch``: poll the config file for changes and refresh the product
        statistics in the background; tests pass False and call ``reload_if_changed()`` and
        ``refresh_stats()`` themselves.
        """
        clock = clock or system_clock
        if isinstance(config, Config):
            state = compile_config(config, extra_plugins=extra_plugins)
        else:
            state = load_compiled(config, extra_plugins=extra_plugins)
        owns_store = store is None
        if store is None:
            store = open_store(state.config.store_location, clock=clock)
        try:
            return cls(state, store=store, clock=clock, extra_plugins=extra_plugins, watch=watch,
                       owns_store=owns_store)
        except BaseException:
            # A start that fails half-way (the store opens, its first read fails) is retried
            # while the app runs (``RuntimeStarter``): each attempt must not leak a connection.
            if owns_store:
                store.close()
            raise

    # -- the current state --------------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self.state.config

    @property
    def pm(self) -> SegmintPluginManager:
        return self.state.pm

    @property
    def catalog(self) -> Catalog:
        return self.state.catalog

    def _install(self, state: CompiledConfig) -> None:
        """Make ``state`` the current one. Until its loop safety is worked out both answers
        are False: the pool is always a safe place to decide and identify."""
        self.decides_on_loop = self.identifies_on_loop = False
        self.state = state  # the one atomic swap
        if self._check_loop_safety not in state.pm.on_change:  # a reload may keep the manager
            state.pm.on_change.append(self._check_loop_safety)  # a plugin registered later counts too
        self._check_loop_safety()

    def _check_loop_safety(self) -> None:
        """Set ``decides_on_loop``: True when ``decide`` and ``render`` never block (only
        built-in or ``segmint_loop_safe`` plugins take part, ``blocking_plugins``; profiles come
        from memory, which the caller checks), so the middleware decides without a thread hop;
        and ``identifies_on_loop``: True when no plugin's ``segmint_identify_visitor`` may block,
        so the middleware identifies a request on the event loop, else in its worker pool.
        Worked out when the config or its plugins change, not on every page."""
        pm = self.state.pm
        self.decides_on_loop = not blocking_plugins(pm)
        self.identifies_on_loop = not blocking_plugins(pm, IDENTIFY_HOOKS)

    # -- profiles and documents -----------------------------------------------------------------

    def profile(self, visitor_id: str | None = None, customer_id: str | None = None) -> Profile:
        """The profile for these ids (empty when unknown). Blocking: run it in a thread."""
        return self.profiles.get(visitor_id=visitor_id, customer_id=customer_id)

    def document(self, profile: Profile, now: datetime | None = None, *,
                 only: Collection[str] | None = None) -> dict[str, Any]:
        """The document rules see: derived fields, RFM scores, predictions, plugin enrichments.

        ``only``: the top-level keys needed (a filter's ``fields``); other sections may be
        left out, which makes a scan of many profiles for one segment much cheaper.
        """
        return self._document(self.state, profile, now or self.clock(), only)

    def document_builder(self, now: datetime | None = None, *,
                         only: Collection[str] | None = None) -> Callable[[Profile], dict[str, Any]]:
        """``build(profile) -> document`` at one ``now``, for scans over many profiles
        (``segmint audience``, segment snapshots): the time, the RFM thresholds and whether a
        plugin enriches documents are settled once, not per profile. Same documents as
        ``document(profile, now, only=only)``.
        """
        state, now = self.state, now or self.clock()
        if state.pm.hook.segmint_enrich_document.get_hookimpls():
            return lambda profile: self._document(state, profile, now, only)
        ts, rfm, keys = now.timestamp(), self.batch.rfm, frozenset(only) if only is not None else None
        predict = self.batch.predict
        return lambda profile: profile_document(profile, ts, rfm=rfm, predict=predict, only=keys)

    def _document(self, state: CompiledConfig, profile: Profile, now: datetime,
                  only: Collection[str] | None = None) -> dict[str, Any]:
        return enriched_document(profile, now, rfm=self.batch.rfm, predict=self.batch.predict, pm=state.pm,
                                 failure_log=self.failures, only=only)

    def segments(self, profile: Profile, now: datetime | None = None) -> dict[str, bool]:
        """Membership of every named segment."""
        state, now = self.state, now or self.clock()
        document = self._document(state, profile, now)
        together = state.segment_set
        return dict(zip(together.names, together.members(document, now)))

    # -- decisions ------------------------------------------------------------------------------

    def decide(
        self,
        profile: Profile,
        slots: Iterable[str],
        *,
        path: str = "/",
        visitor_id: str | None = None,
        now: datetime | None = None,
        exclude: Iterable[str] = (),
    ) -> Decision:
        """Decide the ``slots`` of one page view at ``path``; observers are told.

        Variants are bucketed by ``visitor_id`` when given, else by the profile key.
        ``exclude``: skus already on the page (the product of a product page).
        """
        return self._personalizer.decide(profile, slots, path=path, visitor_id=visitor_id,
                                         now=now or self.clock(), exclude=exclude)

    def render(self, slot_decision: SlotDecision) -> str:
        """The widget HTML of a slot ("" when nothing is shown). A failing renderer is skipped.

        Cached per config and decision content (``Personalizer.render``)."""
        return self._personalizer.render(slot_decision)

    def render_uncached(self, slot_decision: SlotDecision) -> str:
        """``render`` without the cache: asks the ``segmint_render_widget`` hook."""
        if not slot_decision.shown:
            return ""
        state = self.state
        html = first_result(state.pm, "segmint_render_widget", contain=True, failure_log=self.failures,
                            slot_decision=slot_decision, config=state.config)
        return html or ""

    def explain(self, profile: Profile, slot: str | None = None, *, path: str = "/",
                visitor_id: str | None = None, now: datetime | None = None) -> RuntimeExplanation:
        """Why this profile is (not) in each segment, and what each slot would show.

        Without ``slot``, every slot some campaign targets. Observers are not told.
        """
        state, now = self.state, now or self.clock()
        document = self._document(state, profile, now)
        segments = {name: f.explain(document, now) for name, f in state.segments.items()}
        slots = [slot] if slot else sorted({s for c in state.campaigns for s in c.slots})
        decision = self._personalizer.decide(profile, slots, path=path, visitor_id=visitor_id, now=now,
                                             document=document, state=state, observed=False)
        return RuntimeExplanation(document=document, segments=segments, decision=decision)

    # -- events ---------------------------------------------------------------------------------

    def _events(self, events: Iterable[Event | Mapping[str, Any]]) -> list[Event]:
        items = list(events)
        if all(isinstance(e, msgspec.Struct) for e in items):
            stamp_events(items, clock=self.clock)  # type: ignore[arg-type]
            return items  # type: ignore[return-value]
        decoded, errors = decode_events([e if isinstance(e, Mapping) else msgspec.to_builtins(e) for e in items],
                                        now=self.clock())
        if errors:
            raise errors[0] if len(errors) == 1 else EventError(
                f"{len(errors)} invalid events; first: {errors[0]}", index=errors[0].index, field=errors[0].field)
        return decoded

    def record(self, events: Iterable[Event | Mapping[str, Any]]) -> AppendResult:
        """Store and fold events now (durable when this returns); observers are told.

        Events without ``at`` get the runtime clock's time. Raises ``EventError`` for an
        invalid event (nothing is stored then).
        """
        batch = self._events(events)
        result = self.profiles.record(batch)
        self._events_recorded(batch, result)
        return result

    def track(self, events: Iterable[Event | Mapping[str, Any]]) -> bool:
        """Queue events for the background writer; never blocks. Like ``record``, takes
        dicts (decoded) and structs, and gives events without ``at`` the clock's time; the
        middleware hands the events it builds itself (``tracking.py``) to ``writer`` as they are."""
        return self.writer.submit(self._events(events))

    def _events_recorded(self, events: Sequence[Event], result: AppendResult) -> None:
        if result.stored and any(isinstance(e, Order) for e in events):
            self.batch.note_orders()  # bestsellers and co-purchases follow within seconds
        call_each(self.state.pm, "segmint_events_recorded", failure_log=self.failures, events=events,
                  result=result)

    # -- privacy requests -----------------------------------------------------------------------

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        """Erase one person: profiles, links, logged events, saved report states, cached copies.

        This process's queued events are written first, so a page view of the person still
        in the writer's queue is erased too instead of bringing them back a moment later.
        Other processes' queues are not reached: an event of the person another worker
        queued in the last ``flush_interval`` may still be written after the erasure (run it
        again to be sure). The wait for the queue is bounded (``PRIVACY_FLUSH_SECONDS``): while
        the store is down the writer holds its queue, and the erasure then fails on its own.
        Blocking: run it in a thread.
        """
        self.writer.flush(PRIVACY_FLUSH_SECONDS)
        return self.profiles.forget(customer_id=customer_id, visitor_id=visitor_id)

    # -- batch jobs -----------------------------------------------------------------------------

    @property
    def stats(self) -> ProductStats:
        """The current product statistics (bestsellers, co-purchase, co-view)."""
        return self.batch.products

    def refresh_stats(self) -> ProductStats:
        """Rebuild product statistics, and RFM thresholds and the predictive model when stale
        (a batch job)."""
        return self.batch.refresh(self.config.stats.window_days)

    def refresh_stats_if_due(self) -> bool:
        """Rebuild when new orders call for it or ``[stats] refresh_seconds`` passed; the stats
        thread calls this every ``STATS_POLL`` seconds."""
        stats = self.config.stats
        return self.batch.refresh_if_due(stats.window_days, stats.refresh_seconds)

    def compact(self) -> None:
        """Fold what the store logged into its rows while this process holds the compactor
        lock (another process may hold it: then that one folds), then measure the lag."""
        store = self.store
        if not isinstance(store, CompactingStore):
            return
        try:
            while folded := store.compact():
                pass
            self._compacts = folded is not None  # None: another process holds the compactor lock
            self._measure_lag(store)
        except StoreError as exc:  # the store is down or busy: retried next time, logged once
            if self.compaction is None or self.compaction.get("error") != str(exc):
                log.warning("segmint: compaction failed, retrying: %s", exc)
            self.compaction = {**(self.compaction or {"events": 0, "seconds": 0.0}), "error": str(exc)}

    def keep_report_projection_current(self) -> int | None:
        """Append the newly logged events to the reports' DuckDB projection when reports read
        through it (``[analytics] reader``; see ``analytics/columnar.py``), so a report finds it
        current; the events appended, or None when there is nothing to keep or it is busy.
        A failure is counted and logged once a minute; reports still read the log. Left to
        the compactor in its own process (``segmint fold --follow``) while it holds the lock,
        so a worker's CPU goes to pages."""
        projection = kept_projection(self.store, self.config.analytics.reader)
        if projection is None or not self._compacts:
            return None
        try:
            return projection.keep_up()
        except Exception as exc:  # noqa: BLE001 - reports catch up themselves (or read in Python)
            self.failures.report(log, "report-projection", f"segmint: keeping the report projection current "
                                 f"failed: {exc}", exc)
            return None

    def _measure_lag(self, store: CompactingStore) -> None:
        folded, logged = store.compaction_position()
        # Seconds behind: since the first look that found the log already holding the oldest
        # event still unfolded (the looks are COMPACT_INTERVAL apart, ends only grow).
        now = self.clock().timestamp()
        self._log_ends.append((now, logged))
        since = next((at for at, end in self._log_ends if end > folded), now)
        self.compaction = {"events": logged - folded, "seconds": round(now - since, 3)}

    # -- hot reload -----------------------------------------------------------------------------

    @property
    def last_reload_error(self) -> SegmintError | None:
        """The error of the last reload that failed (None after a good one)."""
        return self._reloader.last_error

    def reload_if_changed(self) -> bool:
        """Reload when the config (or catalog) file changed; True when a new state was swapped in.

        An invalid change keeps the current state, logs the error once per file content and
        keeps it in ``last_reload_error``.
        """
        with self._reload_lock:
            new = self._reloader.poll(self.state)
            if new is None:
                return False
            _log_catalog_problems(new.catalog, self.state.catalog)
            self._install(new)
            return True

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the background threads, flush queued events, close the store if we opened it."""
        for thread in self._threads:
            thread.stop()
        self._threads.clear()
        self.writer.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Segmint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
