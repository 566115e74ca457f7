"""Campaign report speed: ``build_report`` over a SQLite event log of 10 million events.

The log is synthetic shop traffic in time order: visitors drift through a sliding pool (each
is active for a few days), about 78% of events are widget impressions over 4 campaigns with
A/B/control variants, 6% clicks, 3% orders, 1% identify links and 12% page views (which the
report skips). It is bulk-inserted into a real ``SQLiteStore`` file (the store's own table and
msgpack encoding; folding 10M events into profiles is not what is measured here).

Figures (seconds, median of the repetitions):

- the first report, run when 90% of the traffic was in: it reads the log up to then and
  saves its state in the store (``analytics/checkpoint.py``);
- the refreshed report over the whole log, run later: it restores that state and reads only
  the events logged after it. This is the report as a shop sees it day to day (the report
  page, a nightly ``segmint report``), and the one held to the target: under 30 s for 10M
  events (quick mode: 200k events against the same target scaled to its size, 0.6 s, so
  ``make bench-quick`` stays under two minutes). Its floor: a bare read (the same
  ``store.iter_events`` call, doing nothing) of the events logged after the saved state,
  which any report that resumes must read. The first run's figure is shown beside it,
  against the refreshed report.

The refreshed report must count exactly the impressions, clicks and orders that were
generated, so a fast wrong answer (or a state that lost events) cannot pass.

Run alone: ``python -m benchmarks.bench_analytics [--quick]``.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec

from segmint.engine.analytics import ATTRIBUTION_EVENT_TYPES, build_report
from segmint.engine.analytics.checkpoint import SETTLE_SECONDS
from segmint.engine.events import Click, Identify, Impression, Order, OrderItem, PageView
from segmint.engine.stores.sqlite import SQLiteStore

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CAMPAIGNS = ("winback", "cart_cross_sell", "new_arrivals", "vip_bundle")
VARIANTS = ("A", "B", "control")
SKUS = [f"sku-{i}" for i in range(500)]
EVENTS_PER_VISITOR = 12
POOL = 20_000          # visitors active at once
SPACING = 0.05         # seconds between events: 10M events span about 6 days of traffic
TARGET_SECONDS = 30.0
GIVE_UP_SECONDS = 600.0


def generate(path: Path, n_events: int, seed: int = 7) -> Counter[str]:
    """Write ``n_events`` time-ordered events into a new SQLite store at ``path``; counts by type."""
    SQLiteStore(str(path), synchronous="OFF").close()  # the store creates its schema
    rng = random.Random(seed)
    encode = msgspec.msgpack.Encoder().encode
    counts: Counter[str] = Counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    # The store's time index is built once at the end (rows arrive in time order): faster
    # than keeping it up to date row by row, and the same index the store creates.
    (index_sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_by_time'").fetchone()
    conn.execute("DROP INDEX events_by_time")
    start = START.timestamp()
    uniform = rng.random
    shown = [rng.sample(SKUS, 4) for _ in range(1000)]  # rng.sample per event is the slow part
    rows = []
    for i in range(n_events):
        ts = start + i * SPACING
        at = datetime.fromtimestamp(ts, timezone.utc)
        number = max(0, i // EVENTS_PER_VISITOR - int(uniform() * POOL))
        visitor = f"v{number}"
        campaign = CAMPAIGNS[number % len(CAMPAIGNS)]
        variant = VARIANTS[number // len(CAMPAIGNS) % len(VARIANTS)]
        roll = uniform()
        if roll < 0.78:
            skus = [] if variant == "control" else shown[(number + int(roll * 4)) % 1000]  # a few sets per visitor
            event = Impression(campaign=campaign, variant=variant, slot="home", skus=skus,
                               visitor_id=visitor, at=at)
        elif roll < 0.84:
            event = Click(campaign=campaign, variant=variant, slot="home", skus=[SKUS[int(roll * 1e6) % len(SKUS)]],
                          visitor_id=visitor, at=at)
        elif roll < 0.87:
            items = [OrderItem(sku=SKUS[int(uniform() * len(SKUS))], price=float(5 + int(uniform() * 75)))
                     for _ in range(1 + int(uniform() * 3))]
            event = Order(order_id=f"o{i}", visitor_id=visitor, at=at, items=items)
        elif roll < 0.88:
            event = Identify(visitor_id=visitor, customer_id=f"c{visitor}", at=at)
        else:
            event = PageView(path="/", visitor_id=visitor, at=at)
        kind = type(event).__struct_config__.tag
        counts[kind] += 1
        rows.append((ts, kind, f"v:{visitor}", encode(event)))
        if len(rows) == 50_000:
            _insert(conn, rows)
            rows.clear()
    _insert(conn, rows)
    conn.execute(index_sql)
    conn.close()
    return counts


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO events (at, type, key, data) VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


class _Bounded:
    """The store, but reading events gives up after ``seconds`` (a slow store must not hang
    ``make bench`` for hours); the check costs the floor and the report the same."""

    def __init__(self, store: SQLiteStore, seconds: float) -> None:
        self.store, self.seconds = store, seconds

    def __getattr__(self, name: str):
        return getattr(self.store, name)  # meta and the event fingerprint (report checkpoints)

    def iter_events(self, **options):
        deadline = time.perf_counter() + self.seconds
        for i, event in enumerate(self.store.iter_events(**options)):
            if not i & 0xFFFF and time.perf_counter() > deadline:
                raise TimeoutError(f"reading events took over {self.seconds:.0f} s")
            yield event


def _floor(store: _Bounded, since: datetime) -> int:
    n = 0
    for _ in store.iter_events(since=since, types=ATTRIBUTION_EVENT_TYPES, batch_size=5000):
        n += 1
    return n


def run(quick: bool) -> list[dict]:
    n_events = 200_000 if quick else 10_000_000
    repeats = 3 if quick else 1
    target = TARGET_SECONDS * n_events / 10_000_000
    label = f"{n_events / 1_000_000:g}M"
    with tempfile.TemporaryDirectory(prefix="segmint-bench-") as tmp:
        path = Path(tmp) / "events.db"
        began = time.perf_counter()
        counts = generate(path, n_events)
        generated = time.perf_counter() - began
        print(f"  generated {n_events:,} events in {generated:.0f} s", file=sys.stderr)
        store = SQLiteStore(str(path))
        bounded = _Bounded(store, GIVE_UP_SECONDS)
        # The first report runs when 90% of the traffic is in (it reads the log up to then and
        # saves its state); the refreshed one runs later over the whole log, from that state.
        saved_at = START + timedelta(seconds=n_events * 0.9 * SPACING)
        first_now, now = saved_at + timedelta(seconds=SETTLE_SECONDS), START + timedelta(days=60)
        floors, firsts, ours = [], [], []
        try:
            for _ in range(repeats):
                t0 = time.perf_counter()
                newer = _floor(bounded, saved_at)
                floors.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                first = build_report(bounded, now=first_now, fresh=True)  # type: ignore[arg-type]
                firsts.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                report = build_report(bounded, now=now)  # type: ignore[arg-type]
                ours.append(time.perf_counter() - t0)
        except TimeoutError as exc:
            print(f"  gave up: {exc}", file=sys.stderr)
            return [{"figure": f"campaign report over {label} events (s)",
                     "ours": GIVE_UP_SECONDS, "peer": "bare iter_events loop",
                     "peer_value": floors[0] if floors else GIVE_UP_SECONDS, "ratio": 0.0, "unit": "s",
                     "target": f"< {TARGET_SECONDS:.0f} s (gave up)", "ok": False}]
        finally:
            store.close()
    variants = [v for c in report.campaigns for v in c.variants]
    read = n_events - counts["page_view"]
    correct = (
        0 < newer < read
        and sum(v.exposures for v in variants) == counts["impression"]
        and sum(v.clicks for v in variants) == counts["click"]
        and report.orders == counts["order"]
        and report.events == read
    )
    mine, floor, cold = statistics.median(ours), statistics.median(floors), statistics.median(firsts)
    return [{
        "figure": f"campaign report over {label} events, refreshed: resumes the state the first "
                  f"report saved at 90% (s)",
        "ours": mine, "peer": f"bare iter_events loop over the {newer:,} events after the saved state",
        "peer_value": floor, "ratio": floor / mine if mine else 0.0, "unit": "s",
        "target": f"< {target:.3g} s and counts exact",
        "ok": correct and mine < target,
    }, {
        "figure": f"campaign report, first run: reads the {first.events:,} events logged by then, "
                  f"saves its state (s)",
        "ours": cold, "peer": "the refreshed report (above)", "peer_value": mine,
        "ratio": mine / cold if cold else 0.0, "unit": "s",
        "target": "- (info)", "ok": True,
    }]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
