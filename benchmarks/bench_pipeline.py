"""The log-first event pipeline (issue #19): the figures of its "Benchmarks" section.

The event ingest row (append against a raw ``executemany``) lives in ``bench_profiles``.
This module measures the rest, each figure against its peer in the same run, and each run
checks its own counts, so a fast wrong answer (events lost, visitors not recognised, a
compaction that folded nothing) fails its row:

- **compaction** (in process, SQLite): page-view-heavy traffic (sessions of page views,
  each with its widget's impression, some product views) is appended, then
  ``store.compact()`` passes fold the log into rows until it is folded. Figures: events
  folded per second (peer: folding the same events in memory, the pure-Python floor) and
  profile writes per event (counted by SQLite triggers on the profile table, appends
  included; peer: one write per profile for the whole backlog; target <= 0.2). Check: the rows, read raw, hold every
  page view and impression appended.
- **cold read with a 10-event tail**: ``store.load`` of profiles with 10 events appended
  since their last compaction, against ``store.load`` of compacted profiles in the same file
  (CPU time, alternating chunks). Target <= 1.5x. Check: the tail is in what ``load`` returns.
- **pages with their events folded** (in the serving process; and, with ``segmint fold
  --follow`` in its own process): pages served per second counting the time after the wrk
  run until the server has folded everything it logged (``/_segmint/health``: the writer's
  queue and, when the store compacts, ``compaction.events``), against the bare app under
  the same load. Target >= 0.5x.
- **N workers**: ``uvicorn --workers 2`` against one worker, same config and load (req/s by
  wrk). Target >= 1.7x. The machine's cores are in the note: wrk and the event writer compete
  with the workers for them.
- **sustained**: 60 s of wrk at full rate on one worker (quick: 10 s), then events shed (the
  writer's ``rejected`` + ``dropped`` on ``/health``, and page views and impressions logged
  against pages served; target 0; a page that failed open without a decision, which the
  server counts, has no impression to log and is shown in the note instead) and the seconds until everything is folded (target <= 5 s).
  The backlog, sampled each second during the run, shows how close the queue came to its bound.

Compaction and the cold read need a store that compacts: ``CompactingStore`` below, checked
with ``isinstance``. A store without it gets rows marked "not available" (``available:
False``; not failures), as does the separate fold process. The names this module expects
of the pipeline (``compact()`` returning the events folded, ``segmint fold CONFIG
--follow``, ``compaction.events`` on ``/health``) are the pipeline branch's, read before
it landed: a compacting store that differs fails here, never silently flatters a figure. The page rows run two loads
(``wrk`` with a Lua script): one returning visitor's cookie, and 10,000 distinct returning
visitors in rotation (valid signed cookies of visitors the store already knows, so no
response sets a new one), so that coalescing one hot profile does not flatter the figures.
Every request is a browser's (``Accept: text/html``) for the real 20 KB page with one slot
(``bench_middleware``'s app and config). Checks: every page view and impression logged once
per page served (up to the connections' in-flight requests), the rotation reached every
visitor and created no profile.

Run alone: ``python -m benchmarks.bench_pipeline [--quick]``.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

from segmint.engine.events import Event, Impression, PageView, ProductView
from segmint.engine.folding import fold
from segmint.engine.profile import Profile, profile_key
from segmint.engine.signing import sign
from segmint.engine.stores import SQLiteStore

from .bench_middleware import API_TOKEN, CONNECTIONS, PAGE, SECRET, Server, _wrk, write_config
from .bench_profiles import NOW, ROOT, cpu_seconds, row

VISITORS = 10_000
LOADS = ("one returning visitor", f"{VISITORS:,} returning visitors in rotation")
FOLDED_TARGET, WORKERS_TARGET, WRITES_TARGET, TAIL_TARGET, LAG_TARGET_S = 0.5, 1.7, 0.2, 1.5, 5.0
TAIL = 10
#: ``/health`` counters of pages served without a decision (so without an impression).
UNDECIDED = ("failure.budget", "failure.overloaded", "failure.decide", "skipped.overloaded")
CAMPAIGN = "bench-bestsellers"  # bench_middleware's config

#: wrk requests from a file of signed cookies, one per line, taken in turn (``-- FILE``).
#: Requests are formatted once in ``init``: per request wrk only picks the next one.
ROTATION_LUA = """
local requests = {}
local n = 0
function init(args)
  for cookie in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("GET", "/", {
      ["Cookie"] = "segmint_vid=" .. cookie,
      ["Accept"] = "text/html,application/xhtml+xml",
      ["Accept-Encoding"] = "gzip"})
  end
end
function request()
  n = n % #requests + 1
  return requests[n]
end
"""

_decode_profile = msgspec.msgpack.Decoder(Profile).decode


@runtime_checkable
class CompactingStore(Protocol):
    """A store that folds its log into profile rows (docs/design-ingest.md, "compact").

    The capability as the pipeline's branch declares it (``segmint.engine.stores.base``,
    not on main yet: once it is, import that one instead of this copy). One call is one
    pass over a bounded chunk of the log: the number of events folded (0: caught up), or
    None when another compactor holds the lock.
    """

    def compact(self, *, max_events: int = 2000, wait: bool = False) -> int | None: ...


def unavailable(figure: str, unit: str, target: str, why: str) -> dict[str, Any]:
    """A row the current code cannot measure: shown as "n/a", neither met nor missed."""
    return {**row(figure, 0.0, "-", 0.0, 0.0, unit, target, True), "available": False,
            "note": f"not available: {why}"}


def compact_all(store: CompactingStore, limit: int) -> int:
    """Compaction passes (the store's default chunk) until the log is folded; how many passes
    it took (at most ``limit``)."""
    for passes in range(limit + 1):
        folded = store.compact()
        if not isinstance(folded, int):  # None: another compactor holds the lock; here none may
            raise AssertionError(f"{type(store).__name__}.compact() returned {folded!r}, not the number "
                                 f"of events folded")
        if folded == 0:
            return passes
    raise AssertionError(f"compaction still folding after {limit} passes")


# -- in-process figures: compaction and the cold read with a tail ----------------------------

def page_traffic(n_events: int, concurrent: int = 2000, seed: int = 19) -> list[Event]:
    """Page-view-heavy shop traffic in time order: visits of 2-15 pages, a page every 10-60 s
    (a page view and its widget's impression, every third page a product view too), each by
    another visitor, ``concurrent`` of them under way at a time on average (a busy shop:
    a batch of the writer's 100 events touches about as many profiles, as in production)."""
    rng = random.Random(seed)
    visits = n_events // 20 + 1  # a visit averages ~20 events and lasts ~5 minutes
    window = visits * 300 / concurrent
    events: list[tuple[datetime, int, Event]] = []
    number = 0
    while len(events) < n_events:
        vid = f"visitor-{number:06d}"
        at = NOW - timedelta(days=1) + timedelta(seconds=rng.uniform(0, window))
        for page in range(rng.randint(2, 15)):
            at += timedelta(seconds=rng.uniform(10, 60))
            events.append((at, len(events), PageView(visitor_id=vid, path=f"/p/{page}", at=at)))
            events.append((at, len(events), Impression(visitor_id=vid, campaign=CAMPAIGN, slot="home",
                                                       skus=["sku-1", "sku-2"], at=at)))
            if page % 3 == 2:
                events.append((at, len(events), ProductView(visitor_id=vid, sku=f"sku-{page}", category="shoes",
                                                            at=at)))
        number += 1
    events.sort(key=lambda item: item[:2])
    return [event for _, _, event in events[:n_events]]


def _count_writes(path: str) -> None:
    """Count every profile row written from now on (``bench_writes``), whatever the store does."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        CREATE TABLE bench_writes (n INTEGER NOT NULL);
        INSERT INTO bench_writes VALUES (0);
        CREATE TRIGGER bench_insert AFTER INSERT ON profiles BEGIN UPDATE bench_writes SET n = n + 1; END;
        CREATE TRIGGER bench_update AFTER UPDATE ON profiles BEGIN UPDATE bench_writes SET n = n + 1; END;
    """)
    conn.close()


def _raw_rows(path: str) -> Iterator[Profile]:
    """The profile rows as stored (not ``load``, which would fold an uncompacted tail)."""
    conn = sqlite3.connect(path)
    try:
        for (data,) in conn.execute("SELECT data FROM profiles"):
            yield _decode_profile(data)
    finally:
        conn.close()


def _fold_in_memory(events: list[Event]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for event in events:
        key = profile_key(customer_id=event.customer_id, visitor_id=event.visitor_id)
        profile = profiles.get(key)
        if profile is None:
            profile = profiles[key] = Profile(key=key)
        fold(profile, event)
    return profiles


def _compaction(tmp: Path, n_events: int) -> list[dict[str, Any]]:
    rate_figure = f"compaction, SQLite, page-view-heavy traffic ({n_events:,} events): events folded"
    writes_figure = f"compaction, SQLite, page-view-heavy traffic ({n_events:,} events): profile writes per event"
    path = str(tmp / "compaction.db")
    store = SQLiteStore(path)
    if not isinstance(store, CompactingStore):
        store.close()
        why = f"{type(store).__name__} has no compact()"
        return [unavailable(rate_figure, "events/s", "- (info)", why),
                unavailable(writes_figure, "writes/event", f"<= {WRITES_TARGET:g}", why)]
    events = page_traffic(n_events)
    _count_writes(path)  # from the first append: a store that still writes profiles there pays for it
    for start in range(0, len(events), 100):  # the event writer's batch size
        store.append(events[start:start + 100])
    started = time.perf_counter()
    passes = compact_all(store, limit=len(events))
    seconds = time.perf_counter() - started
    store.close()
    conn = sqlite3.connect(path)
    (writes,) = conn.execute("SELECT n FROM bench_writes").fetchone()
    conn.close()

    started = time.perf_counter()
    expected = _fold_in_memory(events)
    floor_seconds = time.perf_counter() - started
    page_views = sum(1 for e in events if isinstance(e, PageView))
    impressions = sum(1 for e in events if isinstance(e, Impression))
    rows = list(_raw_rows(path))
    folded_views = sum(p.page_views for p in rows)
    folded_impressions = sum(s.impressions for p in rows for s in p.campaigns.values())
    if (len(rows), folded_views, folded_impressions) != (len(expected), page_views, impressions):
        raise AssertionError(f"compaction: {len(rows)} rows with {folded_views} page views and "
                             f"{folded_impressions} impressions; expected {len(expected)}, {page_views}, "
                             f"{impressions}")
    rate, floor_rate = len(events) / seconds, len(events) / floor_seconds
    per_event, least = writes / len(events), len(expected) / len(events)
    note = f"{passes} passes; {len(expected):,} profiles"
    return [row(rate_figure, rate, "fold() of the same events in memory", floor_rate, rate / floor_rate,
                "events/s", "- (info)", True, note=note),
            row(writes_figure, per_event, "one write per profile for the whole backlog", least,
                per_event / least, "writes/event", f"<= {WRITES_TARGET:g}", per_event <= WRITES_TARGET,
                note=f"{writes:,} profile writes while appending and compacting (SQLite triggers); {note}")]


def _cold_read(tmp: Path, n_profiles: int, rounds: int) -> list[dict[str, Any]]:
    figure = f"profile read, SQLite, cache cold, with a {TAIL}-event tail ({n_profiles:,} profiles)"
    path = str(tmp / "tail.db")
    store = SQLiteStore(path)
    if not isinstance(store, CompactingStore):
        store.close()
        return [unavailable(figure, "us/read", f"<= {TAIL_TARGET:g}x a compacted row",
                            f"{type(store).__name__} has no compact()")]
    events = page_traffic(n_profiles * 20)
    for start in range(0, len(events), 500):
        store.append(events[start:start + 500])
    compact_all(store, limit=len(events))
    vids = sorted({e.visitor_id for e in events if e.visitor_id})
    tailed, compacted = vids[::2], vids[1::2]
    later = NOW + timedelta(hours=1)
    tail = [PageView(visitor_id=vid, path=f"/tail/{i}", at=later + timedelta(seconds=i))
            for vid in tailed for i in range(TAIL)]
    for start in range(0, len(tail), 500):
        store.append(tail[start:start + 500])
    rows = {p.key: p for p in _raw_rows(path)}
    for vid in tailed[:200] + compacted[:200]:  # load must see the tail, and only the tail
        key = profile_key(visitor_id=vid)
        loaded = store.load(visitor_id=vid)
        extra = TAIL if vid in tailed[:200] else 0
        if loaded is None or loaded.page_views != rows[key].page_views + extra:
            raise AssertionError(f"load({vid!r}) has {loaded and loaded.page_views} page views; the row "
                                 f"{rows[key].page_views}, the tail {extra}")
    load, chunk = store.load, 200
    samples: dict[str, list[float]] = {"tail": [], "row": []}
    for r in range(rounds):
        start = (r * chunk) % (len(compacted) - chunk)
        for name in (("tail", "row") if r % 2 == 0 else ("row", "tail")):
            part = (tailed if name == "tail" else compacted)[start:start + chunk]
            samples[name].append(cpu_seconds(lambda: [load(visitor_id=vid) for vid in part]) / chunk * 1e6)
    store.close()
    ours, peer = statistics.median(samples["tail"]), statistics.median(samples["row"])
    return [row(figure, ours, "read of a compacted row, same file", peer, ours / peer, "us/read",
                f"<= {TAIL_TARGET:g}x a compacted row", ours / peer <= TAIL_TARGET)]


# -- servers under wrk ----------------------------------------------------------------------

def visitor_ids(n: int) -> list[str]:
    """``n`` visitor ids of the form ``new_visitor_id`` makes (22 urlsafe characters)."""
    return [f"BenchVisitor{i:010d}" for i in range(n)]


def seed_visitors(db: Path, ids: list[str]) -> None:
    """Make ``ids`` returning visitors: two earlier visits each, folded into rows."""
    store = SQLiteStore(str(db))
    events: list[Event] = []
    for number, vid in enumerate(ids):
        at = datetime.now(timezone.utc) - timedelta(days=2, seconds=number)
        events += [PageView(visitor_id=vid, path="/", at=at),
                   PageView(visitor_id=vid, path="/", at=at + timedelta(days=1))]
    for start in range(0, len(events), 500):
        store.append(events[start:start + 500])
    if isinstance(store, CompactingStore):
        compact_all(store, limit=len(events))
    store.close()


class Counts:
    """Page views and impressions logged in a server's SQLite file, read with plain SQL."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def _query(self, sql: str, *args: Any) -> Any:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchone()
        finally:
            conn.close()

    def newest(self) -> int:
        """The id of the newest logged event."""
        return self._query("SELECT max(id) FROM events")[0] or 0

    def logged(self, since: int) -> tuple[int, int]:
        """(page views, impressions) logged after event ``since`` (a range of the primary key:
        polling it while a server drains must not scan the whole log)."""
        views, impressions = self._query(
            "SELECT sum(type = 'page_view'), sum(type = 'impression') FROM events WHERE id > ?", since)
        return views or 0, impressions or 0

    def visitors_since(self, event_id: int) -> tuple[int, int]:
        """(distinct visitors with a page view after ``event_id``, how many of them not ours)."""
        return self._query("SELECT count(DISTINCT key), count(DISTINCT CASE WHEN key NOT LIKE 'v:BenchVisitor%' "
                           "THEN key END) FROM events WHERE type = 'page_view' AND id > ?", event_id)

    def profiles(self) -> int:
        return self._query("SELECT count(*) FROM profiles")[0]


def health(server: Server) -> dict[str, Any]:
    import httpx

    return httpx.get(server.url + "/_segmint/health", headers={"Authorization": f"Bearer {API_TOKEN}"},
                     timeout=10).json()


def backlog(report: dict[str, Any], compacts: bool) -> int | None:
    """Events a server has accepted and not yet folded, from its ``/health``: the event
    writer's queue, plus, when the store compacts, the compaction lag (``compaction.events``);
    None while the report has no lag (the compactor has not looked yet): never "nothing
    left", which would count logged events as folded."""
    pending = report["writer"]["pending"]
    if not compacts:
        return pending
    lag = report.get("compaction", {}).get("events")
    return None if lag is None else pending + lag


def settle(server: Server, counts: Counts, since: int, pages: int, timeout: float,
           compacts: bool, impressions: int | None = None) -> tuple[float, bool]:
    """Wait until ``server`` has logged a page view for each of ``pages`` after event
    ``since`` and ``impressions`` impressions (default: one a page; fewer when pages failed
    open without a decision), and folded them; (the seconds it took, whether it got there).

    Gives up when the server has nothing left to fold for a second but the counts are still
    short (events were shed: waiting longer would not bring them), or after ``timeout``.
    """
    started = time.perf_counter()
    idle_since = None
    wanted = pages if impressions is None else impressions
    while time.perf_counter() - started < timeout:
        views, logged = counts.logged(since)
        idle = backlog(health(server), compacts) == 0
        if idle and views >= pages and logged >= wanted:
            return time.perf_counter() - started, True
        idle_since = (idle_since or time.perf_counter()) if idle else None
        if idle_since is not None and time.perf_counter() - idle_since > 1.0:
            break
        time.sleep(0.05)
    return time.perf_counter() - started, False


class Fleet:
    """The servers of one run: bare, segmint (one worker, embedded compactor), segmint with
    two workers, and segmint with ``segmint fold --follow`` in its own process (when the
    store compacts). Each segmint server has its own copy of the seeded SQLite file."""

    def __init__(self, tmp: Path) -> None:
        seed_dir = tmp / "seed"
        seed_dir.mkdir()
        config = write_config(seed_dir, cache_size=2 * VISITORS)
        self.ids = visitor_ids(VISITORS)
        seed_visitors(seed_dir / "segmint.db", self.ids)
        probe = SQLiteStore(str(seed_dir / "segmint.db"))
        self.compacts = isinstance(probe, CompactingStore)
        probe.close()
        self.cookies: dict[str, Path] = {}
        for load, ids in zip(LOADS, (self.ids[:1], self.ids)):
            path = tmp / f"cookies-{len(ids)}.txt"
            path.write_text("".join(sign(vid, SECRET) + "\n" for vid in ids))
            self.cookies[load] = path
        self.script = tmp / "rotation.lua"
        self.script.write_text(ROTATION_LUA)
        variants = ["segmint", "segmint x2"] + (["segmint + fold"] if self.compacts else [])
        self.counts: dict[str, Counts] = {}
        configs: dict[str, Path] = {"bare": config}
        for variant in variants:
            folder = tmp / variant.replace(" ", "").replace("+", "-")
            folder.mkdir()
            shutil.copy(seed_dir / "segmint.db", folder / "segmint.db")
            configs[variant] = folder / "segmint.toml"
            configs[variant].write_text(config.read_text().replace(str(seed_dir / "segmint.db"),
                                                                   str(folder / "segmint.db")))
            self.counts[variant] = Counts(folder / "segmint.db")
        self.configs = configs
        self.logs = tmp
        self.folder: subprocess.Popen[bytes] | None = None
        self.servers: dict[str, Server] = {}

    def start(self) -> None:
        """Start every process; ``stop`` ends the ones started, even if this fails midway."""
        if self.compacts:  # started first, so that it holds the fold lock, not the server
            self.fold_log = open(self.logs / "fold.log", "w")  # noqa: SIM115 - closed in stop()
            self.folder = subprocess.Popen([sys.executable, "-m", "segmint.middleware.cli", "fold",
                                            str(self.configs["segmint + fold"]), "--follow"],
                                           cwd=ROOT, stdout=self.fold_log, stderr=subprocess.STDOUT)
            time.sleep(1.0)
            if self.folder.poll() is not None:
                raise RuntimeError(f"segmint fold --follow exited: {(self.logs / 'fold.log').read_text()[-2000:]}")
        self.servers["bare"] = Server("bare", self.configs["bare"], self.logs / "bare.log")
        for variant in self.counts:
            config = self.configs[variant]
            self.servers[variant] = Server("segmint", config, self.logs / f"{config.parent.name}.log",
                                           workers=2 if variant == "segmint x2" else 1)
        for server in self.servers.values():
            server.wait_ready()

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        if self.folder is not None:
            self.folder.terminate()
            self.folder.wait(timeout=30)
            self.fold_log.close()  # type: ignore[union-attr]

    def verify(self) -> None:
        """Each server returns the page (segmint's with its widget) and no new visitor cookie."""
        import httpx

        cookie = self.cookies[LOADS[1]].read_text().splitlines()[-1]
        headers = {"Cookie": f"segmint_vid={cookie}", "Accept": "text/html,application/xhtml+xml"}
        for name, server in self.servers.items():
            response = httpx.get(server.url + "/", headers=headers, timeout=10)
            if response.status_code != 200 or "set-cookie" in response.headers:
                raise AssertionError(f"{name}: HTTP {response.status_code}, Set-Cookie "
                                     f"{response.headers.get('set-cookie')!r}: the signed cookie was refused")
            if name == "bare" and response.content != PAGE:
                raise AssertionError("the bare server did not return the page")
            if name != "bare" and b"data-segmint-campaign" not in response.content:
                raise AssertionError(f"{name}: no widget in the page")

    def run(self, variant: str, load: str, seconds: int, drain_timeout: float,
            watch: bool = False) -> dict[str, Any]:
        """One wrk run of ``load`` against ``variant``; for segmint, then the wait until its
        events are folded, and the counts checked. ``watch``: sample the server's backlog
        every second during the run (``peak``: how close the writer came to its bound)."""
        server = self.servers[variant]
        counts = self.counts.get(variant)
        if counts is None:
            return _wrk(server.url + "/", seconds, self.script, str(self.cookies[load]))
        newest = counts.newest()
        before = health(server) if variant != "segmint x2" else None  # x2: /health is one worker's
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(1.0):
                queued = backlog(health(server), self.compacts)
                if queued is not None:
                    samples.append(queued)

        sampler = threading.Thread(target=sample)
        if watch:
            sampler.start()
        try:
            result = _wrk(server.url + "/", seconds, self.script, str(self.cookies[load]))
        finally:
            stop.set()
            if watch:
                sampler.join()
        result["peak"] = max(samples, default=0)
        served = result["requests"]
        if before is not None:  # the pages are answered (wrk is done): their counters are final
            counters = health(server)["counters"]
            result["undecided"] = sum(counters.get(k, 0) - before["counters"].get(k, 0) for k in UNDECIDED)
        result["drain"], result["folded"] = settle(server, counts, newest, served, drain_timeout, self.compacts,
                                                   impressions=served - result.get("undecided", 0))
        result["views"], result["impressions"] = counts.logged(newest)
        if before is not None:
            after = health(server)
            result["shed"] = sum(after["writer"][k] - before["writer"][k] for k in ("rejected", "dropped"))
        distinct, strangers = counts.visitors_since(newest)
        # every page was a known visitor's; all of them were seen unless events were lost (a
        # loss fails the row through _lost, not here)
        expected = (min(served, VISITORS) if load == LOADS[1] else 1) if not _lost([result]) else 0
        if strangers or distinct < expected:
            raise AssertionError(f"{variant}, {load}: page views of {distinct} visitors ({strangers} not "
                                 f"seeded), expected {expected}: the cookies were not recognised")
        if result["views"] > served + CONNECTIONS:
            raise AssertionError(f"{variant}, {load}: {result['views']} page views logged for {served} pages")
        return result


def _lost(runs: list[dict[str, Any]]) -> int:
    """Page views and impressions of the pages served that were not logged, over ``runs``
    (requests in flight when wrk stopped may be logged without being counted as served:
    never negative per run). A page served without a decision (``undecided``: the server's
    own count of pages that failed open under overload or past the time budget) showed no
    widget, so it has no impression to log; those pages are reported, not counted lost."""
    return sum(max(0, r["requests"] - r["views"]) + max(0, r["requests"] - r.get("undecided", 0) - r["impressions"])
               for r in runs)


def _page_rows(runs: dict[tuple[str, str], list[dict[str, Any]]], seconds: int) -> list[dict[str, Any]]:
    rows = []
    cores = os.cpu_count()
    for load in LOADS:
        bare = statistics.median(r["rps"] for r in runs[("bare", load)])
        for variant, label in (("segmint", "folded in the serving process (embedded)"),
                               ("segmint + fold", "compactor in its own process (segmint fold --follow)")):
            figure = f"pipeline, 20 KB HTML page with its events folded, {label}, {load} [wrk, c={CONNECTIONS}]"
            target = f">= {FOLDED_TARGET:g}x bare"
            if (variant, load) not in runs:
                rows.append(unavailable(figure, "req/s", target, "the store has no compact() to run "
                                        "`segmint fold --follow` with"))
                continue
            ours = runs[(variant, load)]
            folded = statistics.median(r["requests"] / (seconds + r["drain"]) for r in ours)
            lost = _lost(ours)
            ratio = folded / bare
            rows.append(row(figure, folded, "bare app", bare, ratio, "req/s", target,
                            ratio >= FOLDED_TARGET and lost == 0 and all(r["folded"] for r in ours),
                            note=f"wrk alone: {statistics.median(r['rps'] for r in ours):,.0f} req/s; after each "
                                 f"{seconds} s run {statistics.median(r['drain'] for r in ours):.1f} s (median) "
                                 f"until folded; events lost: {lost}"))
        one, two = runs[("segmint", load)], runs[("segmint x2", load)]
        one_rps, two_rps = (statistics.median(r["rps"] for r in x) for x in (one, two))
        lost = _lost(two)
        rows.append(row(f"pipeline, N workers on one host: 2 uvicorn workers vs 1, {load} [wrk, c={CONNECTIONS}]",
                        two_rps, "one worker", one_rps, two_rps / one_rps, "req/s", f">= {WORKERS_TARGET:g}x",
                        two_rps / one_rps >= WORKERS_TARGET and lost == 0 and all(r["folded"] for r in two),
                        note=f"{cores} CPU cores here, shared by the workers, their event writers and wrk "
                             f"itself (1 thread), so 2x is out of reach on this host; events lost "
                             f"with 2 workers: {lost}"))
    return rows


def _sustained_rows(fleet: Fleet, load: str, seconds: int) -> list[dict[str, Any]]:
    result = fleet.run("segmint", load, seconds, drain_timeout=60.0, watch=True)
    served, lost = result["requests"], _lost([result])
    events = 2 * served  # a page view and an impression per page
    shed = result["shed"]
    note = (f"{served:,} pages served at {result['rps']:,.0f} req/s, {result['views']:,} page views and "
            f"{result['impressions']:,} impressions logged; pages served without a decision (failed open "
            f"under overload or past the time budget): {result.get('undecided', 0):,}; writer rejected + "
            f"dropped: {shed:,}; "
            f"events queued, sampled each second: at most {result['peak']:,}")
    figure = f"pipeline, sustained {seconds} s at full rate, one worker, {load}"
    return [
        row(f"{figure}: events shed", max(shed, lost), "page views and impressions of the pages served", events,
            max(shed, lost) / events, "events", "0 shed", shed == 0 and lost == 0, note=note),
        row(f"{figure}: seconds until folded after the load", result["drain"], "-", 0.0, 0.0, "s",
            f"<= {LAG_TARGET_S:g} s", result["folded"] and result["drain"] <= LAG_TARGET_S,
            **({} if result["folded"] else {"note": "never got there: events were shed, or still queued "
                                                    "after 60 s"})),
    ]


def _servers(tmp: Path, quick: bool) -> list[dict[str, Any]]:
    seconds, rounds = (2, 1) if quick else (4, 2)
    sustained = 10 if quick else 60
    fleet = Fleet(tmp)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        fleet.start()
        fleet.verify()
        before = {variant: counts.profiles() for variant, counts in fleet.counts.items()}
        for variant in fleet.servers:  # warm-up: imports, thread pools, every visitor's profile cached
            fleet.run(variant, LOADS[1], 3, drain_timeout=60.0)
        variants = list(fleet.servers)
        for r in range(rounds):
            for load in LOADS:
                order = variants[r % len(variants):] + variants[:r % len(variants)]
                for variant in order:
                    runs.setdefault((variant, load), []).append(fleet.run(variant, load, seconds, drain_timeout=60.0))
        rows = _page_rows(runs, seconds)
        for load in LOADS:
            rows += _sustained_rows(fleet, load, sustained)
        for variant, counts in fleet.counts.items():
            if counts.profiles() != before[variant]:
                raise AssertionError(f"{variant}: {counts.profiles() - before[variant]} new profiles: some "
                                     f"requests were not recognised as returning visitors")
    finally:
        fleet.stop()
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="segmint-bench-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        rows += _compaction(tmp, 20_000 if quick else 100_000)
        rows += _cold_read(tmp, 1000 if quick else 5000, rounds=6 if quick else 20)
        rows += _servers(tmp, quick)
    return rows


if __name__ == "__main__":
    from .bench_profiles import _print_rows

    _print_rows(run("--quick" in sys.argv))
