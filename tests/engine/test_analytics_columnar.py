"""The report's readers give the same report on the same events: the store's log read in Python
and DuckDB's columnar projection (identity merges, late events, the checkpointed refresh,
erasure); the projection keeps up with the log and forgets what the log forgets."""

import logging
import random
import shutil
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.analytics import EXPOSURES, AnalyticsConfig, attribution_log, build_report
from segmint.engine.analytics import checkpoint as checkpoint_module
from segmint.engine.analytics import columnar
from segmint.engine.analytics.eventlog import SQLiteAttributionLog
from segmint.engine.errors import ConfigError
from segmint.engine.events import Click, Identify, Impression, Order, OrderItem, PageView
from segmint.engine.stores import MemoryStore, SQLiteStore

duckdb = pytest.importorskip("duckdb")

UTC = timezone.utc
T0 = datetime(2026, 2, 1, tzinfo=UTC)
PYTHON, DUCKDB = AnalyticsConfig(reader="python"), AnalyticsConfig(reader="duckdb")
SKUS = [f"s{k}" for k in range(30)]


def day(n):
    return T0 + timedelta(days=n)


def traffic(seed, first_day, days, n=3000, visitors=150):
    """Shop traffic: each visitor sticks to one campaign and variant (as bucketing does), so runs
    of impressions fold; some log in (some on two devices), click without a variant, buy."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        at = day(first_day + rng.random() * days)
        number = rng.randrange(visitors)
        visitor, campaign = f"v{number}", ("winback", "bundle")[number % 2]
        variant = ("A", "B", "control")[number // 2 % 3]
        roll = rng.random()
        if roll < 0.7:
            skus = [] if variant == "control" else rng.sample(SKUS, 3)
            events.append(Impression(campaign=campaign, variant=variant, skus=skus, visitor_id=visitor, at=at))
        elif roll < 0.78:
            events.append(Click(campaign=campaign, variant=variant if roll < 0.77 else None,
                                skus=[rng.choice(SKUS)], visitor_id=visitor, at=at))
        elif roll < 0.9:
            items = [OrderItem(sku=rng.choice(SKUS), price=float(rng.randrange(5, 50)), quantity=rng.randrange(1, 3))
                     for _ in range(rng.randrange(1, 3))]
            who = {"customer_id": f"c{number // 3}"} if roll < 0.8 else {"visitor_id": visitor}
            events.append(Order(order_id=f"o{seed}-{i}", at=at, items=items, **who))
        elif roll < 0.91 and number % 5 == 0:
            events.append(Identify(visitor_id=visitor, customer_id=f"c{number // 3}", at=at))
        else:
            events.append(PageView(path="/", visitor_id=visitor, at=at))
    return events


def figures(report):
    data = report.to_dict()
    data.pop("generated_at")
    data["analysis"].pop("reader")
    return data


def both(store, **options):
    """The report read in Python and through the projection: asserted equal, returned."""
    python = build_report(store, analysis=PYTHON, **options)
    columnar_ = build_report(store, analysis=DUCKDB, **options)
    assert figures(columnar_) == figures(python)
    return python


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(str(tmp_path / "events.db"))
    yield s
    s.close()


def projected(store, sql, *args):
    with duckdb.connect(columnar.projection_path(store.path)) as duck:
        return duck.execute(sql, args).fetchall()


def test_both_readers_give_the_same_report_and_the_projection_folds_impressions(store):
    store.append(traffic(1, 0, 10))
    report = both(store, now=day(10), checkpoint=False)
    assert report.attributed_orders and report.campaigns[0].multi_arm_visitors >= 0
    assert sum(t.visitors for c in report.campaigns for t in c.variants) > 50
    rows = list(attribution_log(store, "duckdb").attribution_rows(since=None, until=day(10).timestamp(),
                                                                  batch_size=1000, window=7 * 86400.0))
    folded = [event.count for _, kind, event in rows if kind == EXPOSURES]
    assert max(folded) > 1 and len(rows) < 0.7 * report.events  # fewer rows, the same report
    both(store, now=day(10), checkpoint=False, campaign="bundle", window_days=2)
    both(store, now=day(10), checkpoint=False, since=day(3))


def devices(seed, n=4000, customers=12):
    """Logged-in shoppers on several devices: each device (visitor) keeps one campaign and
    variant, several devices log in as one customer (some as two customers), the customer
    orders by id alone, and the devices' impressions interleave with each other's."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        at = day(rng.random() * 12)
        number = rng.randrange(customers * 4)
        visitor, customer = f"d{number}", f"c{number % customers}"
        variant = ("A", "B")[number // customers % 2]
        roll = rng.random()
        if roll < 0.75:
            events.append(Impression(campaign="winback", variant=variant, skus=rng.sample(SKUS, 2),
                                     visitor_id=visitor, at=at))
        elif roll < 0.82:
            events.append(Click(campaign="winback", variant=variant, skus=[rng.choice(SKUS)], visitor_id=visitor, at=at))
        elif roll < 0.9:
            events.append(Order(order_id=f"o{seed}-{i}", customer_id=customer, at=at,
                                items=[OrderItem(sku=rng.choice(SKUS), price=float(rng.randrange(5, 50)))]))
        elif roll < 0.95 or number % customers:
            events.append(Identify(visitor_id=visitor, customer_id=customer, at=at))
        else:  # this device also logs in as someone else (a shared computer)
            events.append(Identify(visitor_id=visitor, customer_id=f"c{(number + 1) % customers}", at=at))
    return events


def test_logged_in_visitors_impressions_fold_and_agree(store, monkeypatch):
    """A visitor linked to one customer folds like an anonymous one (the person is the customer:
    nothing of the customer's other devices falls inside a fold); one linked to two customers,
    and the devices of those, do not fold. The report is the same as the Python reader's."""
    monkeypatch.setattr(checkpoint_module, "MIN_EVENTS", 1)
    store.append(devices(1))
    store.append([Identify(visitor_id="solo", customer_id="c-solo", at=day(0))]
                 + [Impression(campaign="winback", variant="A", visitor_id="solo", at=day(1 + k / 10))
                    for k in range(5)])
    for mine, other in (("x1", "x2"), ("x2", "x1")):
        # A shared device logs in as x1, then x2 (and one the other way) and buys s2 between two
        # impressions of the customer's phone: the later one's s2 is not yet shown then.
        store.append([Identify(visitor_id=f"phone-{mine}", customer_id=mine, at=day(0)),
                      Impression(campaign="bundle", variant="A", skus=["s1"], visitor_id=f"phone-{mine}", at=day(1)),
                      Identify(visitor_id=f"shared-{mine}", customer_id=other, at=day(0.5)),
                      Identify(visitor_id=f"shared-{mine}", customer_id=mine, at=day(1.5)),
                      Order(order_id=f"on-{mine}", visitor_id=f"shared-{mine}", at=day(2),
                            items=[OrderItem(sku="s2", price=10.0)]),
                      Impression(campaign="bundle", variant="A", skus=["s2"], visitor_id=f"phone-{mine}", at=day(3))])
    for options in ({}, {"window_days": 0.5}, {"since": day(4)}):
        both(store, now=day(10), checkpoint=False, **options)
    bundle = both(store, now=day(10), checkpoint=False, campaign="bundle").campaigns[0].variants[0]
    assert (bundle.orders, bundle.recommended_revenue) == (2, 0.0)
    rows = list(attribution_log(store, "duckdb").attribution_rows(since=None, until=day(10).timestamp(),
                                                                  batch_size=1000, window=7 * 86400.0))
    folded = {event.visitor_id: event.count for _, kind, event in rows if kind == EXPOSURES}
    assert folded["solo"] == 5
    devices_ = [v for v in folded if v.startswith("d")]
    assert not [v for v in devices_ if int(v[1:]) % 12 in (0, 1)] and "phone-x1" not in folded  # a shared device
    assert devices_  # the devices of customers on one device only fold
    both(store, now=day(10))  # saves the state
    store.append(devices(2, n=800))  # more traffic, some of it logged late
    both(store, now=day(13))


def test_people_whose_hashes_collide_share_a_partition_and_the_report_stays_exact(store, monkeypatch):
    """The read partitions by a 64-bit hash of the person; when two people's hashes collide
    (forced here: every person hashes the same), their events interleave in one partition, which
    may split folds but never joins two people's: the report is still the Python reader's."""
    store.append(traffic(3, 0, 10) + devices(4, n=1500))
    honest = list(attribution_log(store, "duckdb").attribution_rows(
        since=None, until=day(10).timestamp(), batch_size=1000, window=7 * 86400.0))
    assert "hash(coalesce(p.person" in columnar._READ
    monkeypatch.setattr(columnar, "_READ", columnar._READ.replace("hash(coalesce(p.person", "0 * hash(coalesce(p.person"))
    collided = list(attribution_log(store, "duckdb").attribution_rows(
        since=None, until=day(10).timestamp(), batch_size=1000, window=7 * 86400.0))
    assert len(collided) > len(honest)  # folds were split where others' events fell between
    assert sum(event.count for _, kind, event in collided if kind == EXPOSURES) == sum(
        event.count for _, kind, event in honest if kind == EXPOSURES)
    both(store, now=day(10), checkpoint=False)
    both(store, now=day(10), checkpoint=False, window_days=0.5)


def test_a_read_in_time_slices_gives_the_same_report_and_stops_with_its_reader(store, monkeypatch):
    """A long read is cut into slices (DuckDB computes the next while the pass folds one): a
    run across a cut is two rows, the report the same; a reader that stops early (the report's
    ``until``, an error) stops the slices' thread too."""
    import threading

    store.append(traffic(1, 0, 10))
    store.append(devices(3, n=1000))
    whole = both(store, now=day(12), checkpoint=False)
    rows = list(attribution_log(store, "duckdb").attribution_rows(since=None, until=day(12).timestamp(),
                                                                  batch_size=100, window=7 * 86400.0))
    monkeypatch.setattr(columnar, "SLICE_EVENTS", 300)
    sliced = list(attribution_log(store, "duckdb").attribution_rows(since=None, until=day(12).timestamp(),
                                                                    batch_size=100, window=7 * 86400.0))
    assert len(sliced) > len(rows)  # runs cut at the slices' edges
    assert [(at, kind) for at, kind, _ in sliced if kind != EXPOSURES] == [
        (at, kind) for at, kind, _ in rows if kind != EXPOSURES]
    assert figures(build_report(store, now=day(12), checkpoint=False, analysis=DUCKDB)) == figures(whole)
    assert figures(build_report(store, now=day(12), checkpoint=False, analysis=DUCKDB, since=day(2))) == figures(
        build_report(store, now=day(12), checkpoint=False, analysis=PYTHON, since=day(2)))
    reading = attribution_log(store, "duckdb").attribution_rows(since=None, until=day(12).timestamp(),
                                                                batch_size=10, window=7 * 86400.0)
    next(reading)
    reading.close()  # the producer was blocked on a full queue
    assert not [t for t in threading.enumerate() if t.name == "segmint-report-projection"]


def test_late_events_and_the_checkpointed_refresh_agree(store, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "MIN_EVENTS", 1)
    store.append(traffic(1, 0, 10))
    both(store, now=day(10))          # saves the state (the Python reader's, then the same again)
    store.append(traffic(2, 8, 6))     # new events, some logged late (before the end of the first)
    store.append(traffic(3, 0.5, 1))  # a backfill: voids the saved state
    refreshed = both(store, now=day(15))
    assert figures(refreshed) == figures(build_report(store, now=day(15), checkpoint=False, analysis=PYTHON))
    store.append(traffic(4, 15, 2))
    both(store, now=day(18))          # resumes the state the last report saved


def test_erasure_leaves_the_projection_before_any_report_reads_it(store):
    store.append(traffic(1, 0, 10))
    store.append([Identify(visitor_id="v5", customer_id="c1", at=day(9))])
    both(store, now=day(10), checkpoint=False)
    assert projected(store, "SELECT count(*) FROM events WHERE visitor = 'v5' OR customer = 'c1'")[0][0] > 0
    gone = store.forget(customer_id="c1")  # v5 logged in as c1: both keys go
    assert "v5" in gone.visitor_ids and gone.events
    report = both(store, now=day(10), checkpoint=False)
    assert projected(store, "SELECT count(*) FROM events WHERE visitor = 'v5' OR customer = 'c1'") == [(0,)]
    assert report.orders == sum(1 for e in store.iter_events(types=("order",)))


def test_forgetting_a_person_drops_their_events_from_the_projection_at_once(store):
    """``forget_person`` (``segmint forget``, ``DELETE {prefix}/profiles``): the projection file
    holds none of the person's events right after, no report needed; the rest stays."""
    from segmint.engine.privacy import forget_person

    store.append(traffic(1, 0, 10))
    both(store, now=day(10), checkpoint=False)
    person = "SELECT count(*) FROM events WHERE visitor = 'v7'"
    before, total = projected(store, person)[0][0], projected(store, "SELECT count(*) FROM events")[0][0]
    assert before > 0
    gone = forget_person(store, visitor_id="v7")
    assert projected(store, person) == [(0,)]
    assert projected(store, "SELECT count(*) FROM events")[0][0] == total - before == total - len(
        [e for e in gone.events if type(e).__name__ in ("Impression", "Click", "Order", "Identify")])
    both(store, now=day(10), checkpoint=False)  # and the next report agrees with the Python reader


def test_an_event_that_reuses_an_erased_id_is_projected(store):
    store.append(traffic(1, 0, 10))
    store.append([Impression(campaign="bundle", variant="B", skus=["s1"], visitor_id="last", at=day(9))])
    both(store, now=day(10), checkpoint=False)
    store.forget(visitor_id="last")  # the log's newest row: SQLite gives its id to the next event
    store.append([Impression(campaign="bundle", variant="B", skus=["s2"], visitor_id="next", at=day(9)),
                  Order(order_id="late", visitor_id="next", at=day(9.5), items=[OrderItem(sku="s2", price=7.0)])])
    report = both(store, now=day(10), checkpoint=False)
    assert projected(store, "SELECT count(*) FROM events WHERE visitor = 'last'") == [(0,)]
    assert projected(store, "SELECT count(*) FROM events WHERE visitor = 'next'") == [(2,)]
    assert any(v.variant == "B" and v.recommended_revenue >= 7.0 for c in report.campaigns if c.campaign == "bundle"
               for v in c.variants)


def test_a_projection_of_another_file_is_rebuilt(store, tmp_path):
    other = SQLiteStore(str(tmp_path / "other.db"))
    other.append(traffic(9, 0, 5))
    build_report(other, now=day(10), analysis=DUCKDB, checkpoint=False)
    other.close()
    shutil.copy(columnar.projection_path(other.path), columnar.projection_path(store.path))
    store.append(traffic(1, 0, 10))
    both(store, now=day(10), checkpoint=False)
    assert projected(store, "SELECT count(*) FROM events WHERE id > 0")[0][0] == sum(
        1 for _ in store.iter_events(types=("impression", "click", "order", "identify")))


class LockHolder:
    """Another process holding DuckDB's lock on a file for ``seconds``."""

    def __init__(self, path, seconds):
        code = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); " \
               "time.sleep(float(sys.argv[2]))"
        self.process = subprocess.Popen([sys.executable, "-c", code, path, str(seconds)], stdout=subprocess.PIPE)
        assert self.process.stdout.readline().strip() == b"ready"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def test_a_projection_in_use_elsewhere_or_damaged_falls_back_to_the_python_reader(store, monkeypatch, caplog):
    store.append(traffic(1, 0, 10))
    monkeypatch.setattr(columnar, "LOCK_WAIT_SECONDS", 0.3)
    with LockHolder(columnar.projection_path(store.path), 60), caplog.at_level(logging.WARNING, "segmint.analytics"):
        report = build_report(store, now=day(10), checkpoint=False, analysis=DUCKDB)
    assert "cannot be read" in caplog.text
    assert figures(report) == figures(build_report(store, now=day(10), checkpoint=False, analysis=PYTHON))
    with open(columnar.projection_path(store.path), "wb") as damaged:
        damaged.write(b"not a duckdb file" * 1000)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "segmint.analytics"):
        report = build_report(store, now=day(10), checkpoint=False, analysis=DUCKDB)
    assert "cannot be read" in caplog.text
    assert figures(report) == figures(build_report(store, now=day(10), checkpoint=False, analysis=PYTHON))


def test_duckdb_without_the_extra_is_a_config_error_naming_it(store, monkeypatch):
    monkeypatch.setattr(columnar, "duckdb_available", lambda: False)
    with pytest.raises(ConfigError, match=r'pip install "segmint\[analytics\]"') as caught:
        build_report(store, now=day(1), analysis=DUCKDB)
    assert caught.value.path == "$.analytics.reader"
    assert isinstance(attribution_log(store, "auto"), SQLiteAttributionLog)  # auto: the Python reader


def test_duckdb_on_another_store_reads_it_in_python_and_says_so(caplog):
    memory = MemoryStore()
    memory.append(traffic(1, 0, 2, n=200))
    with caplog.at_level(logging.WARNING, "segmint.analytics"):
        duck = build_report(memory, now=day(3), analysis=DUCKDB)
    assert "SQLite store file" in caplog.text
    auto = build_report(memory, now=day(3), analysis=AnalyticsConfig(reader="auto"))
    assert figures(duck) == figures(auto) == figures(build_report(memory, now=day(3), analysis=PYTHON))


def test_a_report_waits_for_a_projection_another_process_holds_briefly(store, caplog):
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10), checkpoint=False, analysis=DUCKDB)  # builds the projection
    with LockHolder(columnar.projection_path(store.path), 0.5), caplog.at_level(logging.WARNING, "segmint.analytics"):
        report = build_report(store, now=day(10), checkpoint=False, analysis=DUCKDB)
    assert "cannot be read" not in caplog.text  # it waited for the lock (LOCK_WAIT_SECONDS)
    assert figures(report) == figures(build_report(store, now=day(10), checkpoint=False, analysis=PYTHON))


def projected_to(store):
    with duckdb.connect(columnar.projection_path(store.path)) as duck:
        return duck.execute("SELECT projected_to FROM projection").fetchone()[0]


def test_the_compactor_keeps_an_existing_projection_current(store, monkeypatch):
    """``keep_up`` (the compactor's turn) appends what was logged since, so a report finds
    nothing to append; it builds no projection (the first report does) and skips its turn
    while another process holds the file."""
    projection = columnar.ColumnarLog(store.path)
    store.append(traffic(1, 0, 5))
    assert projection.keep_up() is None and not os.path.exists(columnar.projection_path(store.path))
    build_report(store, now=day(5), checkpoint=False, analysis=DUCKDB)
    logged = store.event_fingerprint(float("inf"))[1]  # the newest log id
    assert projected_to(store) == logged
    store.append(traffic(2, 5, 5))
    newer = sum(1 for e in store.iter_events(since=day(5), types=("impression", "click", "order", "identify")))
    with LockHolder(columnar.projection_path(store.path), 60):
        assert projection.keep_up() is None  # a report elsewhere holds it: the next turn catches up
    monkeypatch.setattr(columnar, "SYNC_CHUNK", 50)
    assert projection.keep_up(limit=50) == 50  # a turn appends its limit (in whole reads of SYNC_CHUNK)
    assert projected_to(store) < store.event_fingerprint(float("inf"))[1]
    assert projection.keep_up() == newer - 50 and projected_to(store) == store.event_fingerprint(float("inf"))[1]
    appended = []
    original = columnar.ColumnarLog._append
    monkeypatch.setattr(columnar.ColumnarLog, "_append",
                        lambda self, duck, rows: appended.append(len(rows)) or original(self, duck, rows))
    report = build_report(store, now=day(11), checkpoint=False, analysis=DUCKDB)
    assert sum(appended) == 0
    assert figures(report) == figures(build_report(store, now=day(11), checkpoint=False, analysis=PYTHON))


@pytest.mark.parametrize("reader", ["duckdb", "python"])
def test_the_runtime_keeps_the_projection_current_when_reports_read_through_duckdb(tmp_path, reader):
    from segmint.engine.analytics.columnar import kept_projection
    from segmint.engine.runtime import Segmint

    fx = sys.modules["segmint_tests_fixtures"]
    config = fx.write_config(tmp_path, catalog=[fx.BIG_TV], skus=[fx.BIG_TV["sku"]])
    config.write_text(config.read_text() + f'\n[analytics]\nreader = "{reader}"\n')
    runtime = Segmint.from_config(config, watch=False)
    try:
        store = runtime.store
        assert runtime.keep_report_projection_current() is None  # no projection yet
        store.append(traffic(1, 0, 5, n=300))
        build_report(store, now=day(5), checkpoint=False, analysis=DUCKDB)
        store.append(traffic(2, 5, 5, n=300))
        kept = runtime.keep_report_projection_current()
        if reader == "duckdb":
            assert kept and projected_to(store) == store.event_fingerprint(float("inf"))[1]
        else:
            assert kept is None and projected_to(store) < store.event_fingerprint(float("inf"))[1]
        # A compactor of its own (segmint fold --follow) holds the lock: it keeps the projection.
        elsewhere = SQLiteStore(store.path)
        try:
            with elsewhere.compactor_lock(wait=True):
                store.append(traffic(3, 10, 1, n=50))
                runtime.compact()
                assert runtime.keep_report_projection_current() is None
        finally:
            elsewhere.close()
        runtime.compact()
        assert (runtime.keep_report_projection_current() is not None) == (reader == "duckdb")
    finally:
        runtime.close()
    assert kept_projection(MemoryStore(), "duckdb") is None


def test_a_refresh_starts_reading_before_it_loads_the_saved_people(store, monkeypatch):
    """The read from the saved position starts (DuckDB computes on its own thread) before the
    saved state is loaded, and rows left unread are closed: no reading thread stays behind."""
    import threading

    monkeypatch.setattr(checkpoint_module, "MIN_EVENTS", 1)
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10), analysis=DUCKDB)
    store.append(traffic(2, 10, 2))
    order = []
    read, load = columnar.ColumnarLog.attribution_rows, checkpoint_module.ReportCheckpoint.load
    monkeypatch.setattr(columnar.ColumnarLog, "attribution_rows",
                        lambda self, **options: order.append("read") or read(self, **options))
    monkeypatch.setattr(checkpoint_module.ReportCheckpoint, "load",
                        lambda self, saved: order.append("load") or load(self, saved))
    report = build_report(store, now=day(13), analysis=DUCKDB)
    assert order[:2] == ["read", "load"]
    assert figures(report) == figures(build_report(store, now=day(13), checkpoint=False, analysis=PYTHON))
    rows = columnar.ColumnarLog(store.path).attribution_rows(since=None, until=day(13).timestamp(), batch_size=10)
    rows.close()  # never read
    assert not [t for t in threading.enumerate() if t.name == "segmint-report-projection"]


def test_a_failing_upkeep_is_counted_logged_once_and_leaves_the_runtime_running(tmp_path, monkeypatch, caplog):
    """Fail open: the projection's upkeep breaking (a damaged DuckDB file, a full disk) is
    counted in the runtime's failures (shown on /health), logged once a minute, and the next
    turn tries again; reports catch the projection up themselves or read in Python."""
    from segmint.engine.runtime import Segmint

    fx = sys.modules["segmint_tests_fixtures"]
    config = fx.write_config(tmp_path, catalog=[fx.BIG_TV], skus=[fx.BIG_TV["sku"]])
    config.write_text(config.read_text() + '\n[analytics]\nreader = "duckdb"\n')
    runtime = Segmint.from_config(config, watch=False)
    try:
        runtime.store.append(traffic(1, 0, 2, n=100))
        build_report(runtime.store, now=day(3), checkpoint=False, analysis=DUCKDB)

        def broken(self, limit=None):
            raise duckdb.IOException("No space left on device")
        monkeypatch.setattr(columnar.ColumnarLog, "keep_up", broken)
        with caplog.at_level(logging.WARNING, "segmint"):
            assert runtime.keep_report_projection_current() is None
            assert runtime.keep_report_projection_current() is None
        assert runtime.failures.counts()["report-projection"] == 2
        assert len([r for r in caplog.records if "No space left on device" in r.getMessage()]) == 1
        monkeypatch.undo()
        runtime.store.append(traffic(2, 2, 1, n=50))
        assert runtime.keep_report_projection_current()  # mended: the next turn catches up
    finally:
        runtime.close()
