"""Starting the runtime later: a start that fails is retried when the files change (config and
catalog) or, for causes outside them (store, plugins), on a timer with back-off; logged once."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from segmint.engine.errors import ConfigError, PluginError, StoreError
from segmint.engine.runtime import Segmint
from segmint.engine.startup import RETRY_BACKOFF, RuntimeStarter

redis_helper = sys.modules["segmint_tests_fixtures"].redis_server  # tests/redis_server.py, via tests/fixtures.py

CATALOG = [{"sku": "serum-1", "name": "Glow Serum", "url": "/products/serum-1", "price": 30.0,
            "category": "skincare"}]

CONFIG = """\
{plugins}
[store]
{store}

[catalog]
path = "catalog.json"

[segments.big_spender]
filter = {{ "spend.total" = {{ "$gte" = 500 }} }}

[[campaigns]]
id = "default"
slots = ["home"]
strategy = "manual"
params = {{ skus = ["serum-1"] }}
"""


class Timer:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write_config(directory: Path, *, store: str = 'path = ":memory:"', plugins: str = "") -> Path:
    (directory / "catalog.json").write_text(json.dumps(CATALOG))
    path = directory / "segmint.toml"
    path.write_text(CONFIG.format(store=store, plugins=plugins))
    return path


def start(path: Path) -> Segmint:
    return Segmint.from_config(path, watch=False)


@pytest.fixture
def timer() -> Timer:
    return Timer()


@pytest.fixture
def starters() -> Any:
    made: list[RuntimeStarter] = []

    def make(path: Any, timer: Timer) -> RuntimeStarter:
        starter = RuntimeStarter(path, start=start, retry=False, timer=timer)
        made.append(starter)
        return starter

    yield make
    for starter in made:
        starter.close()


def test_a_good_config_starts_at_once(tmp_path: Path, timer: Timer, starters: Any):
    starter = starters(write_config(tmp_path), timer)
    assert starter.runtime is not None and starter.error is None and starter.attempts == 1
    assert len(starter.runtime.catalog) == 1


@pytest.mark.parametrize("damage", ["not json", "missing"])
def test_a_broken_catalog_waits_for_the_file_to_change_then_starts(tmp_path: Path, timer: Timer, starters: Any,
                                                                    damage: str, caplog: Any):
    path = write_config(tmp_path)
    catalog = tmp_path / "catalog.json"
    if damage == "missing":
        catalog.unlink()
    else:
        catalog.write_text("not json")
    with caplog.at_level(logging.ERROR, logger="segmint.startup"):
        starter = starters(path, timer)
        assert starter.runtime is None and isinstance(starter.error, ConfigError)
        assert str(catalog) in starter.cause
        assert starter.retry_in == RETRY_BACKOFF[0]
        timer.now += 1
        assert starter.poll() is False and starter.attempts == 1  # nothing changed, not due yet
        timer.now += starter.retry_in
        assert starter.poll() is False and starter.attempts == 2  # the timed retry: the same cause
    assert [r.getMessage().splitlines()[-1] for r in caplog.records] == [starter.cause]  # logged once
    catalog.write_text(json.dumps(CATALOG))
    assert starter.retry_in > 0 and starter.poll() is True  # a changed file: at once, not on the timer
    assert starter.attempts == 3 and starter.error is None and starter.cause is None
    assert len(starter.runtime.catalog) == 1


def test_a_filter_typo_is_logged_once_with_file_and_line_and_a_fix_starts(tmp_path: Path, timer: Timer,
                                                                          starters: Any, caplog: Any):
    path = write_config(tmp_path)
    good = path.read_text()
    path.write_text(good.replace('"spend.total"', '"spend.totl"'))
    with caplog.at_level(logging.ERROR, logger="segmint.startup"):
        starter = starters(path, timer)
        path.write_text(good.replace('"spend.total"', '"spend.totl"').replace("500", "600"))  # still broken
        assert starter.poll() is False and starter.attempts == 2
    assert starter.runtime is None
    assert f"{path.resolve()}:9: $.segments.big_spender.filter.spend.totl" in starter.cause
    assert "did you mean 'spend.total'" in starter.cause
    assert len(caplog.records) == 1  # the same cause again: not logged again
    assert starter.config is not None  # it decodes: the middleware knows the API prefix and token
    path.write_text(good)
    assert starter.poll() is True and starter.runtime.config.segments["big_spender"]


def test_an_unreadable_config_is_watched_too(tmp_path: Path, timer: Timer, starters: Any):
    path = tmp_path / "segmint.toml"
    starter = starters(path, timer)
    assert starter.runtime is None and starter.config is None
    assert starter.cause == f"{path}: $: cannot read config file: No such file or directory"
    write_config(tmp_path)
    assert starter.poll() is True


def test_an_unreachable_store_is_retried_with_back_off(tmp_path: Path, timer: Timer, starters: Any, caplog: Any):
    redis = redis_helper.RedisServer(redis_helper.require_redis_server())
    path = write_config(tmp_path, store=f'url = "redis://:hunter2hunter2@127.0.0.1:{redis.port}/0"')
    try:
        with caplog.at_level(logging.ERROR, logger="segmint.startup"):
            starter = starters(path, timer)
            assert isinstance(starter.error, StoreError) and "Connection refused" in starter.cause
            assert "hunter2" not in starter.cause  # the URL's password is never shown
            waits = []
            for _ in range(5):
                waits.append(starter.retry_in)
                timer.now += starter.retry_in - 0.1
                assert starter.poll() is False and starter.attempts == len(waits)  # not yet
                timer.now += 0.1
                assert starter.poll() is False and starter.attempts == len(waits) + 1
        assert waits == [*RETRY_BACKOFF, RETRY_BACKOFF[-1]] == [5.0, 10.0, 20.0, 30.0, 30.0]
        assert len(caplog.records) == 1 and "Connection refused" in caplog.records[0].getMessage()
        redis.start()
        timer.now += starter.retry_in
        assert starter.poll() is True and starter.runtime.store.url.startswith("redis://")
    finally:
        redis.cleanup()


def test_a_plugin_installed_later_is_found_on_the_next_timed_retry(tmp_path: Path, timer: Timer,
                                                                   starters: Any, monkeypatch: Any):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    path = write_config(tmp_path, plugins='plugins = ["segmint_late_plugin"]')
    starter = starters(path, timer)
    assert isinstance(starter.error, PluginError) and "segmint_late_plugin" in starter.cause
    (site / "segmint_late_plugin.py").write_text("SEGMINT_LATE = True\n")  # pip install, meanwhile
    timer.now += starter.retry_in
    try:
        assert starter.poll() is True
    finally:
        monkeypatch.delitem(sys.modules, "segmint_late_plugin", raising=False)


def test_a_strategy_plugin_package_installed_later_starts_segmint(tmp_path: Path, timer: Timer, starters: Any,
                                                                  monkeypatch: Any):
    # The config names a strategy that an entry-point plugin provides: not installed yet, the
    # config is invalid; installed (a module and its dist-info), the next timed retry starts.
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('strategy = "manual"', 'strategy = "late_pick"'))
    starter = starters(path, timer)
    assert isinstance(starter.error, ConfigError) and "late_pick" in starter.cause
    (site / "segmint_late_strategy.py").write_text(
        "from segmint.engine import hookimpl, StrategyParams\n"
        "class Params(StrategyParams, kw_only=True, frozen=True, forbid_unknown_fields=True):\n"
        "    skus: list[str] = []\n"
        "class LatePick:\n"
        "    name, Params = 'late_pick', Params\n"
        "    def recommend(self, ctx, params):\n"
        "        return list(ctx.catalog)\n"
        "@hookimpl\n"
        "def segmint_register_strategies():\n"
        "    return [LatePick()]\n")
    dist = site / "segmint_late_strategy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: segmint-late-strategy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[segmint]\nlate = segmint_late_strategy\n")
    timer.now += starter.retry_in
    try:
        assert starter.poll() is True, starter.cause
        slot = starter.runtime.decide(starter.runtime.profile(visitor_id="v"), ["home"]).slots["home"]
        assert slot.strategy == "late_pick" and slot.skus == ["serum-1"]
    finally:
        monkeypatch.delitem(sys.modules, "segmint_late_strategy", raising=False)


def test_closing_stops_retrying_and_closes_what_started(tmp_path: Path, timer: Timer):
    path = write_config(tmp_path)
    (tmp_path / "catalog.json").write_text("[")
    starter = RuntimeStarter(path, start=start, retry=False, timer=timer)
    starter.close()
    (tmp_path / "catalog.json").write_text(json.dumps(CATALOG))
    assert starter.poll() is False and starter.attempts == 1
    started = RuntimeStarter(write_config(tmp_path), start=start, retry=False, timer=timer)
    runtime = started.runtime
    started.close()
    assert started.runtime is None and runtime.writer.submit([]) is False  # closed: takes nothing


def test_the_background_thread_starts_the_runtime_when_the_file_is_mended(tmp_path: Path):
    import time

    path = write_config(tmp_path)
    (tmp_path / "catalog.json").write_text("{")
    starter = RuntimeStarter(path, start=start)
    try:
        assert starter.runtime is None
        (tmp_path / "catalog.json").write_text(json.dumps(CATALOG))
        deadline = time.monotonic() + 10
        while starter.runtime is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert starter.runtime is not None and starter.attempts == 2
    finally:
        starter.close()


def test_a_start_that_fails_after_opening_the_store_closes_it(tmp_path: Path, monkeypatch: Any):
    # Retried starts must not leak a connection (or the writer's thread) per attempt.
    import segmint.engine.runtime as runtime_module
    from segmint.engine.stores import MemoryStore

    class FailingStore(MemoryStore):
        closed = False

        def iter_events(self, **kwargs: Any) -> Any:
            raise StoreError("reading the event log failed", store="memory://")

        def close(self) -> None:
            self.closed = True
            super().close()

    opened: list[FailingStore] = []
    monkeypatch.setattr(runtime_module, "open_store", lambda *a, **k: opened.append(FailingStore()) or opened[-1])
    starter = RuntimeStarter(write_config(tmp_path), start=start, retry=False, timer=Timer())
    assert starter.runtime is None and "reading the event log failed" in starter.cause
    assert starter.retry_in == RETRY_BACKOFF[0]  # not a file's fault: retried on the timer
    assert [store.closed for store in opened] == [True]


def test_a_decoded_config_is_started_the_same_way(tmp_path: Path, timer: Timer, starters: Any):
    from segmint.engine.config import load_config

    config = load_config(write_config(tmp_path), validate=False)
    (tmp_path / "catalog.json").unlink()
    starter = starters(config, timer)  # no raise: the cause is kept, the catalog file watched
    assert starter.runtime is None and "cannot read catalog file" in starter.cause
    (tmp_path / "catalog.json").write_text(json.dumps(CATALOG))
    assert starter.poll() is True
