"""Campaign report speed: ``build_report`` over a SQLite event log of 10 million events.

The log is synthetic shop traffic in time order: visitors drift through a sliding pool (each
is active for a few days), about 78% of events are widget impressions over 4 campaigns with
A/B/control variants, 6% clicks, 3% orders, 1% identify links and 12% page views (which the
report skips). It is bulk-inserted into a real ``SQLiteStore`` file (the store's own table and
msgpack encoding; folding 10M events into profiles is not what is measured here).

Figures (seconds, one run each), for each reader (``[analytics] reader``: the Python reader of
the log, and DuckDB's columnar projection when the ``analytics`` extra is installed):

- the first report, run when 90% of the traffic is in: it reads the log up to then and saves
  its state in the store (``analytics/checkpoint.py``); held to the issue's target, under
  30 s for 10M events;
- the refreshed report, run after the last 10% came in: it restores that state and reads only
  the newer events; held to under 5 s. Each reader resumes the same state, the first report's
  (a refresh saves a newer one, past every event: a reader starting from that would read
  nothing). Its floor: a bare read (the Python reader, doing nothing) of the events logged
  after the saved state, which any report that resumes must read;
- the report refreshed again an hour later (a page opened hourly; info, no target): one more
  hour of the same traffic is logged (72,000 events), and each reader resumes the state its
  refresh saved and reads that hour. Each report runs an hour after the last event it covers
  (the checkpoint trails a report's end by ``SETTLE_SECONDS``), so each saves its state where
  the next one starts;
- for DuckDB, the projection's own costs apart: built from the log before its first report (a
  shop pays it once), then kept current by the compactor, which appends the newly logged
  events every few seconds (``ColumnarLog.keep_up``); its work for the last 10% is timed on
  its own (in a shop it is spread over the hours those events took to arrive), and the
  refresh that follows appends whatever is left (nothing here) inside its figure.

Quick mode (200k events) scales the targets to its size (0.6 s and 0.1 s), so ``make
bench-quick`` stays under two minutes; fixed costs weigh more there.

The refreshed report must count exactly the impressions, clicks and orders that were
generated, and both readers must give the same report, so a fast wrong answer (or a state or
projection that lost events) cannot pass.

Run alone: ``python -m benchmarks.bench_analytics [--quick]``.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec

from segmint.engine.analytics import attribution_log, build_report
from segmint.engine.analytics.attribution import DEFAULT_WINDOW_DAYS
from segmint.engine.analytics.checkpoint import SETTLE_SECONDS, ReportCheckpoint
from segmint.engine.analytics.columnar import ColumnarLog, duckdb_available
from segmint.engine.events import Click, Identify, Impression, Order, OrderItem, PageView
from segmint.engine.stores.sqlite import SQLiteStore

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CAMPAIGNS = ("winback", "cart_cross_sell", "new_arrivals", "vip_bundle")
VARIANTS = ("A", "B", "control")
SKUS = [f"sku-{i}" for i in range(500)]
EVENTS_PER_VISITOR = 12
POOL = 20_000          # visitors active at once
SPACING = 0.05         # seconds between events: 10M events span about 6 days of traffic
FIRST_SECONDS = 30.0    # the targets over 10M events (scaled down for a quick run)
REFRESH_SECONDS = 5.0
GIVE_UP_SECONDS = 600.0


def hour_events(n_events: int) -> int:
    """One more hour of the same traffic after the log (72,000 events at ``SPACING`` for 10M;
    scaled down with the log in a quick run)."""
    return round(3600 / SPACING * n_events / 10_000_000)


def generate(path: Path, n_events: int, seed: int = 7) -> Iterator[Counter[str]]:
    """Write ``n_events`` time-ordered events into a new SQLite store at ``path`` in steps: the
    first 90% (then the counts by type so far), the rest when advanced (then all counts), and
    when advanced again one more hour of the same traffic (``hour_events``; then all counts)."""
    SQLiteStore(str(path), synchronous="OFF").close()  # the store creates its schema
    rng = random.Random(seed)
    encode = msgspec.msgpack.Encoder().encode
    counts: Counter[str] = Counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    # The store's time index is built once after the first 90% (rows arrive in time order):
    # faster than keeping it up to date row by row, and the same index the store creates.
    (index_sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_by_time'").fetchone()
    conn.execute("DROP INDEX events_by_time")
    start = START.timestamp()
    uniform = rng.random
    shown = [rng.sample(SKUS, 4) for _ in range(1000)]  # rng.sample per event is the slow part
    rows = []

    def traffic(first: int, last: int) -> Iterator[None]:
        """Events ``first`` to ``last - 1`` into ``rows`` (and ``counts``), yielding at the
        90% point."""
        for i in range(first, last):
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
            if len(rows) == 50_000 or i == int(n_events * 0.9) - 1:
                _insert(conn, rows)
                rows.clear()
            if i == int(n_events * 0.9) - 1:
                conn.execute(index_sql)
                yield

    for _ in traffic(0, n_events):
        yield Counter(counts)
    _insert(conn, rows)
    rows.clear()
    yield Counter(counts)
    for _ in traffic(n_events, n_events + hour_events(n_events)):
        pass
    _insert(conn, rows)
    conn.close()
    yield counts


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO events (at, type, key, data) VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


class _Bounded:
    """The store, read with ``reader``, but reading gives up after ``seconds`` (a slow store must
    not hang ``make bench`` for hours); the check costs the floor and the report the same."""

    def __init__(self, store: SQLiteStore, seconds: float, reader: str = "python") -> None:
        self.store, self.seconds, self.reader = store, seconds, attribution_log(store, reader)  # type: ignore[arg-type]

    def __getattr__(self, name: str):
        return getattr(self.store, name)  # meta and the event fingerprint (report checkpoints)

    def attribution_rows(self, **options):
        # Called at once (a columnar reader starts computing when called), checked as read.
        return self._bounded(self.reader.attribution_rows(**options), time.perf_counter() + self.seconds)

    def _bounded(self, rows, deadline):
        try:
            for i, row in enumerate(rows):
                if not i & 0xFFFF and time.perf_counter() > deadline:
                    raise TimeoutError(f"reading events took over {self.seconds:.0f} s")
                yield row
        finally:
            rows.close()


def _floor(store: _Bounded, since: datetime) -> int:
    n = 0
    for _ in store.attribution_rows(since=since.timestamp(), until=float("inf"), batch_size=5000):
        n += 1
    return n


def run(quick: bool) -> list[dict]:
    n_events = 200_000 if quick else 10_000_000
    scale = n_events / 10_000_000
    first_target, refresh_target = FIRST_SECONDS * scale, REFRESH_SECONDS * scale
    label = f"{n_events / 1_000_000:g}M"
    readers = ["python"] + (["duckdb"] if duckdb_available() else [])
    figures: dict[str, dict[str, float]] = {reader: {} for reader in readers}
    reports, hour_reports, refreshed = {}, {}, {}
    newer = hour = 0
    with tempfile.TemporaryDirectory(prefix="segmint-bench-") as tmp:
        path = Path(tmp) / "events.db"
        began = time.perf_counter()
        steps = generate(path, n_events)
        next(steps)
        print(f"  generated {n_events * 0.9:,.0f} events in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        store = SQLiteStore(str(path))
        # The first report runs when 90% of the traffic is in (it reads the log up to then and
        # saves its state); the refreshed one runs after the rest came in, from that state.
        saved_at = START + timedelta(seconds=n_events * 0.9 * SPACING)
        logged_to = START + timedelta(seconds=n_events * SPACING)  # the first event of the hour after
        # Each report runs an hour after the last event it covers (``SETTLE_SECONDS``): it then
        # saves its state at that event, and the next one resumes there.
        first_now = saved_at + timedelta(seconds=SETTLE_SECONDS)
        now = logged_to + timedelta(seconds=SETTLE_SECONDS)
        hour_now = now + timedelta(hours=1)
        try:
            for reader in readers:
                bounded = _Bounded(store, GIVE_UP_SECONDS, reader)
                if reader == "duckdb":  # the projection's cost, apart: built from the log so far
                    t0 = time.perf_counter()
                    projection = ColumnarLog(str(path))
                    with projection.connect() as duck:
                        projection.sync(duck)
                    figures[reader]["build"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                first = build_report(bounded, now=first_now, fresh=True)  # type: ignore[arg-type]
                figures[reader]["first"] = time.perf_counter() - t0
            counts = next(steps)  # the last 10% logged: all the counts
            checkpoint = ReportCheckpoint(store, window_days=DEFAULT_WINDOW_DAYS, campaign=None, since=None)
            # The first report's state: its head and its parts (a refresh replaces some parts).
            saved = {name: store.get_meta(name) for name in store.meta_names(checkpoint.meta_name)}
            assert checkpoint.meta_name in saved, "the first report saved no state"
            for reader in readers:  # each resumes the first report's state
                read, reports[reader], refreshed[reader] = _resumed(
                    store, checkpoint.meta_name, saved, reader, path, since=saved_at, now=now,
                    figures=figures[reader], names=("floor", "keep_up", "refresh"))
                newer = read if reader == "python" else newer
            # An hour later (the report page opened hourly): each reader resumes the state its
            # refresh saved and reads that hour's events.
            hour_counts = next(steps)
            for reader in readers:
                read, hour_reports[reader], _ = _resumed(
                    store, checkpoint.meta_name, refreshed[reader], reader, path, since=logged_to, now=hour_now,
                    figures=figures[reader], names=("hour_floor", "hour_keep_up", "hour"))
                hour = read if reader == "python" else hour
        except TimeoutError as exc:
            print(f"  gave up: {exc}", file=sys.stderr)
            return [{"figure": f"campaign report over {label} events (s)",
                     "ours": GIVE_UP_SECONDS, "peer": "-", "peer_value": GIVE_UP_SECONDS, "ratio": 0.0,
                     "unit": "s", "target": f"< {first_target:.3g} s (gave up)", "ok": False}]
        finally:
            store.close()
    rows = _rows(label, n_events, first.events, newer, counts, reports, figures, first_target, refresh_target)
    return rows + _hour_rows(label, hour, hour_counts, hour_reports, figures)


def _resumed(store: SQLiteStore, meta_name: str, state: dict[str, bytes | None], reader: str, path: Path, *,
             since: datetime, now: datetime, figures: dict[str, float],
             names: tuple[str, str, str]) -> tuple[int, Any, dict[str, bytes | None]]:
    """Put ``state`` (a saved report state's meta entries) back in the store alone and time
    the report at ``now`` that resumes it with ``reader``: ``(events after since, the report,
    the state it left)``. Before it: the Python reader times the bare read after ``since``
    (the floor), DuckDB the compactor's turns that bring the projection up to date (back to
    back); ``names``: the figures' keys for those, then for the report."""
    floor, upkeep, report_name = names
    store.update_meta(state, delete=store.meta_names(meta_name))  # type: ignore[arg-type]
    bounded = _Bounded(store, GIVE_UP_SECONDS, reader)
    newer = 0
    t0 = time.perf_counter()
    if reader == "python":
        newer = _floor(bounded, since)
        figures[floor] = time.perf_counter() - t0
    else:
        kept, projection = 0, ColumnarLog(str(path))
        while turn := projection.keep_up():
            kept += turn
        figures[upkeep], figures[f"{upkeep}_events"] = time.perf_counter() - t0, kept
    t0 = time.perf_counter()
    report = build_report(bounded, now=now)  # type: ignore[arg-type]
    figures[report_name] = time.perf_counter() - t0
    left = {name: store.get_meta(name) for name in store.meta_names(meta_name)}
    # A report saves only when it read ``MIN_EVENTS`` (a quick run's refresh does not).
    figures[f"{report_name}_saved"] = left.get(meta_name) != state.get(meta_name)
    return newer, report, left


def _exact(report: Any, python: Any, counts: Counter[str]) -> bool:
    """``report`` counts exactly the generated impressions, clicks, orders and events the
    report reads (all but page views), and equals the Python reader's."""
    variants = [v for c in report.campaigns for v in c.variants]
    return ({**report.to_dict(), "generated_at": None} == {**python.to_dict(), "generated_at": None}
            and sum(v.exposures for v in variants) == counts["impression"]
            and sum(v.clicks for v in variants) == counts["click"]
            and report.orders == counts["order"]
            and report.events == sum(counts.values()) - counts["page_view"])


def _rows(label: str, n_events: int, first_events: int, newer: int, counts: Counter[str], reports: dict,
          figures: dict[str, dict[str, float]], first_target: float, refresh_target: float) -> list[dict]:
    read = n_events - counts["page_view"]
    python = reports["python"]
    rows = []
    for reader, report in reports.items():
        seconds = figures[reader]
        correct = 0 < newer < read and _exact(report, python, counts)
        name = "Python reader" if reader == "python" else "DuckDB projection"
        print(f"  {name}: counts exact and the same report as the Python reader: {correct}", file=sys.stderr)
        if "build" in seconds:
            rows.append({
                "figure": f"campaign report, {name}: the projection built from the {first_events:,} events "
                          "logged by then (s; once, then kept current by the compactor)",
                "ours": seconds["build"], "peer": "the first report over it (below)", "peer_value": seconds["first"],
                "ratio": seconds["first"] / seconds["build"] if seconds["build"] else 0.0, "unit": "s",
                "target": "- (info)", "ok": True})
        rows.append({
            "figure": f"campaign report over {label} events, {name}, first run: reads the {first_events:,} "
                      "events logged by then, saves its state (s)",
            "ours": seconds["first"], "peer": "bare read of the log (Python reader) after the saved state",
            "peer_value": figures["python"]["floor"],
            "ratio": figures["python"]["floor"] / seconds["first"] if seconds["first"] else 0.0, "unit": "s",
            "target": f"< {first_target:.3g} s", "ok": correct and seconds["first"] < first_target})
        if "keep_up" in seconds:
            rows.append({
                "figure": f"campaign report, {name}: the compactor's upkeep, the {seconds['keep_up_events']:,.0f} newer "
                          "events appended to the projection (s; in the background, every few seconds)",
                "ours": seconds["keep_up"], "peer": "the refreshed report (below)", "peer_value": seconds["refresh"],
                "ratio": seconds["refresh"] / seconds["keep_up"] if seconds["keep_up"] else 0.0, "unit": "s",
                "target": "- (info)", "ok": True})
        rows.append({
            "figure": f"campaign report over {label} events, {name}, refreshed: resumes the saved state, reads "
                      f"the {newer:,} newer events{' (the projection kept current)' if 'build' in seconds else ''} (s)",
            "ours": seconds["refresh"], "peer": "bare read of the log (Python reader) after the saved state",
            "peer_value": figures["python"]["floor"],
            "ratio": figures["python"]["floor"] / seconds["refresh"] if seconds["refresh"] else 0.0, "unit": "s",
            "target": f"< {refresh_target:.3g} s, counts exact, readers agree",
            "ok": correct and seconds["refresh"] < refresh_target})
    return rows


def _hour_rows(label: str, hour: int, counts: Counter[str], reports: dict,
               figures: dict[str, dict[str, float]]) -> list[dict]:
    """Info rows: the report refreshed again an hour later, from the state the refresh saved."""
    python, rows = reports["python"], []
    for reader, report in reports.items():
        correct = 0 < hour and _exact(report, python, counts)
        name = "Python reader" if reader == "python" else "DuckDB projection"
        print(f"  {name}, an hour later: counts exact and the same report as the Python reader: {correct}",
              file=sys.stderr)
        rows.append({
            "figure": f"campaign report over {label} events, {name}, refreshed again an hour later: resumes the "
                      + ("state the refresh saved, reads the" if figures[reader]["refresh_saved"] else
                         "first report's state (the refresh read too few events to save one), reads the newer "
                         "events and the") + f" {hour:,} events of that hour (s)",
            "ours": figures[reader]["hour"], "peer": "bare read of the log (Python reader) of that hour",
            "peer_value": figures["python"]["hour_floor"],
            "ratio": figures["python"]["hour_floor"] / figures[reader]["hour"] if figures[reader]["hour"] else 0.0,
            "unit": "s", "target": "- (info; counts exact, readers agree)", "ok": correct})
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
