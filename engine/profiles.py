"""``Profiles``: a bounded, thread-safe TTL+LRU cache of profiles in front of a store.

Every page view needs a profile, so a warm ``get`` is one dict lookup under a lock.
Entries are keyed by the id asked for (``c:<customer>`` or ``v:<visitor>``); a visitor
linked to a customer caches the customer's profile under its ``v:`` key, and an alias map
remembers that so folding into the customer invalidates the visitor entry too.

Staleness: ``record`` invalidates what it changed in this process; changes made by other
processes (several app servers on one SQLite file) show after at most ``ttl`` seconds.
A load that raced with an invalidation is not cached (generation counter), so a stale
profile cannot be put back into the cache after ``record`` returned.

Profiles returned by ``get`` are shared with other threads: treat them as read-only.

``aget`` is ``get`` for stores with an async ``aload`` (Redis): the request path awaits the
store on its event loop instead of blocking a thread. Both share the cache steps
(``_lookup``, ``_remember``); only the store call differs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from cachetools import LRUCache

from .events import Event, Identify
from .expiring_cache import ExpiringLRU
from .folding import folded
from .profile import Profile, profile_key, share_repeated_values
from .stores.base import AppendResult, PersonalData, ProfileStore, personal_data_store

__all__ = ["Profiles"]


class Profiles:
    def __init__(
        self, store: ProfileStore, *, maxsize: int = 10_000, ttl: float = 60.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._cache: ExpiringLRU[str, Profile] = ExpiringLRU(maxsize=maxsize, ttl=ttl, timer=timer)
        # profile key -> lookup keys caching it under another name (visitor -> customer)
        self._aliases: LRUCache[str, set[str]] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()
        #: This process's events queued for the store but not yet appended, by profile key:
        #: folded onto every profile read, so the next page sees the last one (``_overlay``).
        self._pending: dict[str, list[Event]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def supports_async(self) -> bool:
        """True when the store can load without blocking (``aload``), so ``aget`` may be used."""
        return callable(getattr(self.store, "aload", None))

    def get(self, visitor_id: str | None = None, customer_id: str | None = None) -> Profile:
        """The profile for these ids; an empty ``Profile`` for unknown ids. May block on I/O."""
        key, cached, generation = self._lookup(visitor_id, customer_id)
        if cached is not None:
            return self._overlay(key, cached)
        found = self.store.load(visitor_id=visitor_id, customer_id=customer_id)
        return self._overlay(key, self._remember(key, generation, found, visitor_id, customer_id))

    async def aget(self, visitor_id: str | None = None, customer_id: str | None = None) -> Profile:
        """``get`` on the event loop: a miss awaits the store's ``aload`` (see ``supports_async``)."""
        key, cached, generation = self._lookup(visitor_id, customer_id)
        if cached is not None:
            return self._overlay(key, cached)
        found = await self.store.aload(visitor_id=visitor_id, customer_id=customer_id)  # type: ignore[attr-defined]
        return self._overlay(key, self._remember(key, generation, found, visitor_id, customer_id))

    def _lookup(self, visitor_id: str | None, customer_id: str | None) -> tuple[str, Profile | None, int]:
        """(lookup key, cached profile or None, generation to hand to ``_remember`` on a miss)."""
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
                return key, profile, self._generation
            except KeyError:
                self.misses += 1
                return key, None, self._generation

    def _remember(self, key: str, generation: int, found: Profile | None,
                  visitor_id: str | None, customer_id: str | None) -> Profile:
        """Cache what the store returned (an empty profile for unknown ids) and return it,
        unless an invalidation happened since ``_lookup``: then the load may be stale."""
        profile = share_repeated_values(found) if found is not None else Profile(
            key=profile_key(customer_id=customer_id, visitor_id=visitor_id),
            customer_id=customer_id or None, visitor_ids=(visitor_id,) if visitor_id else ())
        with self._lock:
            if generation == self._generation:
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
        """``profile`` with this process's pending events for ``key`` folded in (a copy)."""
        if not self._pending:  # the common case, without the lock
            return profile
        with self._lock:
            pending = tuple(self._pending.get(key, ()))
        return folded(profile, pending) if pending else profile

    def note_pending(self, events: Iterable[Event]) -> None:
        """Events queued for the store (``EventWriter.submit``): reads show them until
        ``record(..., pending=True)`` or ``forget_pending`` takes them back."""
        with self._lock:
            for event in events:
                key = profile_key(customer_id=event.customer_id, visitor_id=event.visitor_id)
                self._pending.setdefault(key, []).append(event)

    def forget_pending(self, events: Iterable[Event]) -> None:
        """Take back pending events (stored, or dropped by the writer)."""
        with self._lock:
            self._forget_pending(events)

    def _forget_pending(self, events: Iterable[Event]) -> None:
        for event in events:
            key = profile_key(customer_id=event.customer_id, visitor_id=event.visitor_id)
            queued = self._pending.get(key)
            if queued is None:
                continue
            for i, candidate in enumerate(queued):
                if candidate is event:
                    del queued[i]
                    break
            if not queued:
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
        """
        result = self.store.append(events)
        with self._lock:
            if pending:
                self._forget_pending(events)
            self._generation += 1
            for key in result.changed_keys:
                cached = self._cache.pop(key, None)
                self._drop(key)
                new = result.events.get(key)
                if cached is not None and new and _extends(cached, new):
                    self._cache[key] = folded(cached, new)
        return result

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        """Erase one person from the store (``PersonalDataStore.forget``) and from this cache;
        a shared store tells the other servers' caches itself. Returns what was erased."""
        data = personal_data_store(self.store).forget(customer_id=customer_id, visitor_id=visitor_id)
        self.invalidate(data.keys)
        return data

    def invalidate(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._generation += 1
            for key in keys:
                self._drop(key)

    def _drop(self, key: str) -> bool:
        """Drop ``key`` and its alias entries (lock held); True if ``key`` was cached."""
        cached = self._cache.pop(key, None) is not None
        for alias in self._aliases.pop(key, ()):
            self._cache.pop(alias, None)
        return cached

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()
            self._aliases.clear()

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}


def _extends(profile: Profile, events: Sequence[Event]) -> bool:
    """True when folding ``events`` onto ``profile`` gives what the store holds: all newer
    than its newest event, none an ``identify`` (which joins a visitor's history)."""
    newest = profile.newest_at
    return newest is not None and all(
        e.at.timestamp() > newest and not isinstance(e, Identify) for e in events)  # type: ignore[union-attr]
