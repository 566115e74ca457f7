"""Profile lookup, event ingest and cache memory, each against a floor measured in the same run.

Profiles are realistic: the demo shop's synthetic customers and visitors (the demo seeder's
histories folded through the store, as a live shop's events are), cloned under fresh keys
to fill a SQLite file of 100,000 profiles (quick: 20,000). Figures:

- warm cache: ``Profiles.get(customer_id=...)`` on a cached profile against ``get`` on a bare
  cachetools ``TTLCache`` holding the same profiles (ours adds the key, a lock and hit
  counting). Target: under 5 us, and near the peer.
- SQLite, cold cache: ``SQLiteStore.load`` against a raw ``sqlite3`` primary-key read plus a
  msgspec msgpack decode into the same ``Profile`` struct, on the same file. Target: < 25 us.
  The raw read uses a connection with SQLite's defaults (pages read by ``pread``); ``load``
  reads through a memory map (``SQLiteStore(mmap_size=...)``), its one advantage.
- ingest: ``store.append`` of synthetic traffic in batches of 500 (the event writer's batch
  size), against the floor of logging the same rows raw: encode each event and
  ``executemany`` it into an events table of the same shape, same pragmas, one transaction
  per batch. Ours also dedupes orders and routes events (and, before the log-first
  pipeline of issue #19, folds them into profiles it writes back). Target: >= 0.8x raw.
- memory: heap (``RssAnon``) growth of a child process that loads 100,000 profiles into
  ``Profiles`` (cache sized to hold all). Target: < 300 MB. The peer column is their msgpack
  size. The whole RSS growth is in the note: it adds the pages of the database file that
  ``load`` read through its memory map, which are the kernel's shared page cache. An info
  row gives the time of a full garbage-collector pass with that cache (it stops the thread
  serving pages).

Lookups alternate between contenders chunk by chunk; each figure is the median over the
chunks (the machine is shared and noisy). Every contender must return the same profiles.
The population helpers here are reused by ``bench_audience`` and ``bench_segments``.

Run alone: ``python -m benchmarks.bench_profiles [--quick]``.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
from cachetools import TTLCache

from segmint.engine.catalog import load_catalog_file
from segmint.engine.events import CartLine, CartUpdate, Event, Identify, Order, OrderItem, PageView, ProductView
from segmint.engine.profile import Profile
from segmint.engine.profiles import Profiles
from segmint.engine.rfm import compute_rfm_thresholds, save_rfm_thresholds
from segmint.engine.stores import MemoryStore, SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "segmint.toml"
#: Every benchmark evaluates at this instant; the demo histories are generated relative to it.
NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)

WARM_TARGET_US = 5.0
LOAD_TARGET_US = 25.0
INGEST_TARGET = 0.8
MEMORY_TARGET_MB = 300.0

_encode = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(Profile).decode


# -- realistic profiles ---------------------------------------------------------------------

def demo_store(seed: int = 42) -> MemoryStore:
    """The demo shop's history (about 540 shoppers) folded into a memory store at ``NOW``."""
    from segmint.middleware.demo.seed import generate_history

    catalog = load_catalog_file(ROOT / "examples" / "catalog.json")
    events, _ = generate_history(catalog, NOW, seed=seed)
    store = MemoryStore(clock=lambda: NOW)
    for start in range(0, len(events), 2000):
        store.append(events[start:start + 2000])
    return store


def clone(template: Profile, number: int) -> Profile:
    """``template`` under a fresh key (customer or visitor, as the template is)."""
    if template.customer_id:
        cid = f"bench-{number:07d}"
        return msgspec.structs.replace(template, key=f"c:{cid}", customer_id=cid)
    vid = f"bench-v{number:07d}"
    return msgspec.structs.replace(template, key=f"v:{vid}", visitor_ids=(vid,))


def write_profiles_db(path: str | os.PathLike[str], n: int, templates: list[Profile],
                      rfm_source: MemoryStore | None = None) -> list[str]:
    """A SQLite store file holding ``n`` clones of ``templates`` (round robin); their keys.

    Rows go in raw (the store's own table and msgpack encoding): folding millions of
    events is not what the callers measure. RFM thresholds computed from ``rfm_source``
    at ``NOW`` are stored so the runtime does not recompute them.
    """
    store = SQLiteStore(str(path), synchronous="OFF")  # creates the schema
    if rfm_source is not None:
        thresholds = compute_rfm_thresholds(rfm_source, NOW, save=False)
        if thresholds is not None:
            save_rfm_thresholds(store, thresholds)
    store.close()
    keys: list[str] = []
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    batch: list[tuple[str, bytes]] = []
    for number in range(n):
        profile = clone(templates[number % len(templates)], number)
        keys.append(profile.key)
        batch.append((profile.key, _encode(profile)))
        if len(batch) >= 10_000:
            conn.executemany("INSERT INTO profiles (key, data) VALUES (?, ?)", batch)
            batch = []
    conn.executemany("INSERT INTO profiles (key, data) VALUES (?, ?)", batch)
    conn.execute("COMMIT")
    conn.close()
    return keys


# -- timing and reporting -------------------------------------------------------------------

#: In-process CPU-bound figures are timed in CPU time of this process (user + system, so
#: SQLite page-cache reads count): on this shared 2-core machine other jobs' load stretches
#: wall time by a varying factor, while the work done per call is what we compare. I/O-bound
#: figures (ingest with fsync, import, the HTTP server) use wall time.
cpu_clock = time.process_time


def cpu_seconds(fn: Callable[[], object]) -> float:
    """CPU seconds of one call of ``fn``, with the cyclic GC paused, as ``timeit`` does.

    A full collection walks every live object (all the cached profiles) and lands on
    whichever contender happens to allocate the triggering object: noise, not a property of
    the code measured. It runs between samples instead.
    """
    gc.collect()
    gc.disable()
    try:
        started = cpu_clock()
        fn()
        return cpu_clock() - started
    finally:
        gc.enable()

def row(figure: str, ours: float, peer: str, peer_value: float, ratio: float, unit: str,
        target: str, ok: bool, **extra: Any) -> dict[str, Any]:
    return {"figure": figure, "ours": round(ours, 4), "peer": peer, "peer_value": round(peer_value, 4),
            "ratio": round(ratio, 3), "unit": unit, "target": target, "ok": bool(ok), **extra}


def child_json(args: list[str], timeout: float = 1200) -> dict[str, Any]:
    """Run ``python -m benchmarks.<args>`` in a child process; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux ``/proc``)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_anon_mb() -> float:
    """Anonymous resident memory of this process in MB (``RssAnon``): its heap.

    Unlike the whole RSS it leaves out file-backed pages: ``SQLiteStore.load`` reads the
    database through a memory map, whose pages are the kernel's shared page cache.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no RssAnon in /proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB since it started (``VmHWM``).

    Not ``getrusage().ru_maxrss``: Linux carries that across ``exec`` from the forked copy of
    the parent, so a child of a big benchmark runner would report the runner's size.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


# -- lookups --------------------------------------------------------------------------------

def _lookups(path: Path, keys: list[str], rounds: int) -> list[dict[str, Any]]:
    rng = random.Random(5)
    sample = [k for k in rng.sample(keys, min(len(keys), 20_000)) if k.startswith("c:")]
    ids = [k[2:] for k in sample]
    chunk = 2000

    store = SQLiteStore(str(path))
    profiles = Profiles(store, maxsize=len(sample) + 10, ttl=3600.0)
    peer_cache: TTLCache[str, Profile] = TTLCache(maxsize=len(sample) + 10, ttl=3600.0)
    for cid, key in zip(ids, sample):
        profile = profiles.get(customer_id=cid)
        if profile.key != key:
            raise AssertionError(f"Profiles.get({cid!r}) returned {profile.key!r}")
        peer_cache[key] = profile
    raw = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode=WAL")
    for cid, key in zip(ids[:500], sample[:500]):  # both read paths must agree
        (data,) = raw.execute("SELECT data FROM profiles WHERE key = ?", (key,)).fetchone()
        if store.load(customer_id=cid) != _decode_profile(data) or peer_cache.get(key) is not profiles.get(customer_id=cid):
            raise AssertionError(f"lookups disagree on {key}")

    get, peer_get, load, execute = profiles.get, peer_cache.get, store.load, raw.execute
    sql = "SELECT data FROM profiles WHERE key = ?"
    contenders: dict[str, Callable[[list[str], list[str]], object]] = {
        "warm ours": lambda part, _: [get(customer_id=cid) for cid in part],
        "warm peer": lambda _, part: [peer_get(key) for key in part],
        "load ours": lambda part, _: [load(customer_id=cid) for cid in part],
        "load peer": lambda _, part: [_decode_profile(execute(sql, (key,)).fetchone()[0]) for key in part],
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(rounds):
        start = (r * chunk) % (len(ids) - chunk)
        part_ids, part_keys = ids[start:start + chunk], sample[start:start + chunk]
        names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in names:
            seconds = cpu_seconds(lambda: contenders[name](part_ids, part_keys))
            samples[name].append(seconds / chunk * 1e6)
    raw.close()
    store.close()
    w_ours, w_peer, c_ours, c_peer = (statistics.median(samples[name]) for name in contenders)
    n = len(keys)
    return [
        row(f"profile lookup, warm cache ({len(sample):,} cached)", w_ours, "cachetools TTLCache.get",
            w_peer, w_peer / w_ours, "us/lookup", f"< {WARM_TARGET_US:g} us", w_ours < WARM_TARGET_US),
        row(f"profile lookup, SQLite, cache cold ({n:,} profiles)", c_ours,
            "raw sqlite3 PK read + msgpack decode", c_peer, c_peer / c_ours, "us/lookup",
            f"< {LOAD_TARGET_US:g} us", c_ours < LOAD_TARGET_US),
    ]


# -- ingest ---------------------------------------------------------------------------------

def traffic(n_events: int, customers: int, seed: int = 11) -> list[Event]:
    """Shop traffic in time order: views, carts, orders of 1-3 lines, identify links."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=30)
    skus = [(f"sku-{i}", ("shoes", "skincare", "phones", "makeup")[i % 4], 10.0 + i % 90) for i in range(400)]
    events: list[Event] = []
    for i in range(n_events):
        at = start + timedelta(seconds=i * 7)
        number = rng.randrange(customers)
        visitor, customer = f"v{number}", f"c{number}"
        known = number % 3 != 0  # a third of the visitors never log in
        roll = rng.random()
        if roll < 0.45:
            events.append(PageView(visitor_id=visitor, path=f"/p/{i % 50}", at=at))
        elif roll < 0.75:
            sku, category, _ = rng.choice(skus)
            events.append(ProductView(visitor_id=visitor, sku=sku, category=category, at=at))
        elif roll < 0.85:
            sku, category, price = rng.choice(skus)
            events.append(CartUpdate(visitor_id=visitor, items=[CartLine(sku=sku, price=price, category=category)], at=at))
        elif roll < 0.95 and known:
            lines = [OrderItem(sku=s, category=c, price=p, quantity=rng.randint(1, 2),
                               discount=5.0 if rng.random() < 0.2 else 0.0)
                     for s, c, p in rng.sample(skus, rng.randint(1, 3))]
            events.append(Order(customer_id=customer, visitor_id=visitor, order_id=f"o{i}", items=lines, at=at))
        elif known:
            events.append(Identify(visitor_id=visitor, customer_id=customer, at=at))
        else:
            events.append(PageView(visitor_id=visitor, at=at))
    return events


def _route_key(event: Event) -> str:
    return f"c:{event.customer_id}" if event.customer_id else f"v:{event.visitor_id}"


def _raw_events_db(path: str, *, key_index: bool = False) -> sqlite3.Connection:
    """The peer's table: the event log with its time index; ``key_index`` adds the store's
    second index (a profile's tail is read through it), for the floor of the store's format."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL NOT NULL, type TEXT NOT NULL,"
                 " key TEXT NOT NULL, data BLOB NOT NULL)")
    conn.execute("CREATE INDEX events_by_time ON events (at, id)")
    if key_index:
        conn.execute("CREATE INDEX events_by_key ON events (key, id)")
    return conn


def _ingest(n_events: int, rounds: int, batch: int = 500) -> list[dict[str, Any]]:
    events = traffic(n_events, customers=max(1000, n_events // 20))
    batches = [events[i:i + batch] for i in range(0, len(events), batch)]
    orders = sum(1 for e in events if isinstance(e, Order))
    results: dict[str, list[float]] = {"ours": [], "raw": [], "indexed": []}
    with tempfile.TemporaryDirectory(prefix="segmint-bench-ingest-") as tmp:
        for r in range(rounds):
            for name in (("ours", "raw", "indexed") if r % 2 == 0 else ("indexed", "raw", "ours")):
                path = os.path.join(tmp, f"{name}-{r}.db")
                if name == "ours":
                    store = SQLiteStore(path)  # synchronous=FULL, WAL: the defaults
                    started = time.perf_counter()
                    for part in batches:
                        store.append(part)
                    seconds = time.perf_counter() - started
                    stored_orders = sum(p.orders for p in store.iter_profiles())
                    logged = store._thread_connection().execute("SELECT count(*) FROM events").fetchone()[0]
                    store.close()
                    if stored_orders != orders or logged != len(events):
                        raise AssertionError(f"ingest: {stored_orders} orders folded, {logged} events logged; "
                                             f"expected {orders} and {len(events)}")
                else:
                    conn = _raw_events_db(path, key_index=name == "indexed")
                    started = time.perf_counter()
                    for part in batches:
                        rows = [(e.at.timestamp(), type(e).__struct_config__.tag, _route_key(e), _encode(e))  # type: ignore[union-attr]
                                for e in part]
                        conn.execute("BEGIN IMMEDIATE")
                        conn.executemany("INSERT INTO events (at, type, key, data) VALUES (?, ?, ?, ?)", rows)
                        conn.execute("COMMIT")
                    seconds = time.perf_counter() - started
                    logged = conn.execute("SELECT count(*) FROM events").fetchone()[0]
                    conn.close()
                    if logged != len(events):
                        raise AssertionError(f"raw ingest logged {logged} of {len(events)} events")
                results[name].append(len(events) / seconds)
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(path + suffix):
                        os.remove(path + suffix)
    ours, raw, indexed = (statistics.median(results[k]) for k in ("ours", "raw", "indexed"))
    return [row(f"event ingest into SQLite, batches of {batch} ({len(events):,} events)", ours,
                "raw sqlite3 executemany of the same rows", raw, ours / raw, "events/s",
                f">= {INGEST_TARGET:g}x raw", ours / raw >= INGEST_TARGET,
                note=f"the same raw executemany into a table that also has the store's index by "
                     f"profile key (which tail reads need): {indexed:,.0f} events/s, "
                     f"{indexed / raw:.2f}x raw; ours is {ours / indexed:.2f}x that")]


# -- memory ---------------------------------------------------------------------------------

def memory_child(path: str, n: int) -> dict[str, Any]:
    """In a fresh process: RSS growth from caching ``n`` profiles read through ``Profiles``."""
    import gc

    store = SQLiteStore(path)
    keys = [k for (k,) in store._thread_connection().execute("SELECT key FROM profiles LIMIT ?", (n,))]
    profiles = Profiles(store, maxsize=n + 10, ttl=3600.0)
    gc.collect()
    before, before_anon = rss_mb(), rss_anon_mb()
    for key in keys:
        if key.startswith("c:"):
            profiles.get(customer_id=key[2:])
        else:
            profiles.get(visitor_id=key[2:])
    gc.collect()
    after, after_anon = rss_mb(), rss_anon_mb()
    cached = profiles.stats["size"]
    encoded = store._thread_connection().execute(
        "SELECT sum(length(data)) FROM (SELECT data FROM profiles LIMIT ?)", (n,)).fetchone()[0]
    pauses = []
    for _ in range(3):  # a full collection stops the serving thread: how long, with this cache
        started = time.perf_counter()
        gc.collect()
        pauses.append((time.perf_counter() - started) * 1000)
    return {"cached": cached, "delta_mb": after_anon - before_anon, "rss_delta_mb": after - before,
            "gc_pause_ms": statistics.median(pauses), "tracked": len(gc.get_objects()),
            "peak_mb": peak_rss_mb(),
            "encoded_mb": encoded / 2**20}


def _memory(path: Path, n: int) -> list[dict[str, Any]]:
    result = child_json(["benchmarks.bench_profiles", "memory-child", str(path), str(n)])
    if result["cached"] != n:
        raise AssertionError(f"memory: {result['cached']} profiles cached, expected {n}")
    delta = result["delta_mb"]
    mapped = result["rss_delta_mb"] - delta
    return [row(f"memory of {n:,} cached profiles (heap growth of a child)", delta,
                "their msgpack size in SQLite", result["encoded_mb"], result["encoded_mb"] / delta, "MB",
                f"< {MEMORY_TARGET_MB:g} MB", delta < MEMORY_TARGET_MB,
                note=f"RSS grew {result['rss_delta_mb']:.0f} MB, {mapped:.0f} MB of it the memory-mapped "
                     f"database file (shared page cache); child peak RSS {result['peak_mb']:.0f} MB"),
            row(f"full garbage-collector pass with {n:,} profiles cached", result["gc_pause_ms"], "-", 0.0, 0.0,
                "ms", "- (info)", True, note=f"{result['tracked']:,} objects tracked by the collector")]


def run(quick: bool) -> list[dict[str, Any]]:
    templates = list(demo_store().iter_profiles())
    n = 20_000 if quick else 100_000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="segmint-bench-profiles-") as tmp:
        path = Path(tmp) / "profiles.db"
        keys = write_profiles_db(path, n, templates)
        rows += _lookups(path, keys, rounds=8 if quick else 20)
        rows += _ingest(20_000 if quick else 100_000, rounds=3)
        rows += _memory(path, 100_000 if not quick else n)
    return rows


def _print_rows(rows: Iterable[dict[str, Any]]) -> None:
    for r in rows:
        print(f"{r['figure'][:60]:60} {r['ours']:>10.3f} {r['unit']:10} {r['peer'][:38]:38} "
              f"{r['peer_value']:>10.3f} x{r['ratio']:<7} {r['target']:16} "
              f"{'n/a' if r.get('available') is False else 'ok' if r['ok'] else 'MISS'}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory-child"]:
        print(json.dumps(memory_child(sys.argv[2], int(sys.argv[3]))))
    else:
        _print_rows(run("--quick" in sys.argv))
