"""``MemoryStore``: the in-process store for tests and demos, same semantics as SQLite.

Profiles are kept msgpack-encoded so a loaded profile is a fresh copy, exactly as from
SQLite: changing it does not change the store. Like SQLite, ``append`` only logs; ``load``
folds a row's tail on the fly and ``compact`` folds the log into the rows (``batch.py``).
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timezone

import msgspec

from ..errors import StoreError
from ..events import Event
from ..profile import Profile
from .base import (COMPACT_CHUNK, REPORT_STATE_META_PREFIX, AppendResult, PersonalData,
                   refuse_reserved_meta, report_state_names, resolve_person)
from .batch import LogRow, materialize, route_batch

__all__ = ["MemoryStore"]

_encode = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(Profile).decode


class MemoryStore:
    """A thread-safe in-memory ``ProfileStore``. ``clock`` stamps events without ``at``."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None, url: str = "memory://") -> None:
        self.url = url
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.RLock()
        self._profiles: dict[str, tuple[bytes, int]] = {}  # key -> (profile, folded_to)
        self._links: dict[str, str] = {}
        self._customer_visitors: dict[str, set[str]] = {}
        #: The routed key of each logged event (its id, and seq in ``_events``, is index + 1);
        #: None once ``forget`` removed it, so ids stay unique and positions stay put.
        self._log: list[str | None] = []
        self._by_key: dict[str, list[LogRow]] = {}  # routed key -> its logged events
        self._compacted_to = 0
        self._orders: set[str] = set()
        self._events: list[tuple[float, int, Event]] = []
        self._meta: dict[str, bytes] = {}
        self._closed = False

    # -- BatchSource (called under the lock) --
    def existing_orders(self, order_ids: set[str]) -> set[str]:
        return order_ids & self._orders

    def links(self, visitor_ids: set[str]) -> dict[str, str]:
        return {v: self._links[v] for v in visitor_ids if v in self._links}

    # -- GroupLog (called under the lock) --
    def linked_visitors(self, customer_ids: set[str]) -> dict[str, set[str]]:
        found = self._customer_visitors
        return {c: set(found[c]) for c in customer_ids if found.get(c)}

    def group_events(self, keys: set[str]) -> list[LogRow]:
        return [row for key in keys for row in self._by_key.get(key, ())]

    def _materialize(self, key: str) -> tuple[Profile, int, bool] | None:
        row = self._profiles.get(key)
        if row is None:
            return materialize(key, None, (), self)
        data, folded_to = row
        logged = self._by_key.get(key, [])
        tail = logged[bisect.bisect_right(logged, folded_to, key=lambda r: r[0]):]
        return materialize(key, (_decode_profile(data), folded_to), tail, self)

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
            found = self._materialize(key)
        return None if found is None else found[0]

    def append(self, events: Sequence[Event]) -> AppendResult:
        with self._lock:
            self._check_open()
            plan = route_batch(events, self, now=self._clock())
            for visitor, customer in plan.links.items():
                previous = self._links.get(visitor)
                if previous is not None:
                    self._customer_visitors[previous].discard(visitor)
                self._customer_visitors.setdefault(customer, set()).add(visitor)
            self._links.update(plan.links)
            self._orders.update(order_id for order_id, _ in plan.orders)
            for event, key, data in plan.logged:
                at = event.at.timestamp()  # type: ignore[union-attr]
                self._log.append(key)
                self._events.append((at, len(self._log), event))
                self._by_key.setdefault(key, []).append((len(self._log), at, data))
            self._events.sort(key=lambda row: row[:2])
            return plan.result

    def compact(self, *, max_events: int = COMPACT_CHUNK, wait: bool = False) -> int | None:
        """One compaction pass over at most ``max_events`` log events (see SQLite's)."""
        with self._lock:
            self._check_open()
            start = self._compacted_to
            chunk = self._log[start:start + max_events]
            groups = {f"c:{self._links[key[2:]]}" if key.startswith("v:") and key[2:] in self._links else key
                      for key in chunk if key is not None}
            for group in sorted(groups):
                found = self._materialize(group)
                if found is None:
                    continue
                profile, folded_to, refolded = found
                self._profiles[group] = (_encode(profile), folded_to)
                if refolded and group.startswith("c:"):
                    for visitor in self._customer_visitors.get(group[2:], ()):
                        self._profiles.pop(f"v:{visitor}", None)
            self._compacted_to = start + len(chunk)
            return len(chunk)

    @contextlib.contextmanager
    def compactor_lock(self, *, wait: bool = True) -> Iterator[bool]:
        """One process: nothing to share the folding with (see SQLite's)."""
        yield True

    def catch_up(self, *, timeout: float = 0.0) -> bool:
        """Compact until the rows hold every event logged before the call (see SQLite's)."""
        with self._lock:
            while self.compact():
                pass
        return True

    def compaction_position(self) -> tuple[int, int]:
        """``(folded, logged)`` log positions (see SQLite's)."""
        with self._lock:
            return self._compacted_to, len(self._log)

    def iter_profiles(self, *, batch_size: int = 1000) -> Iterator[Profile]:
        with self._lock:
            self.catch_up()
            keys = sorted(self._profiles)
        for key in keys:
            with self._lock:
                row = self._profiles.get(key)
            if row is not None:
                yield _decode_profile(row[0])

    def count_profiles(self) -> int:
        with self._lock:
            self.catch_up()
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
        refuse_reserved_meta((name,))
        with self._lock:
            self._meta[name] = bytes(value)

    def meta_names(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(n for n in self._meta if n.startswith(prefix))

    def update_meta(self, values: Mapping[str, bytes], delete: Collection[str] = ()) -> None:
        refuse_reserved_meta([*values, *delete])
        with self._lock:
            for name in delete:
                self._meta.pop(name, None)
            self._meta.update((name, bytes(value)) for name, value in values.items())

    def delete_meta(self, name: str) -> None:
        refuse_reserved_meta((name,))
        with self._lock:
            self._meta.pop(name, None)

    # -- PersonalDataStore --
    def _person(self, customer_id: str | None, visitor_id: str | None) -> tuple[PersonalData, list[int]]:
        """The person's data (copies) and the seqs of their events (lock held)."""
        customer, visitors = resolve_person(
            customer_id, visitor_id, link_of=self._links.get,
            visitors_of=lambda c: [v for v, linked in self._links.items() if linked == c])
        data = PersonalData(customer_id=customer, visitor_ids=visitors)
        keys = data.keys
        # Rows with their tails folded; a linked visitor's events are its customer's profile.
        found = {k: self._materialize(k) for k in sorted(keys) if not (k.startswith("v:") and k[2:] in self._links)}
        data.profiles = [result[0] for result in found.values() if result is not None]
        data.links = {v: self._links[v] for v in visitors if v in self._links}
        rows = [(seq, event) for _, seq, event in self._events if self._log[seq - 1] in keys]
        data.events = [msgspec.msgpack.decode(_encode(e), type=type(e)) for _, e in rows]
        return data, [seq for seq, _ in rows]

    def export(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        with self._lock:
            self._check_open()
            data = self._person(customer_id, visitor_id)[0]
            data.report_states = self._report_states()
            return data

    def _report_states(self) -> list[str]:
        return report_state_names(self._meta)

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        with self._lock:
            self._check_open()
            data, seqs = self._person(customer_id, visitor_id)
            for key in data.keys:
                self._profiles.pop(key, None)
                self._by_key.pop(key, None)
            for visitor, customer in data.links.items():
                del self._links[visitor]
                self._customer_visitors[customer].discard(visitor)
            gone = set(seqs)
            self._events = [row for row in self._events if row[1] not in gone]
            for seq in gone:
                self._log[seq - 1] = None
            data.report_states = self._report_states()
            for name in [n for n in self._meta if n.startswith(REPORT_STATE_META_PREFIX)]:  # parts too
                del self._meta[name]
            return data

    def close(self) -> None:
        self._closed = True
