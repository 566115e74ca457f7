"""Redis store next to SQLite: profile lookups and event ingest, measured in the same run.

A real ``redis-server`` is started on a free loopback port (the way the tests do it; no
persistence, so this measures the store, not the disk) and a SQLite file in a temp dir.
Both get the same synthetic traffic through ``store.append`` in batches of 500 (the event
writer's batch size): page views, product views and orders of ``customers`` customers and
anonymous visitors, with identify links. Both stores only log on append; then one compactor
per store folds the whole log into the rows (``catch_up``: events folded per second, and
Redis's row writes per event). Then random profile lookups by customer id and by (linked)
visitor id go straight to the store (no cache: the cost of a cache miss).

Figures are medians of several repetitions. This machine is shared and noisy, so the lookup
target is relative to a floor measured in the same run: a store lookup (link resolution
included) costs at most twice a bare redis-py ``HGET`` of a stored profile. Ingest and
compaction must stay above an absolute floor well beyond what one shop posts. Both stores must end with identical
profiles, so a fast wrong answer cannot pass. Without ``redis-server`` the rows are skipped
with a note.

Run alone: ``python -m benchmarks.bench_redis [--quick]``.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from segmint.engine.events import Event, Identify, Order, OrderItem, PageView, ProductView
from segmint.engine.stores import SQLiteStore

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
BATCH = 500
LOOKUP_OVERHEAD = 2.0   # a store lookup may cost at most this many bare redis-py GETs
INGEST_TARGET = 2_000.0  # events/s: about 7 million events an hour


def _redis_server_class():
    path = Path(__file__).resolve().parents[1] / "tests" / "redis_server.py"
    spec = importlib.util.spec_from_file_location("segmint_bench_redis_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RedisServer


def traffic(n_events: int, customers: int, seed: int = 3) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(n_events):
        at = START + timedelta(seconds=i)
        number = rng.randrange(customers * 2)
        visitor, customer = f"v{number}", f"c{number % customers}"
        roll = rng.random()
        if roll < 0.5:
            events.append(PageView(visitor_id=visitor, path=f"/p/{i % 50}", at=at))
        elif roll < 0.8:
            events.append(ProductView(visitor_id=visitor, sku=f"s{rng.randrange(200)}", category="k", at=at))
        elif roll < 0.85:
            events.append(Identify(visitor_id=visitor, customer_id=customer, at=at))
        else:
            events.append(Order(order_id=f"o{rng.randrange(n_events)}", customer_id=customer, at=at,
                                items=[OrderItem(sku=f"s{rng.randrange(200)}", category="k", price=20.0)]))
    return events


def _ingest(store, events: list[Event]) -> float:
    began = time.perf_counter()
    for start in range(0, len(events), BATCH):
        store.append(events[start:start + BATCH])
    return len(events) / (time.perf_counter() - began)


def _lookups(store, ids: list[tuple[str, str]], repeats: int) -> float:
    """Median microseconds per ``load`` over ``repeats`` passes."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        for kind, value in ids:
            store.load(**{kind: value})
        times.append((time.perf_counter() - began) / len(ids) * 1e6)
    return statistics.median(times)


def _compact(store) -> float:
    """Events folded per second by one compactor catching up with the whole log."""
    start, _ = store.compaction_position()
    began = time.perf_counter()
    store.catch_up()
    return (store.compaction_position()[0] - start) / (time.perf_counter() - began)


def _row_writes(store) -> int:
    """Profile rows Redis has written so far (``HSET`` calls, from ``INFO commandstats``)."""
    return int(store.client.info("commandstats").get("cmdstat_hset", {}).get("calls", 0))


def _bare_gets(store, keys: list[str], repeats: int) -> float:
    """The floor: median microseconds of a bare redis-py ``HGET`` of a stored profile."""
    client, times = store.client, []
    for _ in range(repeats):
        began = time.perf_counter()
        for key in keys:
            client.hget(key, "profile")
        times.append((time.perf_counter() - began) / len(keys) * 1e6)
    return statistics.median(times)


def _row(figure: str, ours: float, peer_value: float, unit: str, target: str, ok: bool) -> dict:
    higher_is_better = unit.endswith("/s")
    ratio = (ours / peer_value if higher_is_better else peer_value / ours) if ours and peer_value else 0.0
    return {"figure": figure, "ours": ours, "peer": "SQLite store, same run", "peer_value": peer_value,
            "ratio": ratio, "unit": unit, "target": target, "ok": ok}


def run(quick: bool) -> list[dict]:
    executable = shutil.which("redis-server")
    if executable is None:
        print("  bench_redis skipped: redis-server is not installed (apt-get install redis-server)",
              file=sys.stderr)
        return []
    from segmint.engine.stores.redis import RedisStore

    n_events, customers, repeats = (20_000, 2_000, 3) if quick else (200_000, 20_000, 3)
    events = traffic(n_events, customers)
    server = _redis_server_class()(executable).start()
    try:
        with tempfile.TemporaryDirectory(prefix="segmint-bench-") as tmp:
            sqlite = SQLiteStore(str(Path(tmp) / "p.db"))
            redis = RedisStore(server.url)
            try:
                # Same event objects for both (append stamps nothing: every event has ``at``).
                ingest = {"redis": _ingest(redis, events), "sqlite": _ingest(sqlite, events)}
                compaction = {"redis": _compact(redis), "sqlite": _compact(sqlite)}
                writes = _row_writes(redis) / len(events)
                same = (redis.count_profiles() == sqlite.count_profiles()
                        and list(redis.iter_profiles()) == list(sqlite.iter_profiles()))
                rng = random.Random(5)
                ids = [("customer_id", f"c{rng.randrange(customers)}") for _ in range(1000)]
                ids += [("visitor_id", f"v{rng.randrange(customers * 2)}") for _ in range(1000)]
                lookup = {name: _lookups(store, ids, repeats) for name, store in
                          (("redis", redis), ("sqlite", sqlite))}
                floor = _bare_gets(redis, [f"{redis.prefix}p:c:{v}" for _, v in ids[:1000]], repeats)
            finally:
                redis.close()
                sqlite.close()
    finally:
        server.cleanup()
    label = f"{n_events // 1000}k events, {customers // 1000}k customers"
    return [
        _row(f"Redis profile lookup, cache miss ({label})", lookup["redis"], lookup["sqlite"], "us",
             f"< {LOOKUP_OVERHEAD:.0f}x a bare HGET ({floor:.0f} us) and profiles identical",
             same and lookup["redis"] < LOOKUP_OVERHEAD * floor),
        _row(f"Redis event ingest, batches of {BATCH} ({label})", ingest["redis"], ingest["sqlite"],
             "events/s", f"> {INGEST_TARGET:,.0f} events/s and profiles identical",
             same and ingest["redis"] > INGEST_TARGET),
        _row(f"Redis compaction, one compactor catching up ({label}; {writes:.2f} row writes per event)",
             compaction["redis"], compaction["sqlite"], "events/s",
             f"> {INGEST_TARGET:,.0f} events/s and profiles identical",
             same and compaction["redis"] > INGEST_TARGET),
    ]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
