"""SIGKILL mid-batch: every order the intake acknowledged with 2xx survives, counted once.

A real uvicorn process takes batches of orders from several posting threads and is killed at
a random moment. After a restart on the same SQLite file, every acknowledged order is in the
store, each customer's profile counts exactly the orders stored for them, and re-sending
everything is answered as duplicates (the shop's retry is safe).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from segmint.engine.stores import SQLiteStore

pytestmark = [pytest.mark.server, pytest.mark.slow]

THREADS = 4
BATCH = 20
CUSTOMERS = 30


def post_until_dead(url: str, worker: int, acked: list[str], stop: threading.Event, rel: Any) -> None:
    with httpx.Client(base_url=url, headers=rel.AUTH, timeout=10) as client:
        for batch_no in range(10_000):
            if stop.is_set():
                return
            ids = [f"w{worker}-b{batch_no}-{i}" for i in range(BATCH)]
            events = [rel.order(oid, f"cust-{hash(oid) % CUSTOMERS}", price=1.0) for oid in ids]
            try:
                response = client.post("/_segmint/events", json=events)
            except httpx.HTTPError:
                return  # the server is gone: whatever was not acknowledged may be lost
            if 200 <= response.status_code < 300:
                assert response.json()["stored"] == BATCH
                acked.extend(ids)


def stored_orders(db: str) -> tuple[set[str], Counter[str], dict[str, int]]:
    """Order ids and per-customer counts in the event log; each profile's order count."""
    store = SQLiteStore(db)
    try:
        ids: set[str] = set()
        per_customer: Counter[str] = Counter()
        for event in store.iter_events(types=("order",)):
            assert event.order_id not in ids, f"order {event.order_id} logged twice"
            ids.add(event.order_id)
            per_customer[event.customer_id] += 1
        profiles = {p.customer_id: p.orders for p in store.iter_profiles() if p.customer_id}
        return ids, per_customer, profiles
    finally:
        store.close()


def test_acknowledged_orders_survive_sigkill(rel: Any, tmp_path: Any):
    config = rel.write_config(tmp_path)
    server = rel.Server(config, tmp_path / "server.log").start()
    acked: list[str] = []
    stop = threading.Event()
    workers = [threading.Thread(target=post_until_dead, args=(server.url, n, acked, stop, rel)) for n in range(THREADS)]
    try:
        for worker in workers:
            worker.start()
        assert rel.wait_until(lambda: len(acked) >= 5 * BATCH, 30)  # it is really taking orders
        time.sleep(random.uniform(0.1, 1.0))  # then a random moment, mid-batch for some thread
        server.kill()
    finally:
        stop.set()
        server.kill()
        for worker in workers:
            worker.join(30)
    assert acked

    ids, per_customer, profiles = stored_orders(str(tmp_path / "segmint.db"))
    assert set(acked) <= ids  # nothing acknowledged is lost
    assert profiles == dict(per_customer)  # folded exactly once: profiles agree with the log

    restarted = rel.Server(config, tmp_path / "server2.log").start()
    try:
        with httpx.Client(base_url=restarted.url, headers=rel.AUTH, timeout=30) as client:
            replay = [rel.order(oid, f"cust-{hash(oid) % CUSTOMERS}", price=1.0) for oid in acked[:500]]
            answer = client.post("/_segmint/events", json=replay).json()
        assert answer == {"stored": 0, "duplicates": len(replay), "rejected": []}
    finally:
        restarted.stop()
    assert stored_orders(str(tmp_path / "segmint.db"))[0] == ids
