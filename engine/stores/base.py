"""The ``ProfileStore`` protocol every store implements, and ``AppendResult``.

A store keeps profiles (by key ``c:<customer_id>`` / ``v:<visitor_id>``), the visitor ->
customer links made by ``identify``, the ids of stored orders (to drop retried duplicates),
an append-only event log and a few named meta blobs (RFM thresholds, ...).
``append`` is atomic per batch: the events are logged and folded, or nothing is.

Optional: ``ReportStateStore`` (the built-in stores have it): ``event_fingerprint(until)``
returns a value that changes whenever an event with ``at < until`` is logged or removed, and
``meta_names``/``delete_meta`` list and delete meta blobs. Campaign reports use it to keep
their saved state (``analytics/checkpoint.py``: valid while the fingerprint holds, saved in
parts of which only the changed ones are rewritten); a store without it gets reports that
always read the whole event log.

Optional: ``PersonalDataStore`` (``export`` / ``forget`` one person, for privacy requests;
the built-in stores have it). A person is a key group: a customer's ``c:`` profile, every
visitor linked to the customer (their ``v:`` keys, whose events logged before the identify
belong to the person too) and those links; an unlinked visitor is its ``v:`` key alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ..errors import StoreError
from ..events import Event
from ..profile import Profile

__all__ = ["ProfileStore", "CompactingStore", "AppendResult", "RESERVED_META", "COMPACT_CHUNK", "UnsyncedAppendStore", "redacted_url", "PersonalDataStore",
           "refuse_reserved_meta",
           "PersonalData", "REPORT_STATE_META_PREFIX", "resolve_person", "personal_data_store",
           "ReportStateStore", "report_state_names", "InvalidatingStore", "BulkWritingStore"]

def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: how a store URL appears in ``store.url``,
    errors, logs and ``/health``.

    >>> redacted_url("redis://:s3cret@cache:6379/0")
    'redis://:***@cache:6379/0'
    """
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


#: Meta names the stores use themselves; ``set_meta`` refuses them.
RESERVED_META = frozenset({"schema_version", "compacted_to", "erasures"})


def refuse_reserved_meta(names: Iterable[str]) -> None:
    """Raise ``ValueError`` when a caller would write one of the store's own meta entries."""
    for name in names:
        if name in RESERVED_META:
            raise ValueError(f"meta name {name!r} is reserved")


#: Log events one compaction pass folds at most: a larger pass writes a busy profile once
#: for more of its events (fewer row writes per event); the SQLite store holds no lock
#: while it folds, so appends do not wait for a pass however large.
COMPACT_CHUNK = 10_000
#: Meta blobs named so hold the saved report state (``analytics/checkpoint.py``), which has
#: per-person entries (people seen within the window, visitor -> customer links) inside totals
#: that cannot be split by person: ``forget`` drops these blobs whole, and the next report
#: reads the whole log once (it would anyway: removing logged events changes the fingerprint).
#: A state is one blob named ``<prefix><id>`` and its parts, ``<prefix><id>/<digest>``.
REPORT_STATE_META_PREFIX = "report-checkpoint:"


def report_state_names(names: Iterable[str]) -> list[str]:
    """The saved report states among meta ``names`` (their parts left out), sorted."""
    return sorted(n for n in names if n.startswith(REPORT_STATE_META_PREFIX) and "/" not in n)


@dataclass(slots=True)
class AppendResult:
    """What one ``append`` did.

    ``stored`` events were logged; ``duplicates`` orders were dropped because their
    ``order_id`` was already stored; ``changed_keys`` are the profile keys whose profile
    changed (a joined visitor's ``v:`` key included), for cache invalidation; ``events`` the
    stored events by the profile key they fold into, each list in event-time order, so a
    cache can fold them into a cached profile instead of reloading it.
    """

    stored: int = 0
    duplicates: int = 0
    changed_keys: set[str] = field(default_factory=set)
    events: dict[str, list[Event]] = field(default_factory=dict)


@runtime_checkable
class ProfileStore(Protocol):
    url: str

    def load(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        """The profile of a customer (wins) or visitor (following identify links), or None."""

    def append(self, events: Sequence[Event]) -> AppendResult:
        """Log and fold a batch atomically, in event-time order; duplicate orders are dropped."""

    def iter_profiles(self, *, batch_size: int = 1000) -> Iterator[Profile]:
        """Every profile, read in batches of ``batch_size`` (constant memory)."""

    def count_profiles(self) -> int: ...

    def iter_events(
        self, *, since: datetime | float | None = None, types: Collection[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Event]:
        """Logged events with ``at >= since`` of the given types, oldest first, in batches."""

    def get_meta(self, name: str) -> bytes | None: ...

    def set_meta(self, name: str, value: bytes) -> None: ...

    def close(self) -> None: ...


class PersonalData(msgspec.Struct, kw_only=True):
    """Everything a store holds about one person (``PersonalDataStore.export``), or what
    ``forget`` removed.

    ``customer_id`` is None for an unlinked visitor; ``visitor_ids`` the visitors of the
    person; ``links`` visitor id -> customer id; ``events`` the logged events of the
    person's keys, oldest first; ``report_states`` the meta names of the saved report states
    (``REPORT_STATE_META_PREFIX``): from ``export`` every one there is (each may hold the
    person: ``privacy.export_person`` looks inside), from ``forget`` every one dropped.

    Order ids stay in the store's order table after ``forget``: without the events they name
    nobody, and a resent order is still dropped as a duplicate instead of bringing the
    person back.
    """

    customer_id: str | None = None
    visitor_ids: list[str] = []
    profiles: list[Profile] = []
    links: dict[str, str] = {}
    events: list[Event] = []
    report_states: list[str] = []

    @property
    def keys(self) -> set[str]:
        """The person's profile keys (``c:`` and ``v:``), for cache invalidation."""
        keys = {f"v:{v}" for v in self.visitor_ids}
        if self.customer_id is not None:
            keys.add(f"c:{self.customer_id}")
        return keys

    def counts(self) -> dict[str, object]:
        """Who, and how much of each kind was found (what the endpoint and CLI answer)."""
        return {"customer_id": self.customer_id, "visitor_ids": self.visitor_ids,
                "profiles": len(self.profiles), "links": len(self.links), "events": len(self.events),
                "report_states": len(self.report_states)}


def resolve_person(
    customer_id: str | None, visitor_id: str | None, *,
    link_of: Callable[[str], str | None], visitors_of: Callable[[str], Iterable[str]],
) -> tuple[str | None, list[str]]:
    """``(customer id or None, visitor ids)`` of the person one id names.

    A visitor linked to a customer names that customer's whole person: the visitor's events
    were folded into the customer's profile and cannot be taken out of it alone.
    ``link_of(visitor)`` is the visitor's customer; ``visitors_of(customer)`` its visitors.
    """
    if bool(customer_id) == bool(visitor_id):
        raise ValueError("give exactly one of customer_id and visitor_id")
    if visitor_id:
        customer_id = link_of(visitor_id)
        if customer_id is None:
            return None, [visitor_id]
    return customer_id, sorted(visitors_of(customer_id))  # type: ignore[arg-type]


@runtime_checkable
class PersonalDataStore(Protocol):
    """A store that can export and erase one person (privacy requests)."""

    def export(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        """Everything stored about the person one id names (see ``resolve_person``)."""

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        """Delete the person's profiles, links and logged events and every saved report state
        (``REPORT_STATE_META_PREFIX``) atomically; return what was deleted. Shared stores tell
        the other servers' caches to drop the person's keys."""


def personal_data_store(store: ProfileStore) -> PersonalDataStore:
    """``store`` as a ``PersonalDataStore``, or a ``StoreError`` saying it cannot erase or export."""
    if not isinstance(store, PersonalDataStore):
        raise StoreError("this store cannot export or erase one person (it has no export/forget)",
                         store=getattr(store, "url", None))
    return store
@runtime_checkable
class ReportStateStore(Protocol):
    """A store that keeps campaign reports' saved state (``analytics/checkpoint.py``)."""

    def event_fingerprint(self, until: float) -> Sequence[float]:
        """A value that changes whenever an event with ``at < until`` is logged or removed,
        and never when a later one is."""

    def meta_names(self, prefix: str) -> list[str]:
        """The meta names that start with ``prefix``, sorted."""

    def delete_meta(self, name: str) -> None:
        """Delete a meta blob (nothing when there is none; reserved names are refused)."""

    def update_meta(self, values: Mapping[str, bytes], delete: Collection[str] = ()) -> None:
        """Delete the blobs named in ``delete``, then set ``values``, all at once: one
        transaction, one sync (a saved report state is a few hundred blobs; a sync each took
        seconds). Reserved names are refused before anything is written."""


@runtime_checkable
class InvalidatingStore(Protocol):
    """A store shared by several servers that tells each of them what the others changed
    (Redis: a pub/sub channel), so their profile caches drop it (``cache_invalidation.py``)."""

    def on_invalidate(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Call ``callback(keys)`` when another server changed these profile keys;
        ``callback(None)``: messages may have been missed, drop everything."""


@runtime_checkable
class BulkWritingStore(Protocol):
    """A store that can relax durability for a bulk load (``segmint import``: idempotent, so a
    crash midway is repaired by running it again)."""

    def bulk_writes(self) -> AbstractContextManager[None]:
        """Within this block, commits need not be synced one by one; all are at its end."""


@runtime_checkable
class UnsyncedAppendStore(Protocol):
    """A store that can log a batch without waiting for the disk (SQLite): it survives the
    process dying, not the machine losing power. The event writer uses it for the events
    nobody waits for; acknowledged events (the intake, orders) always use ``append``."""

    def append_unsynced(self, events: Sequence[Event]) -> AppendResult: ...


@runtime_checkable
class CompactingStore(Protocol):
    """A store whose ``append`` only logs and whose rows a compactor folds (every built-in store)."""

    def compact(self, *, max_events: int = COMPACT_CHUNK, wait: bool = False) -> int | None:
        """One pass: fold up to ``max_events`` logged events into the rows, each touched row
        written once; the number folded (0: caught up), or None when another compactor holds
        the lock (``wait``: wait for it instead)."""

    def compactor_lock(self, *, wait: bool = True) -> AbstractContextManager[bool]:
        """Hold the compactor lock across passes (True), or False when another holds it."""

    def catch_up(self, *, timeout: float = ...) -> bool:
        """Compact until the rows hold every event logged before the call, or wait for the
        compactor holding the lock to get there; False when ``timeout`` ran out first."""

    def compaction_position(self) -> tuple[int, int]:
        """``(folded, logged)``: the log position the rows hold every event up to, and the
        log's last position; ``logged - folded`` events wait to be folded."""
