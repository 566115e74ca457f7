"""Several hosts on one Redis (issue #19 part 5): two app servers append concurrently while
two compactors fold the stream as one consumer group; one compactor is killed (SIGKILL) in
the middle of a batch, after it took entries and wrote their rows but before it acknowledged
them. The survivor, a real ``segmint fold --follow``, claims the dead one's entries after
``claim_idle`` and folds them: every profile equals its events folded in memory (nothing
lost, nothing counted twice) and nothing is left pending."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from segmint.engine.stores import MemoryStore
from segmint.engine.stores.redis import GROUP, RedisStore

pytestmark = pytest.mark.server

# The events of one app server, the same in the servers and in the test (executed in both).
EVENTS = textwrap.dedent("""
    import random
    from datetime import datetime, timedelta, timezone
    from segmint.engine.events import Identify, Order, OrderItem, PageView

    def server_batches(name, count):
        rng = random.Random(name)
        start = datetime(2025, 3, 1, tzinfo=timezone.utc)
        batches = []
        for i in range(count):
            customer = f"c{i % 5}"
            visitor = f"{name}-v{rng.randrange(20)}"
            at = start + timedelta(minutes=rng.randrange(-3000, 3000))  # late events: refolds
            items = [OrderItem(sku="s", quantity=1, price=1.0)]
            batch = [PageView(visitor_id=visitor, at=at, path=f"/{i}"),
                     Order(order_id=f"{name}-{i}", customer_id=customer, at=at, items=items),
                     # a retried webhook: both servers receive this very order
                     Order(order_id=f"both-{i}", customer_id=customer, at=start + timedelta(minutes=i), items=items)]
            if rng.random() < 0.15:  # a visitor always logs in as the same customer
                owner = f"c{int(visitor.rsplit('v', 1)[1]) % 5}"
                batch.append(Identify(visitor_id=visitor, customer_id=owner, at=at + timedelta(minutes=1)))
            batches.append(batch)
        return batches
""")

SERVER = EVENTS + textwrap.dedent("""
    import sys
    from segmint.engine.stores import open_store

    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url)
    batches = server_batches(name, count)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for batch in batches:
        store.append(batch)
    store.close()
""")

# A compactor that dies in the middle of a batch: it has taken entries from the group and
# written their rows when acknowledging them blocks it until the test kills it.
DYING_COMPACTOR = textwrap.dedent("""
    import sys, time
    from segmint.engine.stores import redis as redis_module

    store = redis_module.RedisStore(sys.argv[1])

    def xack(*args):
        print("mid-batch", store.consumer, flush=True)
        time.sleep(3600)

    store.client.xack = xack
    print("ready", flush=True)
    while True:
        store.compact(max_events=100)
        time.sleep(0.005)
""")


def expected_profiles(names, count):
    namespace = {}
    exec(EVENTS, namespace)
    memory = MemoryStore()
    for name in names:
        for batch in namespace["server_batches"](name, count):
            memory.append(batch)
    return {p.key: p for p in memory.iter_profiles()}, sum(1 for _ in memory.iter_events())


def test_two_servers_two_compactors_one_killed_mid_batch_nothing_lost_or_doubled(redis_server, tmp_path):
    url = redis_server.url + "?claim_idle=1"
    config = tmp_path / "segmint.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    count = 300
    dying = subprocess.Popen([sys.executable, "-c", DYING_COMPACTOR, url], stdout=subprocess.PIPE, text=True, env=env)
    survivor = subprocess.Popen([sys.executable, "-m", "segmint.middleware.cli", "fold", str(config), "--follow",
                                 "--interval", "0.05", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
    servers = [subprocess.Popen([sys.executable, "-c", SERVER, url, name, str(count)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env) for name in ("a", "b")]
    store = RedisStore(url)
    try:
        assert dying.stdout.readline() == "ready\n"
        for proc in servers:
            assert proc.stdout.readline() == "ready\n"
        for proc in servers:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        word, consumer = dying.stdout.readline().split()
        assert word == "mid-batch"
        dying.send_signal(signal.SIGKILL)
        dying.wait(timeout=10)
        taken = {c["name"].decode(): c["pending"] for c in store.client.xpending(store.stream, GROUP)["consumers"]}
        assert taken.get(consumer, 0) > 0  # the dead compactor held entries it never acknowledged
        for proc in servers:
            proc.communicate(timeout=120)
            assert proc.returncode == 0

        deadline = time.monotonic() + 60  # claim_idle is 1 s: the survivor claims them soon
        while store.compaction_position()[0] < store.compaction_position()[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        folded, logged = store.compaction_position()
        assert folded == logged and store.client.xpending(store.stream, GROUP)["pending"] == 0
        survivor.send_signal(signal.SIGINT)
        out, err = survivor.communicate(timeout=30)
        assert survivor.returncode == 0, err
        assert '"waiting": 0' in out

        expected, events = expected_profiles(("a", "b"), count)
        assert logged == events and sum(1 for _ in store.iter_events()) == events  # nothing lost
        rows = {}
        for key in store.client.zrange(f"{store.prefix}profiles", 0, -1):
            n, _ = store.client.hmget(f"{store.prefix}p:{key.decode()}", "n", "profile")
            rows[key.decode()] = int(n)
        assert rows == {key: store.client.llen(f"{store.prefix}k:{key}") for key in expected}  # all folded
        assert {p.key: p for p in store.iter_profiles()} == expected  # each event folded once
        for key, profile in expected.items():
            kind, name = key.split(":", 1)
            assert store.load(**{"customer_id" if kind == "c" else "visitor_id": name}) == profile
    finally:
        for proc in (dying, survivor, *servers):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        store.close()
