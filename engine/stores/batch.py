"""One algorithm for ``append``, shared by every store: route, dedupe, fold in event time.

A store opens its transaction, hands ``fold_batch`` a ``BatchSource`` that answers bulk
questions (which order ids exist, which visitors are linked, the stored profiles of some
keys) and writes back the ``BatchPlan`` it returns. Keeping the logic here means the
SQLite, memory and Redis stores cannot drift apart.

Routing: an event with a ``customer_id`` goes to ``c:<customer_id>``; one with only a
``visitor_id`` goes to the linked customer if the visitor was identified, else to
``v:<visitor_id>``. ``identify`` links the visitor to the customer and deletes the ``v:``
profile: the visitor's events join the customer's *key group* (``c:X`` and every ``v:Y``
linked to ``X``; an unlinked visitor's group is its ``v:Y`` alone).

The rule: a profile is every event of its key group folded in ``event_order`` (time, then a
tie-break on the event itself), so arrival order and batching cannot change it. A batch's
events are folded in that order onto the stored profile when they are all newer than the
newest event folded into it (``newest_at``); when one is not (a late page view), or an
``identify`` joins a visitor to the group, the group is refolded from the log, which is
complete (nothing prunes it; bulk import appends too). Ties with ``newest_at`` refold as
well: the stored row does not keep the tie-break of its newest event.

A source that cannot read the log by key group (``RefoldSource``; the Redis store's log is
not indexed by key) keeps the earlier behaviour: events folded onto the stored profile in
event-time order, a joined visitor's profile merged with ``merge_profiles``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from ..events import Event, Identify, Order, stamp_events
from ..folding import EVENT_RANK, fold, merge_profiles
from ..profile import Profile
from .base import AppendResult

__all__ = ["BatchSource", "RefoldSource", "BatchPlan", "fold_batch"]

_encode = msgspec.msgpack.Encoder().encode
_decode_event = msgspec.msgpack.Decoder(Event).decode
#: A batch's events as sortable rows: (at, type rank, msgpack bytes, event); sorted by the
#: first three (``event_order``), which also gives the bytes the store logs.
_Row = tuple[float, int, bytes, Event]


def _order(row: _Row) -> tuple[float, int, bytes]:
    return row[0], row[1], row[2]


class BatchSource(Protocol):
    def existing_orders(self, order_ids: set[str]) -> set[str]: ...
    def links(self, visitor_ids: set[str]) -> dict[str, str]: ...
    def load_many(self, keys: set[str]) -> dict[str, Profile]: ...


@runtime_checkable
class RefoldSource(BatchSource, Protocol):
    """A source that can also read the log by key group, so profiles can be refolded."""

    def load_rows(self, keys: set[str]) -> dict[str, tuple[Profile, float | None]]:
        """The stored profiles of ``keys`` with their ``newest_at`` (None: not known, refold)."""

    def linked_visitors(self, customer_ids: set[str]) -> dict[str, set[str]]:
        """The visitors linked to each of ``customer_ids`` (those with any)."""

    def group_events(self, keys: set[str]) -> Iterable[tuple[float, bytes]]:
        """``(at, msgpack data)`` of every logged event whose routed key is in ``keys``."""


@dataclass(slots=True)
class BatchPlan:
    """What to write: profiles to upsert (with the time of the newest event folded into
    each), keys to delete, new links, new order ids and the logged events as
    ``(event, key, msgpack data)``; ``result`` is what ``append`` returns."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    newest: dict[str, float] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    orders: list[tuple[str, float]] = field(default_factory=list)
    logged: list[tuple[Event, str, bytes]] = field(default_factory=list)
    result: AppendResult = field(default_factory=AppendResult)


def _rows_in_time(events: list[Event], now: datetime | None) -> list[_Row]:
    """The events as rows in time order, arrival order within one time: the order they are
    routed and logged in (so the log keeps it); each group's rows are then put in
    ``event_order`` to be folded."""
    stamp_events(events, now)
    rows = [(e.at.timestamp(), EVENT_RANK[type(e).__struct_config__.tag], _encode(e), e)  # type: ignore[union-attr]
            for e in events]
    rows.sort(key=_time)
    return rows


def _time(row: _Row) -> float:
    return row[0]


def fold_batch(
    events: Iterable[Event], source: BatchSource, *, now: datetime | None = None
) -> BatchPlan:
    rows = _rows_in_time(list(events), now)
    plan = BatchPlan()
    result = plan.result
    # One pass for the bulk questions: which orders, which visitors.
    order_ids: set[str] = set()
    visitor_ids: set[str] = set()  # routed by visitor id, or an identify to link
    for row in rows:
        e = row[3]
        if isinstance(e, Order):
            order_ids.add(e.order_id)
        if e.visitor_id and (not e.customer_id or isinstance(e, Identify)):
            visitor_ids.add(e.visitor_id)
    existing = source.existing_orders(order_ids) if order_ids else set()
    links = source.links(visitor_ids) if visitor_ids else {}

    by_key: dict[str, list[_Row]] = {}
    for row in rows:
        e = row[3]
        if isinstance(e, Order):
            if e.order_id in existing:
                result.duplicates += 1
                continue
            existing.add(e.order_id)
            plan.orders.append((e.order_id, row[0]))
        if e.customer_id:
            key = f"c:{e.customer_id}"
        elif e.visitor_id in links:
            key = f"c:{links[e.visitor_id]}"  # type: ignore[index]
        else:
            key = f"v:{e.visitor_id}"
        if isinstance(e, Identify) and links.get(e.visitor_id) != e.customer_id:  # type: ignore[arg-type]
            links[e.visitor_id] = plan.links[e.visitor_id] = e.customer_id  # type: ignore[index]
        by_key.setdefault(key, []).append(row)
        plan.logged.append((e, key, row[2]))
        result.stored += 1

    # Each touched key's rows go to its group; a newly linked visitor's group is its customer's.
    groups: dict[str, list[_Row]] = {}
    joined: dict[str, set[str]] = {}  # group key -> visitors linked to it by this batch
    for visitor, customer in plan.links.items():
        joined.setdefault(f"c:{customer}", set()).add(visitor)
        plan.deleted.add(f"v:{visitor}")
    for key, key_rows in by_key.items():
        group = f"c:{links[key[2:]]}" if key.startswith("v:") and key[2:] in links else key
        groups.setdefault(group, []).extend(key_rows)
    for group_rows in groups.values():
        group_rows.sort(key=_order)
    result.changed_keys.update(groups, plan.deleted)

    if isinstance(source, RefoldSource):
        _fold_groups(groups, joined, source, plan)
    else:
        _fold_onto_stored(groups, joined, source, plan)
    result.profiles = plan.profiles
    return plan


def _fold_groups(groups: dict[str, list[_Row]], joined: dict[str, set[str]],
                 source: RefoldSource, plan: BatchPlan) -> None:
    """The rule: fold onto the stored row when every new event is newer than it, else
    refold the group from the log plus the batch."""
    stored = source.load_rows(set(groups))
    refold: list[str] = []
    for group, rows in groups.items():
        row = stored.get(group)
        if group in joined or (row is not None and (row[1] is None or rows[0][0] <= row[1])):
            refold.append(group)
            continue
        profile = row[0] if row is not None else Profile(key=group)
        for new in rows:
            fold(profile, new[3])
        plan.profiles[group] = profile
        plan.newest[group] = rows[-1][0]
    if not refold:
        return
    customers = {group[2:] for group in refold if group.startswith("c:")}
    members = source.linked_visitors(customers) if customers else {}
    for group in refold:
        keys = {group}
        if group.startswith("c:"):
            keys.update(f"v:{v}" for v in members.get(group[2:], ()))
            keys.update(f"v:{v}" for v in joined.get(group, ()))
        logged = [(at, EVENT_RANK[type(e).__struct_config__.tag], data, e)
                  for at, data in source.group_events(keys) for e in (_decode_event(data),)]
        rows = sorted(logged + groups[group], key=_order)
        profile = Profile(key=group)
        for row in rows:
            fold(profile, row[3])
        plan.profiles[group] = profile
        plan.newest[group] = rows[-1][0]


def _fold_onto_stored(groups: dict[str, list[_Row]], joined: dict[str, set[str]],
                      source: BatchSource, plan: BatchPlan) -> None:
    """Without the log by key: fold onto the stored profile, merge joined visitors' profiles."""
    wanted = set(groups) | {f"v:{v}" for visitors in joined.values() for v in visitors}
    profiles = source.load_many(wanted)
    for group, rows in groups.items():
        profile = profiles.get(group) or Profile(key=group)
        for visitor in sorted(joined.get(group, ())):
            absorbed = profiles.get(f"v:{visitor}")
            if absorbed is not None:
                merge_profiles(profile, absorbed)
        for row in rows:
            fold(profile, row[3])
        plan.profiles[group] = profile
        plan.newest[group] = rows[-1][0]
