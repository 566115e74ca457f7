"""``Profiles``: a bounded, thread-safe TTL+LRU cache of profiles in front of a store.

Every page view needs a profile, so a warm ``get`` is one dict lookup under a lock.
Entries are keyed by the id asked for (``c:<customer>`` or ``v:<visitor>``); a visitor
linked to a customer caches the customer's profile under its ``v:`` key, and an alias map
remembers that so folding into the customer invalidates the visitor entry too.

Staleness: ``record`` invalidates what it changed in this process; changes made by other
processes (several app servers on one SQLite file) show after at most ``ttl`` seconds.
A load that raced with a change of its key is not cached (a generation counter, and the
generation each key last changed at), so a stale profile cannot be put back into the cache
after ``record`` returned; a load racing with changes of other keys is cached (under load
the writer stores a batch every few milliseconds: a global check would keep a busy
visitor's profile out of the cache, and refold their pending events on every page).

Profiles returned by ``get`` are shared with other threads: treat them as read-only.

``aget`` is ``get`` for stores with an async ``aload`` (Redis): the request path awaits the
store on its event loop instead of blocking a thread. Both share the cache steps
(``_lookup``, ``_remember``); only the store call differs.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from cachetools import LRUCache

from .events import Event, Identify
from .folding import folded
from .profile import Profile, profile_key, share_repeated_values
from .privacy import forget_person
from .stores.base import AppendResult, PersonalData, ProfileStore, UnsyncedAppendStore

__all__ = ["Profiles", "ExpiringLRU"]

#: How long a request waits for another request's load of the same profile before loading it
#: itself (a store that hangs is bounded by its own timeouts and the request's time budget).
FOLLOW_SECONDS = 2.0


class Profiles:
    def __init__(
        self, store: ProfileStore, *, maxsize: int = 10_000, ttl: float = 60.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        #: The writer's batches (``record(..., pending=True)``) are logged without waiting
        #: for the disk where the store can (nobody waits for them).
        self._unsynced = isinstance(store, UnsyncedAppendStore)
        self._cache: ExpiringLRU[str, Profile] = ExpiringLRU(maxsize=maxsize, ttl=ttl, timer=timer)
        # profile key -> lookup keys caching it under another name (visitor -> customer)
        self._aliases: LRUCache[str, set[str]] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()
        #: This process's events queued for the store but not yet appended, by profile key,
        #: with the profile they make (``_overlay``), so the next page sees the last one.
        self._pending: dict[str, _Pending] = {}
        self._generation = 0
        #: Key -> the generation it last changed at (``record``, ``invalidate``). Bounded:
        #: when it is cleared, loads that began before are not cached (``_floor``).
        self._changed: dict[str, int] = {}
        self._floor = 0
        self._changed_bound = 4 * maxsize
        #: Key -> the loads of it under way, each told what ``record`` stores for the key.
        self._loading: dict[str, list[_Load]] = {}
        self.hits = 0
        self.misses = 0

    @property
    def supports_async(self) -> bool:
        """True when the store can load without blocking (``aload``), so ``aget`` may be used."""
        return callable(getattr(self.store, "aload", None))

    def get(self, visitor_id: str | None = None, customer_id: str | None = None) -> Profile:
        """The profile for these ids; an empty ``Profile`` for unknown ids. May block on I/O."""
        key, cached, load = self._lookup(visitor_id, customer_id, follow=True)
        if cached is not None:
            return self._overlay(key, cached)
        assert load is not None
        leader = load.leader
        if leader is not None:  # the same profile is being loaded: wait for that load instead
            if leader.done.wait(FOLLOW_SECONDS) and leader.result is not None:
                with self._lock:  # the cached entry, if the load was cached: record() keeps it current
                    try:
                        current = self._cache[key]
                    except KeyError:
                        current = leader.result
                return self._overlay(key, current)
            load = self._watch(key, load)  # the leader failed or is slow: load it ourselves
        try:
            found = self.store.load(visitor_id=visitor_id, customer_id=customer_id)
        except BaseException:
            self._unwatch(key, load)
            raise
        return self._overlay(key, self._remember(key, load, found, visitor_id, customer_id))

    async def aget(self, visitor_id: str | None = None, customer_id: str | None = None) -> Profile:
        """``get`` on the event loop: a miss awaits the store's ``aload`` (see ``supports_async``)."""
        key, cached, load = self._lookup(visitor_id, customer_id)
        if cached is not None:
            return self._overlay(key, cached)
        try:
            found = await self.store.aload(visitor_id=visitor_id, customer_id=customer_id)  # type: ignore[attr-defined]
        except BaseException:
            self._unwatch(key, load)
            raise
        return self._overlay(key, self._remember(key, load, found, visitor_id, customer_id))

    def _lookup(self, visitor_id: str | None, customer_id: str | None,
                follow: bool = False) -> tuple[str, Profile | None, _Load | None]:
        """(lookup key, cached profile or None, the load to hand to ``_remember`` on a miss).

        ``follow``: when the same ids are being loaded already, the load returned is not
        registered and has that one as its ``leader`` to wait for (one store read however
        many requests of a busy visitor miss the cache at once, e.g. when its entry expired)."""
        if customer_id:
            key = "c:" + customer_id
        elif visitor_id:
            key = "v:" + visitor_id
        else:
            raise ValueError("get() needs a visitor_id or a customer_id")
        with self._lock:
            try:  # one cache call: Cache.get() would check the expiry twice
                profile = self._cache[key]
                self.hits += 1
                return key, profile, None
            except KeyError:
                self.misses += 1
                ids = (visitor_id, customer_id)
                load = _Load(self._generation, ids)
                loads = self._loading.setdefault(key, [])
                if follow:
                    load.leader = next((other for other in loads if other.ids == ids), None)
                    if load.leader is not None:
                        return key, None, load
                loads.append(load)
                return key, None, load

    def _watch(self, key: str, follower: _Load) -> _Load:
        """A registered load of ``key`` for a follower that loads after all."""
        with self._lock:
            load = _Load(self._generation, follower.ids)
            self._loading.setdefault(key, []).append(load)
            return load

    def _unwatch(self, key: str, load: _Load | None) -> None:
        """Stop telling ``load`` what is stored for ``key``; its followers load themselves."""
        with self._lock:
            self._forget_load(key, load)
        if load is not None:
            load.done.set()

    def _forget_load(self, key: str, load: _Load | None) -> None:
        loads = self._loading.get(key)
        if loads is not None and load in loads:
            loads.remove(load)
            if not loads:
                del self._loading[key]

    def _remember(self, key: str, load: _Load | None, found: Profile | None,
                  visitor_id: str | None, customer_id: str | None) -> Profile:
        """Cache what the store returned (an empty profile for unknown ids) and return it.

        A batch stored for ``key`` while the load ran may be in what it returned or not.
        When all its events are newer than the loaded profile's newest, it is not: they are
        folded in and the result cached (as ``record`` extends a cached profile). Otherwise
        (some may be in it, an invalidation, a change of the customer a visitor's profile
        was found under) it is returned uncached: the next read loads again. Without that
        check a hot visitor whose entry expired under load would be sent back to the store
        on every page, each load overlapping one of the writer's batches."""
        profile = share_repeated_values(found) if found is not None else Profile(
            key=profile_key(customer_id=customer_id, visitor_id=visitor_id),
            customer_id=customer_id or None, visitor_ids=(visitor_id,) if visitor_id else ())
        with self._lock:
            profile = self._settle(key, load, profile)
        if load is not None:
            load.result = profile
            load.done.set()
        return profile

    def _settle(self, key: str, load: _Load | None, profile: Profile) -> Profile:
        """``_remember``'s decision (lock held): the profile to return, cached when it may be."""
        self._forget_load(key, load)
        if load is None or load.generation < self._floor or load.invalidated:
            return profile
        if profile.key != key and self._changed.get(profile.key, -1) > load.generation:
            return profile
        if load.stored:
            if not _extends(profile, load.stored):
                return profile
            profile = folded(profile, load.stored)
        self._cache[key] = profile
        if profile.key != key:
            aliases = self._aliases.get(profile.key)
            if aliases is None:
                aliases = self._aliases[profile.key] = set()
            aliases.add(key)
        return profile

    def peek(self, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        """The cached profile for these ids, or None; never touches the store (never blocks).

        The middleware calls it on the event loop so a returning visitor needs no thread hop.
        """
        key = ("c:" + customer_id) if customer_id else ("v:" + visitor_id) if visitor_id else None
        if key is None:
            return None
        with self._lock:
            try:
                profile = self._cache[key]
            except KeyError:
                return None
            self.hits += 1
        return self._overlay(key, profile)

    def _overlay(self, key: str, profile: Profile) -> Profile:
        """``profile`` with this process's pending events for ``key`` folded in.

        The folded copy is kept with the pending events and extended by the events noted
        since the last read, so each queued event is folded once however often its key is
        read (a busy visitor's backlog must not make each of their pages slower).
        """
        if not self._pending:  # the common case, without the lock
            return profile
        with self._lock:
            pending = self._pending.get(key)
            return profile if pending is None else pending.applied_to(profile)

    def note_pending(self, events: Iterable[Event]) -> None:
        """Events queued for the store (``EventWriter.submit``): reads show them until
        ``record(..., pending=True)`` or ``forget_pending`` takes them back."""
        with self._lock:
            for event in events:
                # ``profile_key``, inline as in ``_lookup``: this runs for each event of a page.
                customer = event.customer_id
                key = f"c:{customer}" if customer else f"v:{event.visitor_id}"
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = _Pending()
                pending.events.append(event)

    def forget_pending(self, events: Iterable[Event]) -> None:
        """Take back pending events (stored, or dropped by the writer)."""
        with self._lock:
            self._forget_pending(events)

    def _forget_pending(self, events: Iterable[Event],
                        stored: dict[str, tuple[Profile, Profile, int]] | None = None) -> None:
        """Take ``events`` back from the pending lists (lock held). ``stored``: by key, the
        cached profile before and after ``record`` folded the stored events in, and their
        number (the kept overlays move onto the new profile)."""
        by_key: dict[str, list[Event]] = {}
        for event in events:
            by_key.setdefault(
                profile_key(customer_id=event.customer_id, visitor_id=event.visitor_id), []).append(event)
        for key, taken in by_key.items():
            pending = self._pending.get(key)
            if pending is not None and pending.take(taken, None if stored is None else stored.get(key)):
                del self._pending[key]

    def record(self, events: Sequence[Event], *, pending: bool = False) -> AppendResult:
        """Store ``events`` durably, then bring the cache up to date.

        A changed profile that was cached gets the stored events folded into it in memory
        (``folded``; the store only logged them): an active visitor's own page views would
        otherwise evict their profile every time they are stored. That is the store's
        profile too when the events are newer than every event in it and none joins a
        visitor; otherwise (a late event, an identify) the entry is dropped and reloads once.
        Profiles that were not cached are not added (a bulk backfill must not flush the
        visitors who are on the site), and alias entries of identified visitors are dropped.
        ``pending``: the events were noted with ``note_pending`` (the writer's batches); in
        the same step as the cache update they stop being overlaid, so none counts twice.
        They are logged with ``append_unsynced`` where the store has it: they survive this
        process dying but are not synced to disk one batch at a time (``UnsyncedAppendStore``).
        """
        if pending and self._unsynced:
            result = self.store.append_unsynced(events)  # type: ignore[attr-defined]
        else:
            result = self.store.append(events)
        with self._lock:
            self._generation += 1
            extended: dict[str, tuple[Profile, Profile, int]] = {}  # key -> (before, after, events)
            for key in result.changed_keys:
                self._note_changed(key)
                cached = self._cache.pop(key, None)
                self._drop(key)
                new = result.events.get(key)
                for load in self._loading.get(key, ()):
                    if new:
                        load.stored.extend(new)
                    else:  # changed without events of its own: joined to a customer
                        load.invalidated = True
                if cached is not None and new and _extends(cached, new):
                    self._cache[key] = after = folded(cached, new)
                    extended[key] = (cached, after, len(new))
            if pending:
                self._forget_pending(events, extended)
        return result

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        """Erase one person from the store (``PersonalDataStore.forget``) and from this cache;
        a shared store tells the other servers' caches itself. Returns what was erased."""
        data = forget_person(self.store, customer_id=customer_id, visitor_id=visitor_id)
        self.invalidate(data.keys)
        return data

    def invalidate(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._generation += 1
            for key in keys:
                self._note_changed(key)
                for load in self._loading.get(key, ()):
                    load.invalidated = True
                self._drop(key)

    def _note_changed(self, key: str) -> None:
        """Remember that ``key`` changed at this generation (lock held). A load of it under
        way learns what was stored from ``record``; ``invalidate`` calls this for keys that
        changed elsewhere, whose loads may be stale: they are not cached."""
        if len(self._changed) >= self._changed_bound:  # forget them all: older loads are refused
            self._changed.clear()
            self._floor = self._generation
        self._changed[key] = self._generation

    def _drop(self, key: str) -> bool:
        """Drop ``key`` and its alias entries (lock held); True if ``key`` was cached."""
        cached = self._cache.pop(key, None) is not None
        for alias in self._aliases.pop(key, ()):
            self._cache.pop(alias, None)
        return cached

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._floor = self._generation
            self._changed.clear()
            self._cache.clear()
            self._aliases.clear()

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}


def _extends(profile: Profile, events: Sequence[Event]) -> bool:
    """True when folding ``events`` onto ``profile`` gives what the store holds: all newer
    than its newest event, none an ``identify`` (which joins a visitor's history). A blank
    visitor's profile (cached for a visitor the store did not know) has no newest event: any
    is newer. (A blank customer profile lists the visitor asked with, which the store's need
    not: it reloads.)"""
    newest = profile.newest_at
    if newest is None:
        if profile.customer_id or profile != Profile(key=profile.key, visitor_ids=profile.visitor_ids):
            return False  # e.g. stored before ``newest_at`` was kept: the store refolds it
        newest = float("-inf")
    return all(e.at.timestamp() > newest and not isinstance(e, Identify) for e in events)  # type: ignore[union-attr]


class _Pending:
    """One key's queued events, oldest first, and the last overlay made of them: ``profile``
    is ``base`` with the first ``applied`` events folded in. Lock held by the caller."""

    __slots__ = ("events", "base", "profile", "applied")

    def __init__(self) -> None:
        self.events: deque[Event] = deque()
        self.base: Profile | None = None
        self.profile: Profile | None = None
        self.applied = 0

    def applied_to(self, base: Profile) -> Profile:
        """``base`` with every pending event folded in; only the events not yet in the kept
        overlay are folded, unless ``base`` is another profile than last time (reloaded)."""
        if base is not self.base or self.profile is None:
            self.base, self.profile, self.applied = base, base, 0
        if self.applied < len(self.events):
            self.profile = folded(self.profile, itertools.islice(self.events, self.applied, None))
            self.applied = len(self.events)
        return self.profile

    def take(self, events: list[Event], stored: tuple[Profile, Profile, int] | None) -> bool:
        """Remove ``events`` (stored or dropped); True when nothing is left pending.

        The writer stores and drops its queue in order, so they are the oldest pending
        events: popped from the front. When the stored events are now in the cached profile
        ``holder`` (the cache was extended with them), the kept overlay is still right on top
        of it (``stored``: the cached profile before and after, and how many events it got:
        all of them, or a duplicate order the overlay counted was not stored); otherwise it
        is rebuilt on the next read."""
        for event in events:
            if self.events and self.events[0] is event:
                self.events.popleft()
            else:  # not in queue order (a caller other than the writer): find it
                try:
                    index = next(i for i, queued in enumerate(self.events) if queued is event)
                except StopIteration:
                    continue
                del self.events[index]
                self.base = None  # the overlay held an event no longer pending
        if (stored is not None and self.base is stored[0] and stored[2] == len(events)
                and self.applied >= len(events)):
            self.base, self.applied = stored[1], self.applied - len(events)
        else:
            self.base = self.profile = None
            self.applied = 0
        return not self.events


class _Load:
    """A store load under way (a cache miss): the generation it began at, the ids asked for,
    the events stored for its key meanwhile, whether its key was invalidated meanwhile; and,
    for the requests that wait for it (``leader``), ``done`` and the profile it gave."""

    __slots__ = ("generation", "ids", "stored", "invalidated", "leader", "done", "result")

    def __init__(self, generation: int, ids: tuple[str | None, str | None]) -> None:
        self.generation = generation
        self.ids = ids
        self.stored: list[Event] = []
        self.invalidated = False
        self.leader: _Load | None = None
        self.done = threading.Event()
        self.result: Profile | None = None


K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class ExpiringLRU(Generic[K, V]):
    """A bounded map whose entries expire ``ttl`` seconds (of ``timer``) after they were set:
    the profile cache's map, least recently used evicted first.

    Why not ``cachetools.TTLCache`` (which it replaces in ``Profiles``): TTLCache keeps a Python
    ``_Link`` object per entry (a doubly linked list in expiry order), and the cyclic garbage
    collector walks every one of them in each full collection, which stops the thread serving
    pages. With 100,000 profiles cached a full pass took ~125 ms here with TTLCache, ~35 ms
    with this map. This map keeps ``(value, expires_at)`` tuples in an ``OrderedDict``, whose
    order is kept in C, so an entry costs the collector nothing once its tuple is untracked (the
    profile structs opt out of the collector themselves). Nothing else changes: an entry expires ``ttl`` seconds after it was
    set (a hit does not extend it), a hit makes it the most recently used, and a full map
    evicts its least recently used entry.

    Not thread-safe: ``Profiles`` calls it under its own lock.
    """

    __slots__ = ("maxsize", "ttl", "timer", "_data")

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float]) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize!r}")
        self.maxsize = maxsize
        self.ttl = ttl
        self.timer = timer
        self._data: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        """The live value of ``key`` (now the most recently used); ``KeyError`` if it is
        missing or expired (an expired entry is dropped)."""
        value, expires = self._data[key]
        if expires <= self.timer():
            del self._data[key]
            raise KeyError(key)
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        data = self._data
        if key in data:
            del data[key]
        elif len(data) >= self.maxsize:
            data.popitem(last=False)  # the least recently used
        data[key] = (value, self.timer() + self.ttl)

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Remove ``key``; its value (expired or not), else ``default``."""
        entry = self._data.pop(key, _MISSING)
        return default if entry is _MISSING else entry[0]  # type: ignore[index]

    def __contains__(self, key: object) -> bool:
        entry = self._data.get(key)  # type: ignore[call-overload]
        return entry is not None and entry[1] > self.timer()

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
