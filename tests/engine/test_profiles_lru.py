"""ExpiringLRU, the profile cache's map: expiry, LRU eviction, and agreement with a model."""

from __future__ import annotations

import random

import pytest

from segmint.engine.profiles import ExpiringLRU


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_ttl_after_they_were_set_and_hits_do_not_extend_them():
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(maxsize=10, ttl=5.0, timer=clock)
    cache["a"] = 1
    clock.now = 4.9
    assert cache["a"] == 1 and "a" in cache
    clock.now = 5.0
    assert "a" not in cache
    with pytest.raises(KeyError):
        cache["a"]
    assert len(cache) == 0  # the expired entry was dropped on access
    cache["a"] = 2  # setting again restarts the clock
    clock.now = 9.9
    assert cache["a"] == 2


def test_a_full_map_evicts_the_least_recently_used():
    cache: ExpiringLRU[str, int] = ExpiringLRU(maxsize=3, ttl=60.0, timer=Clock())
    for key in "abc":
        cache[key] = ord(key)
    assert cache["a"] == ord("a")  # a is now the most recently used: b goes first
    cache["d"] = 4
    assert "b" not in cache and len(cache) == 3
    cache["c"] = 33  # replacing a key evicts nothing and makes it the most recent
    cache["e"] = 5
    assert "a" not in cache and [k for k in "cde" if k in cache] == ["c", "d", "e"]
    assert cache.pop("c") == 33 and cache.pop("c", None) is None and cache.pop("zz", -1) == -1
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="maxsize"):
        ExpiringLRU(maxsize=0, ttl=1.0, timer=Clock())


def test_it_answers_as_a_model_of_expiry_and_recency_does():
    rng = random.Random(7)
    clock = Clock()
    cache: ExpiringLRU[int, int] = ExpiringLRU(maxsize=8, ttl=10.0, timer=clock)
    model: dict[int, tuple[int, float, int]] = {}  # key -> (value, set at, last used)
    tick = 0
    for _ in range(5000):
        tick += 1
        clock.now += rng.choice((0.0, 0.5, 3.0))
        key = rng.randrange(16)
        if rng.random() < 0.5:
            if len(model) >= 8 and key not in model:
                del model[min(model, key=lambda k: model[k][2])]
            model[key] = (tick, clock.now, tick)
            cache[key] = tick
            continue
        live = key in model and model[key][1] + 10.0 > clock.now
        try:
            value = cache[key]
        except KeyError:
            value = None
        assert value == (model[key][0] if live else None)
        if live:
            model[key] = (model[key][0], model[key][1], tick)
        else:
            model.pop(key, None)
