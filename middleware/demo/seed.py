"""Seed the demo database: hundreds of synthetic customers, the personas, RFM thresholds.

The history is deterministic for a given ``seed``, catalog and ``now`` (every timestamp is
``now`` minus a drawn offset), so tests pin ``now`` and get the same shop every time, and the
demo re-seeded today looks like the one seeded last week. Events go through the store's
normal ``append`` (the same folding a live shop's events get), in time order.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from segmint.engine.catalog import Catalog
from segmint.engine.errors import StoreError
from segmint.engine.events import Event, Order
from segmint.engine.rfm import compute_rfm_thresholds
from segmint.engine.stores import open_store

from .history import Pools, Shopper
from .personas import PERSONAS
from .population import ARCHETYPES

__all__ = ["SeedReport", "generate_history", "write_history", "SEED_META", "read_seed_meta"]

#: Meta entry marking a database as a seeded demo database (and when it was seeded).
SEED_META = "demo_seed"
_BATCH = 2000


@dataclass(frozen=True)
class SeedReport:
    """What ``seed_demo_database`` wrote."""

    db_path: str
    now: datetime
    seed: int
    customers: int
    visitors: int
    orders: int
    events: int
    #: Customers per archetype (``lapsed_vip``: 24, ...), personas not included.
    archetypes: dict[str, int] = field(default_factory=dict)
    #: Members per segment of the config, evaluated at ``now`` (personas included).
    segment_sizes: dict[str, int] = field(default_factory=dict)


def generate_history(catalog: Catalog, now: datetime, seed: int = 42) -> tuple[list[Event], Counter[str]]:
    """Every event of the synthetic shop, oldest first, and the number of shoppers per archetype.

    Personas get their own random streams (seeded by ``seed`` and their key) so that their
    histories do not change when the population around them does.
    """
    pools = Pools(catalog)
    events: list[Event] = []
    counts: Counter[str] = Counter()
    rng = random.Random(seed)
    for name, archetype, how_many in ARCHETYPES:
        for i in range(how_many):
            ident = f"{name.replace('_', '-')}-{i + 1:03d}"
            shopper = (Shopper(now, rng, visitor_id=f"anon-{ident}") if name == "browser"
                       else Shopper(now, rng, customer_id=f"c-{ident}"))
            archetype(shopper, pools)
            events.extend(shopper.events)
            counts[name] += 1
    for persona in PERSONAS:
        if persona.history is None:
            continue
        shopper = Shopper(now, random.Random(f"{seed}:{persona.key}"),
                          customer_id=persona.customer_id, visitor_id=persona.visitor_id)
        persona.history(shopper, pools)
        events.extend(shopper.events)
    # Nothing happens after "now"; returns drawn close to it are clamped.
    for event in events:
        if event.at is not None and event.at > now:
            event.at = now
    events.sort(key=lambda e: e.at or now)
    return events, counts


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            candidate.unlink()


def read_seed_meta(db_path: str | os.PathLike[str]) -> dict | None:
    """The seed stamp of a demo database, or None when the file is missing or not a demo DB."""
    path = Path(db_path)
    if not path.exists():
        return None
    store = open_store(str(path))
    try:
        raw = store.get_meta(SEED_META)
    finally:
        store.close()
    return json.loads(raw) if raw else None


def _holds_data(path: Path) -> bool:
    store = open_store(str(path))
    try:
        return store.count_profiles() > 0 or next(iter(store.iter_events(batch_size=1)), None) is not None
    finally:
        store.close()


def write_history(db_path: str | os.PathLike[str], events: Iterable[Event], now: datetime, *,
                  seed: int) -> int:
    """Replace the demo database at ``db_path`` with ``events``; returns how many were stored.

    Refuses to overwrite a database that is not a seeded demo database: ``--db`` pointing at
    a real store must not wipe it. An empty store is no loss (``segmint explain`` run before
    the first ``segmint demo`` creates the config's store empty).
    """
    path = Path(db_path)
    if path.exists() and read_seed_meta(path) is None and _holds_data(path):
        raise StoreError("exists and is not a segmint demo database; refusing to overwrite it "
                         "(choose another demo database path)", store=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_database(path)
    store = open_store(str(path))
    stored = 0
    try:
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) >= _BATCH:
                stored += store.append(batch).stored
                batch = []
        if batch:
            stored += store.append(batch).stored
        compute_rfm_thresholds(store, now)
        stamp = {"seed": seed, "now": now.astimezone(timezone.utc).isoformat(), "version": 1}
        store.set_meta(SEED_META, json.dumps(stamp).encode())
    finally:
        store.close()
    return stored


def count_orders(events: Iterable[Event]) -> int:
    return sum(1 for e in events if isinstance(e, Order))
