"""One algorithm for ``append``, shared by every store: route, dedupe, merge, fold.

A store opens its transaction, hands ``fold_batch`` a ``BatchSource`` that answers three
bulk questions (which order ids exist, which visitors are linked, the stored profiles of
some keys) and writes back the ``BatchPlan`` it returns. Keeping the logic here means the
SQLite, memory and (later) Redis stores cannot drift apart.

Routing: an event with a ``customer_id`` goes to ``c:<customer_id>``; one with only a
``visitor_id`` goes to the linked customer if the visitor was identified, else to
``v:<visitor_id>``. ``identify`` merges the visitor's profile into the customer's, links the
visitor and deletes the ``v:`` profile. Events are folded sorted by ``at`` (stable).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..events import Event, Identify, Order, stamp_events
from ..folding import fold, merge_profiles
from ..profile import Profile
from .base import AppendResult

__all__ = ["BatchSource", "BatchPlan", "fold_batch"]


class BatchSource(Protocol):
    def existing_orders(self, order_ids: set[str]) -> set[str]: ...
    def links(self, visitor_ids: set[str]) -> dict[str, str]: ...
    def load_many(self, keys: set[str]) -> dict[str, Profile]: ...


@dataclass(slots=True)
class BatchPlan:
    """What to write: profiles to upsert, keys to delete, new links, new order ids and the
    logged events as ``(event, key)``; ``result`` is what ``append`` returns."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    orders: list[tuple[str, float]] = field(default_factory=list)
    logged: list[tuple[Event, str]] = field(default_factory=list)
    result: AppendResult = field(default_factory=AppendResult)


def _order_by_time(events: Sequence[Event], now: datetime | None) -> list[Event]:
    stamp_events(events, now)
    return sorted(events, key=lambda e: e.at)  # type: ignore[arg-type, return-value]


def fold_batch(
    events: Iterable[Event], source: BatchSource, *, now: datetime | None = None
) -> BatchPlan:
    events = _order_by_time(list(events), now)
    plan = BatchPlan()
    result = plan.result
    # One pass for the three bulk questions: which orders, which visitors, which customers.
    order_ids: set[str] = set()
    visitor_ids: set[str] = set()  # routed by visitor id, or an identify to merge
    customer_ids: set[str] = set()
    for e in events:
        if isinstance(e, Order):
            order_ids.add(e.order_id)
        customer = e.customer_id
        if customer:
            customer_ids.add(customer)
            if e.visitor_id and isinstance(e, Identify):
                visitor_ids.add(e.visitor_id)
        elif e.visitor_id:
            visitor_ids.add(e.visitor_id)
    existing = source.existing_orders(order_ids) if order_ids else set()
    links = source.links(visitor_ids) if visitor_ids else {}

    wanted = {f"c:{c}" for c in customer_ids}
    for visitor in visitor_ids:
        wanted.add(f"v:{visitor}")
        if visitor in links:
            wanted.add(f"c:{links[visitor]}")
    profiles = source.load_many(wanted) if wanted else {}
    deleted = plan.deleted

    def profile_for(key: str) -> Profile:
        profile = profiles.get(key)
        if profile is None:
            profile = profiles[key] = Profile(key=key)
        deleted.discard(key)
        return profile

    for e in events:
        if isinstance(e, Order):
            if e.order_id in existing:
                result.duplicates += 1
                continue
            existing.add(e.order_id)
            plan.orders.append((e.order_id, e.at.timestamp()))  # type: ignore[union-attr]
        if e.customer_id:
            key = f"c:{e.customer_id}"
        elif e.visitor_id in links:
            key = f"c:{links[e.visitor_id]}"  # type: ignore[index]
        else:
            key = f"v:{e.visitor_id}"
        profile = profile_for(key)
        if isinstance(e, Identify):
            visitor_key = f"v:{e.visitor_id}"
            visitor = profiles.pop(visitor_key, None)
            if visitor is not None:
                merge_profiles(profile, visitor)
            deleted.add(visitor_key)
            result.changed_keys.add(visitor_key)
            links[e.visitor_id] = e.customer_id  # type: ignore[index]
            plan.links[e.visitor_id] = e.customer_id  # type: ignore[index]
        fold(profile, e)
        result.changed_keys.add(key)
        plan.logged.append((e, key))
        result.stored += 1

    plan.profiles = {k: p for k, p in profiles.items() if k in result.changed_keys and k not in deleted}
    result.profiles = plan.profiles
    return plan
