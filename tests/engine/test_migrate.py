"""``migrate``: SQLite -> Redis -> SQLite copies every profile, link, order id, event, meta."""

import random
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.errors import StoreError
from segmint.engine.events import CartLine, CartUpdate, Identify, Order, OrderItem, PageView, ProductView, Return, ReturnItem
from segmint.engine.stores import SQLiteStore
from segmint.engine.stores.migrate import migrate
from segmint.engine.stores.redis import RedisStore

pytestmark = pytest.mark.server
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def shop_history(seed=7, customers=12, visitors=30):
    """A few hundred mixed events: anonymous visits, identifies, orders, resent orders, returns."""
    rng = random.Random(seed)
    batches = []
    for n in range(40):
        batch = []
        for _ in range(rng.randint(1, 12)):
            at = T0 + timedelta(minutes=rng.randint(-5000, 5000))
            visitor, customer = f"v{rng.randrange(visitors)}", f"c{rng.randrange(customers)}"
            kind = rng.random()
            if kind < 0.35:
                batch.append(PageView(visitor_id=visitor, at=at, path=f"/p/{n}"))
            elif kind < 0.5:
                batch.append(ProductView(visitor_id=visitor, sku=f"s{rng.randrange(9)}", category="k", at=at))
            elif kind < 0.6:
                batch.append(CartUpdate(visitor_id=visitor, items=[CartLine(sku="s1", price=5.0)], at=at))
            elif kind < 0.7:
                batch.append(Identify(visitor_id=visitor, customer_id=customer, at=at))
            elif kind < 0.95:
                order_id = f"o{rng.randrange(150)}"  # collisions: resent orders are dropped
                batch.append(Order(order_id=order_id, customer_id=customer, at=at, items=[
                    OrderItem(sku=f"s{rng.randrange(9)}", category="k", quantity=rng.randint(1, 3),
                              price=rng.choice([9.5, 20.0, 35.0]))]))
            else:
                batch.append(Return(customer_id=customer, order_id="o1", at=at, items=[ReturnItem(sku="s1")]))
        batches.append(batch)
    return batches


def everything(store):
    return {
        "profiles": sorted((p.key, p) for p in store.iter_profiles(batch_size=5)),
        "events": list(store.iter_events(batch_size=6)),
        "visitors": {f"v{i}": store.load(visitor_id=f"v{i}") for i in range(30)},
        "meta": store.get_meta("rfm"),
        "count": store.count_profiles(),
    }


def test_sqlite_to_redis_to_sqlite_keeps_every_profile_event_link_and_order(tmp_path, redis_server):
    source = SQLiteStore(str(tmp_path / "shop.db"))
    for batch in shop_history():
        source.append(batch)
    source.set_meta("rfm", b"thresholds")
    expected = everything(source)
    assert expected["count"] > 20 and len(expected["events"]) > 150
    source.close()

    seen = []
    report = migrate(f"sqlite:///{tmp_path}/shop.db", redis_server.url, batch_size=7,
                     progress=lambda kind, done: seen.append((kind, done)))
    assert report.counts["profiles"] == expected["count"]
    assert report.counts["events"] == len(expected["events"])
    assert report.counts["meta"] == 1 and report.counts["links"] > 0 and report.counts["orders"] > 0
    assert ("events", 7) in seen and "copied" in str(report)

    redis = RedisStore(redis_server.url)
    assert everything(redis) == expected  # visitors resolve through the copied links
    # The order ids came along: a resent order is still a duplicate after the move.
    resent = next(e for e in expected["events"] if isinstance(e, Order))
    assert redis.append([resent]).duplicates == 1
    redis.close()

    report = migrate(redis_server.url, str(tmp_path / "back.db"), batch_size=5)
    back = SQLiteStore(str(tmp_path / "back.db"))
    assert report.counts["events"] == len(expected["events"])
    assert everything(back) == expected
    assert back.append([resent]).duplicates == 1
    back.close()


def test_the_target_must_be_empty(tmp_path, redis_server):
    path = str(tmp_path / "a.db")
    source = SQLiteStore(path)
    source.append([PageView(visitor_id="v1", at=T0)])
    source.close()
    migrate(path, redis_server.url)
    with pytest.raises(StoreError, match="target already holds"):
        migrate(path, redis_server.url)
    # another prefix in the same Redis is another (empty) store
    assert migrate(path, redis_server.url + "?prefix=copy:").counts["profiles"] == 1


def test_memory_stores_cannot_be_migrated(redis_server):
    with pytest.raises(StoreError, match="in-memory"):
        migrate(":memory:", redis_server.url)
    with pytest.raises(StoreError, match="between sqlite"):
        migrate("memory://", redis_server.url)


def test_the_cli_command_migrates_and_reports(tmp_path, redis_server, capsys):
    from segmint.middleware.cli import main

    path = str(tmp_path / "a.db")
    source = SQLiteStore(path)
    source.append([PageView(visitor_id="v1", at=T0), Identify(visitor_id="v1", customer_id="c1", at=T0)])
    source.close()
    assert main(["migrate", "--from", f"sqlite:///{path}", "--to", redis_server.url, "--json"]) == 0
    out = capsys.readouterr().out
    assert '"profiles": 1' in out and '"links": 1' in out and '"events": 2' in out
    assert main(["migrate", "--from", path, "--to", redis_server.url]) == 1
    assert "target already holds" in capsys.readouterr().err
