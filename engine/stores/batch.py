"""The rules every store shares: route and dedupe a batch, and fold a key group in event time.

Routing (``route_batch``): an event with a ``customer_id`` goes to ``c:<customer_id>``; one
with only a ``visitor_id`` goes to the linked customer if the visitor was identified, else
to ``v:<visitor_id>``. ``identify`` links the visitor to the customer: the visitor's events
join the customer's *key group* (``c:X`` and every ``v:Y`` linked to ``X``; an unlinked
visitor's group is its ``v:Y`` alone). A resent ``order_id`` is dropped. The store logs the
routed events (time order, arrival order within one time) and stores the new links and
order ids: that is all an append does (every built-in store).

Folding (``materialize``): a profile is every event of its key group folded in
``event_order`` (time, then a tie-break on the event itself), so arrival order and batching
cannot change it. A stored row is the profile up to ``folded_to`` (a log position); the
events of its key after that (the *tail*) are folded onto it when they are all newer than
its ``newest_at`` and none is an ``identify``; otherwise (a late page view, a visitor
joining) the group is refolded from the log, which is complete (nothing prunes it; bulk
import appends too). Ties with ``newest_at`` refold as well: the row does not keep the
tie-break of its newest event. ``load`` materializes on the fly; ``compact`` writes the result.

After a link, every later event of the visitor is routed to ``c:X``, so a customer's tail is
its own key's events: a visitor's events logged before the link are reached by the refold
that the ``identify`` (in the customer's tail) triggers.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, get_args

import msgspec

from ..events import Event, stamp_events
from ..folding import EVENT_RANK, fold, fold_page_view
from ..profile import Profile
from .base import AppendResult

__all__ = ["BatchSource", "GroupLog", "BatchPlan", "route_batch", "materialize"]

_encode = msgspec.msgpack.Encoder().encode
_decode_event = msgspec.msgpack.Decoder(Event).decode
#: An event as a sortable row: (at, type rank, msgpack bytes, event); the first three are
#: ``event_order``, and the bytes are what the store logs.
_Row = tuple[float, int, bytes, Event]
#: A logged event as the stores read it back: (log position, at, msgpack bytes).
LogRow = tuple[int, float, bytes]


_order = operator.itemgetter(0, 1, 2)  # a row's ``event_order``
_time = operator.itemgetter(0)
_PAGE_VIEW, _IDENTIFY = EVENT_RANK["page_view"], EVENT_RANK["identify"]
#: Each event class's tag and ``EVENT_RANK``.
_TYPES: dict[type, tuple[str, int]] = {
    cls: (cls.__struct_config__.tag, EVENT_RANK[cls.__struct_config__.tag]) for cls in get_args(Event)}


class BatchSource(Protocol):
    def existing_orders(self, order_ids: set[str]) -> set[str]: ...
    def links(self, visitor_ids: set[str]) -> dict[str, str]: ...


class GroupLog(Protocol):
    """What a refold reads: a customer's linked visitors and the logged events of some keys."""

    def linked_visitors(self, customer_ids: set[str]) -> dict[str, set[str]]:
        """The visitors linked to each of ``customer_ids`` (those with any)."""

    def group_events(self, keys: set[str]) -> Iterable[LogRow]:
        """Every logged event whose routed key is in ``keys``."""


@dataclass(slots=True)
class BatchPlan:
    """What to write: new links, new order ids and the logged events as
    ``(event, key, msgpack data)``. ``result`` is what ``append`` returns."""

    links: dict[str, str] = field(default_factory=dict)
    orders: list[tuple[str, float]] = field(default_factory=list)
    logged: list[tuple[Event, str, bytes]] = field(default_factory=list)
    #: ``logged`` as event-table rows ``(at, type, key, data)`` (see ``rows``).
    log_rows: list[tuple[float, str, str, bytes]] = field(default_factory=list)
    result: AppendResult = field(default_factory=AppendResult)

    def rows(self) -> list[tuple[float, str, str, bytes]]:
        """The logged events as ``(at, type, key, data)`` rows for an event table."""
        return self.log_rows


def route_batch(events: Iterable[Event], source: BatchSource, *, now: datetime | None = None) -> BatchPlan:
    """Stamp, dedupe and route a batch; ``result.events`` holds each group's events in
    event-time order, ``result.changed_keys`` the groups and the keys they absorbed.

    It runs once per appended event on the event writer's thread, so the loops below look
    each event's type up once (``_TYPES``) and compare tags instead of calling
    ``isinstance`` per rule."""
    batch = list(events)
    stamp_events(batch, now)
    rows: list[_Row] = []
    order_ids: set[str] = set()
    visitor_ids: set[str] = set()  # routed by visitor id, or an identify to link
    for e in batch:
        tag, rank = _TYPES[type(e)]
        rows.append((e.at.timestamp(), rank, _encode(e), e))  # type: ignore[union-attr]
        if tag == "order":
            order_ids.add(e.order_id)  # type: ignore[union-attr]
        if e.visitor_id and (not e.customer_id or tag == "identify"):
            visitor_ids.add(e.visitor_id)
    rows.sort(key=_time)  # logged in time order, arrival order within one time
    existing = source.existing_orders(order_ids) if order_ids else set()
    links = source.links(visitor_ids) if visitor_ids else {}

    plan = BatchPlan()
    result = plan.result
    logged, log_rows, new_links = plan.logged, plan.log_rows, plan.links
    groups: dict[str, list[_Row]] = {}
    tied: set[str] = set()
    for row in rows:
        e = row[3]
        tag = _TYPES[type(e)][0]
        if tag == "order":
            if e.order_id in existing:  # type: ignore[union-attr]
                result.duplicates += 1
                continue
            existing.add(e.order_id)  # type: ignore[union-attr]
            plan.orders.append((e.order_id, row[0]))  # type: ignore[union-attr]
        customer = e.customer_id
        if customer:
            key = f"c:{customer}"
        else:
            linked = links.get(e.visitor_id)  # type: ignore[arg-type]
            key = f"v:{e.visitor_id}" if linked is None else f"c:{linked}"
        if tag == "identify" and links.get(e.visitor_id) != customer:  # type: ignore[arg-type]
            links[e.visitor_id] = new_links[e.visitor_id] = customer  # type: ignore[index]
        group_rows = groups.get(key)
        if group_rows is None:
            groups[key] = [row]
        else:
            if group_rows[-1][0] == row[0]:
                tied.add(key)  # folded in event order: the tie-break decides, not arrival
            group_rows.append(row)
        logged.append((e, key, row[2]))
        log_rows.append((row[0], tag, key, row[2]))
    result.stored = len(logged)
    for key in tied:
        groups[key].sort(key=_order)

    result.changed_keys.update(groups)
    if plan.links:  # a joined visitor's rows go to its customer's group
        result.changed_keys.update(f"v:{visitor}" for visitor in plan.links)
        by_group: dict[str, list[_Row]] = {}
        for key, key_rows in groups.items():
            visitor = key[2:] if key.startswith("v:") else None
            group = f"c:{plan.links[visitor]}" if visitor in plan.links else key
            joined = by_group.get(group)
            if joined is None:
                by_group[group] = key_rows
            else:  # several keys' rows: back in event-time order
                joined.extend(key_rows)
                joined.sort(key=_order)
        groups = by_group
        result.changed_keys.update(groups)
    for group, group_rows in groups.items():
        result.events[group] = [row[3] for row in group_rows]
    return plan


class _Head(msgspec.Struct):
    """The fields of a logged event that decide how a tail folds (unknown fields skipped)."""

    type: str
    visitor_id: str | None = None
    customer_id: str | None = None


_decode_head = msgspec.msgpack.Decoder(_Head).decode


def materialize(key: str, row: tuple[Profile, int] | None, tail: Iterable[LogRow],
                log: GroupLog) -> tuple[Profile, int, bool] | None:
    """The profile of ``key`` from its stored ``(profile, folded_to)`` and its ``tail`` (the
    key's logged events after ``folded_to``): ``(profile, new folded_to, refolded)``, or
    None when there is nothing. ``row``'s profile is folded in place (pass a fresh copy).

    A tail onto a row is what a cold ``load`` folds, mostly page views: its events are
    decoded to their type and ids first (``_Head``), page views are folded from those and
    the log's time (``fold_page_view``, the code ``fold`` runs for them), and only other
    events are decoded whole."""
    if row is not None:
        profile, folded_to = row
        newest = profile.newest_at
        if newest is not None:  # fold the tail onto the row when it is all newer, no identify
            new = []
            last = folded_to
            for position, at, data in tail:
                head = _decode_head(data)
                rank = EVENT_RANK[head.type]
                if at <= newest or rank == _IDENTIFY:
                    break
                new.append((at, rank, data, head))
                if position > last:
                    last = position
            else:
                new.sort(key=_order)
                for at, rank, data, head in new:
                    if rank == _PAGE_VIEW:
                        fold_page_view(profile, at, head.visitor_id, head.customer_id)
                    else:
                        fold(profile, _decode_event(data))
                return profile, last, False
        elif not tail:
            return profile, folded_to, False
    keys = {key}
    if key.startswith("c:"):
        keys.update(f"v:{v}" for v in log.linked_visitors({key[2:]}).get(key[2:], ()))
    everything = [(at, EVENT_RANK[type(e).__struct_config__.tag], data, e, position)
                  for position, at, data in log.group_events(keys) for e in (_decode_event(data),)]
    if not everything:
        return None
    everything.sort(key=_order)  # type: ignore[arg-type]
    profile = Profile(key=key)
    for r in everything:
        fold(profile, r[3])
    return profile, max(r[4] for r in everything), True
