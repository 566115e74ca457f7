"""Report checkpoints: a later report reads only the events after the saved state and gives
exactly the figures a full read gives; anything that could make it differ voids the state."""

import logging
import random
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.analytics import Attributor, AttributorState, attribute, build_report
from segmint.engine.analytics.attribution import RestingPart
from segmint.engine.analytics import checkpoint as checkpoint_module
from segmint.engine.analytics.checkpoint import SETTLE_SECONDS, ReportCheckpoint
from segmint.engine.events import Click, Identify, Impression, Order, OrderItem, PageView
from segmint.engine.stores import MemoryStore, SQLiteStore

UTC = timezone.utc
T0 = datetime(2026, 2, 1, tzinfo=UTC)
CAMPAIGNS = ("winback", "bundle")
VARIANTS = ("A", "B", "control")


def traffic(seed, first_day, days, n=1500):
    """Random shop traffic: impressions, clicks (some without a variant), orders, logins."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        at = T0 + timedelta(days=first_day + rng.random() * days)
        visitor = f"v{rng.randrange(120)}"
        campaign, variant = rng.choice(CAMPAIGNS), rng.choice(VARIANTS)
        roll = rng.random()
        if roll < 0.6:
            skus = [] if variant == "control" else rng.sample([f"s{k}" for k in range(12)], 3)
            events.append(Impression(campaign=campaign, variant=variant, skus=skus, visitor_id=visitor, at=at))
        elif roll < 0.72:
            events.append(Click(campaign=campaign, variant=variant if roll < 0.7 else None,
                                skus=[f"s{rng.randrange(12)}"], visitor_id=visitor, at=at))
        elif roll < 0.86:
            items = [OrderItem(sku=f"s{rng.randrange(12)}", price=float(rng.randrange(5, 50)))
                     for _ in range(rng.randrange(1, 3))]
            events.append(Order(order_id=f"o{seed}-{i}", visitor_id=visitor, at=at, items=items))
        elif roll < 0.9:
            events.append(Identify(visitor_id=visitor, customer_id=f"c{rng.randrange(60)}", at=at))
        else:
            events.append(PageView(path="/", visitor_id=visitor, at=at))
    return events


class Counting:
    """The store, counting the events reports read from it."""

    def __init__(self, store):
        self.store, self.read = store, 0

    def iter_events(self, **options):
        for event in self.store.iter_events(**options):
            self.read += 1
            yield event

    def __getattr__(self, name):
        return getattr(self.store, name)


def figures(report):
    data = report.to_dict()
    data.pop("generated_at")
    return data


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "MIN_EVENTS", 1)
    s = SQLiteStore(str(tmp_path / "events.db")) if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


def day(n):
    return T0 + timedelta(days=n)


def attribution_events_since(store, moment):
    return sum(1 for e in store.iter_events(types=("impression", "click", "order", "identify"))
               if e.at.timestamp() >= moment)


@pytest.mark.parametrize("sweep_every", [1024, 16])  # 16: people still encoded get swept too
def test_a_saved_state_continues_the_pass_exactly(sweep_every, monkeypatch):
    from segmint.engine.analytics import attribution

    monkeypatch.setattr(attribution, "_SWEEP_EVERY", sweep_every)
    events = sorted(traffic(1, 0, 20), key=lambda e: e.at)
    whole = attribute(events)
    for cut in (1, len(events) // 3, len(events) - 1):
        first = Attributor()
        first.feed_all(events[:cut])
        data = msgspec.msgpack.encode(first.state())
        resumed = Attributor.from_state(msgspec.msgpack.decode(data, type=AttributorState))
        middle = (cut + len(events)) // 2  # saved again halfway: some people still encoded
        resumed.feed_all(events[cut:middle])
        again = Attributor.from_state(msgspec.msgpack.decode(msgspec.msgpack.encode(resumed.state()),
                                                             type=AttributorState))
        again.feed_all(events[middle:])
        resumed.feed_all(events[middle:])
        assert resumed.result() == again.result() == whole
    assert whole.totals and whole.attributed_orders  # the traffic exercises attribution


def resting_parts(state, seed):
    """``state``'s people cut into parts of random sizes, their people left encoded, as a
    checkpoint loads them."""
    rng, keys, people, parts, i = random.Random(seed), state.people_keys, state.people, [], 0
    while i < len(keys):
        n = rng.randint(1, 9)
        parts.append(RestingPart(keys[i:i + n], msgspec.Raw(msgspec.msgpack.encode(people[i:i + n])), tag=i))
        i += n
    return parts


@pytest.mark.parametrize("sweep_every", [1024, 16])
@pytest.mark.parametrize("max_people", [2_000_000, 40])  # 40: the cap evicts resting people too
def test_a_state_resumed_from_resting_parts_continues_the_pass_exactly(sweep_every, max_people, monkeypatch):
    """People resumed in parts stay encoded and out of the tables until met (woken, swept or
    evicted oldest first, as if they had been in the table); saving again lists them in the
    same order, the untouched parts as they were."""
    from segmint.engine.analytics import attribution

    monkeypatch.setattr(attribution, "_SWEEP_EVERY", sweep_every)
    events = sorted(traffic(1, 0, 20) + traffic(3, 5, 20), key=lambda e: e.at)
    whole = Attributor(max_people=max_people)
    whole.feed_all(events)
    kept_somewhere = False
    for cut in (1, len(events) // 3, 2 * len(events) // 3):
        first = Attributor(max_people=max_people)
        first.feed_all(events[:cut])
        head = first.state(people=False)
        state = first.state()
        parts = resting_parts(state, cut)
        resumed = Attributor.from_state(head, resting=parts, max_people=max_people)
        assert resumed.state().people_keys == state.people_keys  # the same people, in the same order
        middle = (cut + len(events)) // 2
        resumed.feed_all(events[cut:middle])
        segments = resumed.people_segments()
        kept = [segment for segment in segments if segment.tag is not None]
        assert all(segment in parts for segment in kept)  # untouched parts are passed on as they are
        kept_somewhere = kept_somewhere or bool(kept)
        again_state = resumed.state()
        assert [k for segment in segments for k in segment.alive()[0]] == again_state.people_keys
        again = Attributor.from_state(resumed.state(people=False), resting=resting_parts(again_state, middle),
                                      max_people=max_people)
        again.feed_all(events[middle:])
        resumed.feed_all(events[middle:])
        assert resumed.result() == again.result() == whole.result()
    assert whole.result().totals and whole.result().attributed_orders and (kept_somewhere or max_people == 40)
    assert (whole.result().evicted_people > 0) == (max_people == 40)


def test_a_later_report_reads_only_the_new_events_and_agrees_with_a_full_read(store):
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10))  # saves the state at day 10 minus the settling time
    store.append(traffic(2, 10, 10))
    counting = Counting(store)
    report = build_report(counting, now=day(21))
    full = build_report(store, now=day(21), checkpoint=False)
    assert figures(report) == figures(full)
    assert counting.read == attribution_events_since(store, day(10).timestamp() - SETTLE_SECONDS)
    assert counting.read < attribution_events_since(store, 0) * 0.6


def test_an_event_logged_late_before_the_checkpoint_voids_it(store):
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10))
    store.append(traffic(2, 10, 5))
    store.append([Order(order_id="late", visitor_id="v3", at=day(4), items=[OrderItem(sku="s1", price=99.0)])])
    counting = Counting(store)
    report = build_report(counting, now=day(16))
    assert figures(report) == figures(build_report(store, now=day(16), checkpoint=False))
    assert counting.read == attribution_events_since(store, 0)  # the whole log, once
    counting.read = 0
    build_report(counting, now=day(16))  # the full read saved a fresh state
    assert counting.read == attribution_events_since(store, day(16).timestamp() - SETTLE_SECONDS)


def test_window_campaign_and_since_each_keep_their_own_state(store):
    store.append(traffic(1, 0, 10))
    kinds = [{}, {"campaign": "bundle"}, {"window_days": 2.0}, {"since": day(3)}]
    for options in kinds:
        build_report(store, now=day(10), **options)
    store.append(traffic(2, 10, 10))
    for options in kinds:
        assert figures(build_report(store, now=day(20), **options)) == \
            figures(build_report(store, now=day(20), checkpoint=False, **options))
    names = {ReportCheckpoint(store, window_days=o.get("window_days", 7.0), campaign=o.get("campaign"),
                              since=o.get("since")).meta_name for o in kinds}
    assert len(names) == len(kinds) and all(store.get_meta(name) for name in names)


def test_a_report_ending_before_the_checkpoint_reads_the_log_and_keeps_the_later_state(store):
    store.append(traffic(1, 0, 20))
    build_report(store, now=day(20))
    name = ReportCheckpoint(store, window_days=7.0, campaign=None, since=None).meta_name
    saved = store.get_meta(name)
    early = build_report(store, now=day(20), until=day(8))
    assert figures(early) == figures(build_report(store, now=day(20), until=day(8), checkpoint=False))
    assert store.get_meta(name) == saved


def test_fresh_reads_the_whole_log(store):
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10))
    counting = Counting(store)
    build_report(counting, now=day(11), fresh=True)
    assert counting.read == attribution_events_since(store, 0)


def test_an_unreadable_checkpoint_is_ignored_and_replaced(store, caplog):
    store.append(traffic(1, 0, 10))
    name = ReportCheckpoint(store, window_days=7.0, campaign=None, since=None).meta_name
    store.set_meta(name, b"\x93not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="segmint.analytics"):
        report = build_report(store, now=day(11))
    assert "unreadable" in caplog.text
    assert figures(report) == figures(build_report(store, now=day(11), checkpoint=False))
    assert store.get_meta(name) != b"\x93not a checkpoint"


def test_a_damaged_checkpoint_is_caught_before_resuming(store, caplog):
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10))
    name = ReportCheckpoint(store, window_days=7.0, campaign=None, since=None).meta_name
    blob = store.get_meta(name)
    head = bytes(checkpoint_module._decode_saved(blob).head)
    at = blob.index(head) + len(head) // 2
    store.set_meta(name, blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1:])  # one bit of the head
    store.append(traffic(2, 10, 5))
    counting = Counting(store)
    with caplog.at_level(logging.WARNING, logger="segmint.analytics"):
        report = build_report(counting, now=day(16))
    assert "digest" in caplog.text
    assert figures(report) == figures(build_report(store, now=day(16), checkpoint=False))
    assert counting.read == attribution_events_since(store, 0)


def test_a_store_that_cannot_save_still_gives_the_report(store, caplog):
    class ReadOnly(Counting):
        def set_meta(self, name, value):
            raise OSError("attempt to write a readonly database")

        def update_meta(self, values, delete=()):
            raise OSError("attempt to write a readonly database")

    store.append(traffic(1, 0, 10))
    with caplog.at_level(logging.WARNING, logger="segmint.analytics"):
        report = build_report(ReadOnly(store), now=day(11))
    assert "could not save the report state" in caplog.text
    assert figures(report) == figures(build_report(store, now=day(11), checkpoint=False))


def test_small_reports_save_nothing(tmp_path):
    store = SQLiteStore(str(tmp_path / "events.db"))
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10))  # far fewer events than MIN_EVENTS
    assert store.get_meta(ReportCheckpoint(store, window_days=7.0, campaign=None, since=None).meta_name) is None
    store.close()


def test_a_store_without_a_fingerprint_gets_no_checkpoint(monkeypatch):
    monkeypatch.setattr(checkpoint_module, "MIN_EVENTS", 1)

    class Plain:
        def __init__(self):
            self.inner, self.written = MemoryStore(), []

        def iter_events(self, **options):
            return self.inner.iter_events(**options)

        def get_meta(self, name):
            return None

        def set_meta(self, name, value):
            self.written.append(name)

    plain = Plain()
    plain.inner.append(traffic(1, 0, 10))
    report = build_report(plain, now=day(10))
    assert report.events and plain.written == []


class CountingWrites:
    """The store, noting each meta blob written and each write (a transaction)."""

    def __init__(self, store):
        self.store, self.written, self.writes = store, [], 0

    def set_meta(self, name, value):
        self.written.append(name)
        self.writes += 1
        self.store.set_meta(name, value)

    def update_meta(self, values, delete=()):
        self.written += values
        self.writes += 1
        self.store.update_meta(values, delete)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_refresh_writes_only_the_parts_of_people_it_met(store, monkeypatch):
    """The people are saved in parts cut by their keys: a refresh that meets a few people
    rewrites their parts and the head, keeps every other part as it was, and leaves no part
    that no checkpoint names; resumed from those parts, the figures are a full read's."""
    monkeypatch.setattr(checkpoint_module, "PART_BITS", 2)  # parts of ~4 people: many parts
    rng = random.Random(5)
    events = [Impression(campaign="winback", variant=rng.choice(VARIANTS), skus=["s1"], visitor_id=f"v{i}",
                         at=T0 + timedelta(minutes=i)) for i in range(400)]
    store.append(events)
    name = ReportCheckpoint(store, window_days=7.0, campaign=None, since=None).meta_name
    build_report(store, now=day(1))
    first = store.meta_names(name + "/")
    assert len(first) > 40
    # Later: the first three visitors come back and one buys; everyone else stays silent.
    store.append([Impression(campaign="winback", variant="A", skus=["s1"], visitor_id=f"v{i}",
                             at=day(2) + timedelta(minutes=i)) for i in range(3)]
                 + [Order(order_id="late-1", visitor_id="v1", at=day(2) + timedelta(hours=1),
                          items=[OrderItem(sku="s1", price=20.0)])])
    writes = CountingWrites(store)
    report = build_report(writes, now=day(3))
    assert figures(report) == figures(build_report(store, now=day(3), checkpoint=False))
    parts_written = [n for n in writes.written if n.startswith(name + "/")]
    assert name in writes.written and 0 < len(parts_written) <= 5  # the met people's parts, the last one
    assert writes.writes == 1  # parts, head and the deletion of replaced parts: one transaction
    named = {f"{name}/{ref.digest.hex()}" for ref in checkpoint_module._decode_saved(store.get_meta(name)).parts}
    assert set(store.meta_names(name + "/")) == named  # the replaced parts were deleted
    assert set(parts_written) <= named and len(set(first) & named) >= len(first) - 5
    # The state read back from the parts is the one the pass holds: resuming again gives the same.
    store.append([Impression(campaign="winback", variant="B", visitor_id="v9", at=day(4))])
    assert figures(build_report(store, now=day(5))) == figures(build_report(store, now=day(5), checkpoint=False))


def test_a_missing_or_damaged_part_makes_the_report_read_the_whole_log(store, caplog, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "PART_BITS", 3)
    store.append(traffic(1, 0, 10))
    build_report(store, now=day(10))
    name = ReportCheckpoint(store, window_days=7.0, campaign=None, since=None).meta_name
    parts = store.meta_names(name + "/")
    assert len(parts) > 3
    damaged = bytearray(store.get_meta(parts[1]))
    damaged[-3] ^= 0x01
    store.set_meta(parts[1], bytes(damaged))
    store.delete_meta(parts[2])
    store.append(traffic(2, 10, 2))
    counting = Counting(store)
    with caplog.at_level(logging.WARNING, logger="segmint.analytics"):
        report = build_report(counting, now=day(13))
    assert "inconsistent" in caplog.text and "part" in caplog.text
    assert figures(report) == figures(build_report(store, now=day(13), checkpoint=False))
    assert counting.read == attribution_events_since(store, 0)
    assert parts[2] not in store.meta_names(name + "/")


@pytest.mark.parametrize("when", ["reading", "writing"])
def test_a_person_erased_while_a_report_runs_is_not_saved_in_its_state(tmp_path, monkeypatch, when):
    """The pass read Ann before she was erased: the state it holds must not reach the store
    (the fingerprint taken before reading no longer matches), whether the erasure lands while
    the log is read or while the state is written."""
    from segmint.engine.analytics import attribution

    monkeypatch.setattr(checkpoint_module, "MIN_EVENTS", 1)
    store = SQLiteStore(str(tmp_path / "events.db"))
    store.append(traffic(1, 0, 10))
    store.append([Impression(campaign="winback", variant="B", skus=["s1"], visitor_id="ann-phone", at=day(5)),
                  Identify(visitor_id="ann-phone", customer_id="ann", at=day(5))])
    if when == "reading":
        feed = attribution.Attributor.feed_rows

        def feed_then_forget(self, rows, until=None):
            feed(self, rows, until)
            if store.load(customer_id="ann") is not None:
                store.forget(customer_id="ann")
        monkeypatch.setattr(attribution.Attributor, "feed_rows", feed_then_forget)
    else:
        update_meta = store.update_meta

        def write_then_forget(values, delete=()):
            update_meta(values, delete)
            if any("/" in name for name in values) and store.load(customer_id="ann") is not None:
                store.forget(customer_id="ann")
        monkeypatch.setattr(store, "update_meta", write_then_forget)
    build_report(store, now=day(11))
    assert store.load(customer_id="ann") is None  # erased during the report
    assert store.meta_names(checkpoint_module.REPORT_STATE_META_PREFIX) == []
    store.close()
