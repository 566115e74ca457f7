"""``MemoryStore``: the in-process store for tests and demos, same semantics as SQLite.

Profiles are kept msgpack-encoded so a loaded profile is a fresh copy, exactly as from
SQLite: changing it does not change the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timezone

import msgspec

from ..errors import StoreError
from ..events import Event
from ..profile import Profile
from .base import REPORT_STATE_META_PREFIX, RESERVED_META, AppendResult, PersonalData, resolve_person
from .batch import fold_batch

__all__ = ["MemoryStore"]

_encode = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(Profile).decode


class MemoryStore:
    """A thread-safe in-memory ``ProfileStore``. ``clock`` stamps events without ``at``."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None, url: str = "memory://") -> None:
        self.url = url
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.RLock()
        self._profiles: dict[str, bytes] = {}
        self._links: dict[str, str] = {}
        self._orders: set[str] = set()
        self._events: list[tuple[float, int, Event]] = []
        #: The profile key each logged event was routed to, by its seq (``forget``/``export``);
        #: seqs come from a counter so they stay unique after ``forget`` removed events.
        self._event_keys: dict[int, str] = {}
        self._next_seq = 0
        self._meta: dict[str, bytes] = {}
        self._closed = False

    # -- BatchSource (called under the lock) --
    def existing_orders(self, order_ids: set[str]) -> set[str]:
        return order_ids & self._orders

    def links(self, visitor_ids: set[str]) -> dict[str, str]:
        return {v: self._links[v] for v in visitor_ids if v in self._links}

    def load_many(self, keys: set[str]) -> dict[str, Profile]:
        return {k: _decode_profile(self._profiles[k]) for k in keys if k in self._profiles}

    # -- ProfileStore --
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed", store=self.url)

    def load(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        with self._lock:
            self._check_open()
            if customer_id:
                key = f"c:{customer_id}"
            elif visitor_id:
                linked = self._links.get(visitor_id)
                key = f"c:{linked}" if linked else f"v:{visitor_id}"
            else:
                raise ValueError("load() needs a visitor_id or a customer_id")
            data = self._profiles.get(key)
        return None if data is None else _decode_profile(data)

    def append(self, events: Sequence[Event]) -> AppendResult:
        with self._lock:
            self._check_open()
            plan = fold_batch(events, self, now=self._clock())
            for key, profile in plan.profiles.items():
                self._profiles[key] = _encode(profile)
            for key in plan.deleted:
                self._profiles.pop(key, None)
            self._links.update(plan.links)
            self._orders.update(order_id for order_id, _ in plan.orders)
            base, self._next_seq = self._next_seq, self._next_seq + len(plan.logged)
            for offset, (event, key) in enumerate(plan.logged):
                self._events.append((event.at.timestamp(), base + offset, event))  # type: ignore[union-attr]
                self._event_keys[base + offset] = key
            self._events.sort(key=lambda row: row[:2])
            return plan.result

    def iter_profiles(self, *, batch_size: int = 1000) -> Iterator[Profile]:
        with self._lock:
            keys = sorted(self._profiles)
        for key in keys:
            with self._lock:
                data = self._profiles.get(key)
            if data is not None:
                yield _decode_profile(data)

    def count_profiles(self) -> int:
        with self._lock:
            return len(self._profiles)

    def iter_events(
        self, *, since: datetime | float | None = None, types: Collection[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Event]:
        start = since.timestamp() if isinstance(since, datetime) else since
        wanted = set(types) if types is not None else None
        with self._lock:
            rows = list(self._events)
        for at, _, event in rows:
            if start is not None and at < start:
                continue
            if wanted is not None and type(event).__struct_config__.tag not in wanted:
                continue
            yield msgspec.msgpack.decode(_encode(event), type=type(event))

    def event_fingerprint(self, until: float) -> tuple[int, int]:
        """Changes when an event with ``at < until`` is logged or removed (count, sum of seqs)."""
        with self._lock:
            seqs = [seq for at, seq, _ in self._events if at < until]
        return len(seqs), sum(seqs)

    def get_meta(self, name: str) -> bytes | None:
        with self._lock:
            return self._meta.get(name)

    def set_meta(self, name: str, value: bytes) -> None:
        if name in RESERVED_META:
            raise ValueError(f"meta name {name!r} is reserved")
        with self._lock:
            self._meta[name] = bytes(value)

    # -- PersonalDataStore --
    def _person(self, customer_id: str | None, visitor_id: str | None) -> tuple[PersonalData, list[int]]:
        """The person's data (copies) and the seqs of their events (lock held)."""
        customer, visitors = resolve_person(
            customer_id, visitor_id, link_of=self._links.get,
            visitors_of=lambda c: [v for v, linked in self._links.items() if linked == c])
        data = PersonalData(customer_id=customer, visitor_ids=visitors)
        keys = data.keys
        data.profiles = [_decode_profile(self._profiles[k]) for k in sorted(keys) if k in self._profiles]
        data.links = {v: self._links[v] for v in visitors if v in self._links}
        rows = [(seq, event) for _, seq, event in self._events if self._event_keys.get(seq) in keys]
        data.events = [msgspec.msgpack.decode(_encode(e), type=type(e)) for _, e in rows]
        return data, [seq for seq, _ in rows]

    def export(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        with self._lock:
            self._check_open()
            data = self._person(customer_id, visitor_id)[0]
            data.report_states = self._report_states()
            return data

    def _report_states(self) -> list[str]:
        return sorted(n for n in self._meta if n.startswith(REPORT_STATE_META_PREFIX))

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        with self._lock:
            self._check_open()
            data, seqs = self._person(customer_id, visitor_id)
            for key in data.keys:
                self._profiles.pop(key, None)
            for visitor in data.links:
                del self._links[visitor]
            gone = set(seqs)
            self._events = [row for row in self._events if row[1] not in gone]
            for seq in gone:
                del self._event_keys[seq]
            data.report_states = self._report_states()
            for name in data.report_states:
                del self._meta[name]
            return data

    def close(self) -> None:
        self._closed = True
