"""Hot reload: a valid change swaps the whole state at once; an invalid one keeps the last good."""

import logging
import os
import textwrap
import time
from pathlib import Path

import pytest

from segmint.engine.errors import ConfigError, SegmintError
from segmint.engine.config.reload import FileWatch
from segmint.engine.runtime import Segmint

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"

BASE = """
[store]
path = ":memory:"

[catalog]
path = "{catalog}"

[[campaigns]]
id = "{id}"
slots = ["home"]
strategy = "{strategy}"
title = "{title}"
"""


def write(path: Path, *, id="home", strategy="new_arrivals", title="Hello", catalog=CATALOG.as_posix()) -> None:
    path.write_text(textwrap.dedent(BASE).format(id=id, strategy=strategy, title=title, catalog=catalog))
    # Filesystems with coarse timestamps: make every write visible to (mtime, size) polling.
    stamp = time.time_ns() + len(path.read_bytes())
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "segmint.toml"
    write(path)
    return path


@pytest.fixture
def runtime(config_path):
    rt = Segmint.from_config(config_path, watch=False)
    yield rt
    rt.close()


def test_unchanged_file_does_not_reload(runtime, config_path):
    assert runtime.reload_if_changed() is False
    os.utime(config_path)  # touched, same content
    assert runtime.reload_if_changed() is False


def test_valid_change_swaps_config_campaigns_and_state_together(runtime, config_path):
    before = runtime.state
    write(config_path, id="home-v2", strategy="markdowns", title="Hello again")
    assert runtime.reload_if_changed() is True
    after = runtime.state
    assert after is not before
    assert [c.id for c in after.campaigns] == ["home-v2"]
    assert runtime.config is after.config and runtime.config.campaigns[0].title == "Hello again"
    assert runtime.pm is before.pm  # same plugin list: the plugin manager is kept
    slot = runtime.decide(runtime.profile(visitor_id="v"), ["home"]).slots["home"]
    assert (slot.campaign, slot.strategy, slot.title) == ("home-v2", "markdowns", "Hello again")
    assert all(p.compare_at_price and p.compare_at_price > p.price for p in slot.products)


def test_invalid_change_keeps_the_last_good_state_and_logs_once(runtime, config_path, caplog):
    good = runtime.state
    write(config_path, strategy="bestseller")  # typo
    with caplog.at_level(logging.ERROR, logger="segmint.reload"):
        assert runtime.reload_if_changed() is False
        os.utime(config_path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # same bad content
        assert runtime.reload_if_changed() is False
    assert runtime.state is good
    assert isinstance(runtime.last_reload_error, ConfigError)
    assert runtime.last_reload_error.problems[0].suggestion == "bestsellers"
    assert caplog.text.count("config reload failed") == 1
    write(config_path, id="fixed")
    assert runtime.reload_if_changed() is True
    assert runtime.last_reload_error is None
    assert [c.id for c in runtime.state.campaigns] == ["fixed"]


def test_catalog_change_reloads_too(runtime, config_path, tmp_path):
    catalog = tmp_path / "catalog.json"
    catalog.write_text('[{"sku": "only", "name": "Only", "url": "/p/only", "price": 5, "category": "c"}]')
    write(config_path, catalog="catalog.json")
    assert runtime.reload_if_changed() is True
    assert [p.sku for p in runtime.catalog] == ["only"]
    catalog.write_text('[{"sku": "only", "name": "Only", "url": "/p/only", "price": 5, "category": "c"},'
                       ' {"sku": "two", "name": "Two", "url": "/p/two", "price": 6, "category": "c"}]')
    assert runtime.reload_if_changed() is True
    assert sorted(p.sku for p in runtime.catalog) == ["only", "two"]


def test_file_watch_sees_content_changes_once():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.txt"
        path.write_text("a")
        watch = FileWatch([path])
        assert not watch.changed()
        path.write_text("bb")
        assert watch.changed() and not watch.changed()
        path.unlink()
        assert watch.changed()
        path.write_text("bb")
        assert watch.changed()


def test_real_watcher_reloads_within_two_seconds(config_path):
    with Segmint.from_config(config_path, watch=True) as rt:
        write(config_path, id="watched")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and [c.id for c in rt.state.campaigns] != ["watched"]:
            time.sleep(0.05)
        assert [c.id for c in rt.state.campaigns] == ["watched"]


# Start and reload read a file the same way (``load_compiled``): one file, one verdict, one message.
FIXTURE_PLUGINS = Path(__file__).resolve().parents[1] / "fixture_plugins"
GOOD = BASE.format(id="home", strategy="new_arrivals", title="Hello", catalog=CATALOG.as_posix())
REJECTED = {
    "unknown key": GOOD + 'titel = "typo"\n',
    "unknown strategy": GOOD.replace('"new_arrivals"', '"bestseller"'),
    "bad filter": GOOD + 'segment = "vip"\n[segments.vip]\nfilter = { "spend.totl" = { "$gte" = 1 } }\n',
    "bad TOML": GOOD + "[[campaigns]\n",
    "bad type": GOOD.replace('slots = ["home"]', 'slots = "home"'),
    "unknown plugin": 'plugins = ["segmint_no_such_plugin"]\n' + GOOD,
    "misspelled hook": 'plugins = ["segmint_fixture_typo"]\n' + GOOD,
    "missing catalog": GOOD.replace(CATALOG.as_posix(), "no-such-catalog.json"),
}
ACCEPTED = {
    "plain": GOOD.replace('"Hello"', '"Hello again"'),
    "third-party plugin": 'plugins = ["segmint_fixture_sample"]\n' + GOOD.replace('"new_arrivals"', '"cheapest"'),
    "segment and filter": GOOD + 'segment = "vip"\n[segments.vip]\nfilter = { "spend.total" = { "$gte" = 1 } }\n',
}


def write_text(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))
    stamp = time.time_ns() + len(path.read_bytes())
    os.utime(path, ns=(stamp, stamp))


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_a_file_the_start_rejects_reload_rejects_with_the_same_message(case, runtime, config_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURE_PLUGINS))
    good = runtime.state
    write_text(config_path, REJECTED[case])
    assert runtime.reload_if_changed() is False
    with pytest.raises(SegmintError) as at_start:
        Segmint.from_config(config_path, watch=False).close()
    error = runtime.last_reload_error
    assert runtime.state is good
    assert type(error) is type(at_start.value)
    assert str(error) == str(at_start.value)
    if isinstance(error, ConfigError):
        assert error.file == at_start.value.file
        assert [(p.path, p.line, p.suggestion) for p in error.problems or [error]] == \
               [(p.path, p.line, p.suggestion) for p in at_start.value.problems or [at_start.value]]


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_a_file_the_start_accepts_reload_accepts_alike(case, runtime, config_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURE_PLUGINS))
    write_text(config_path, ACCEPTED[case])
    assert runtime.reload_if_changed() is True, runtime.last_reload_error
    with Segmint.from_config(config_path, watch=False) as started:
        assert runtime.config == started.config
        assert sorted(runtime.state.strategies) == sorted(started.state.strategies)
        assert [c.id for c in runtime.state.campaigns] == [c.id for c in started.state.campaigns]
        assert [p.sku for p in runtime.catalog] == [p.sku for p in started.catalog]
