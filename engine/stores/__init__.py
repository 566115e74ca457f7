"""Profile stores: the ``ProfileStore`` and ``PersonalDataStore`` protocols, ``MemoryStore``,
``SQLiteStore``, ``open_store``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..errors import StoreError
from .base import (AppendResult, CompactingStore, PersonalData, PersonalDataStore, ProfileStore, UnsyncedAppendStore,
                   redacted_url)
from .memory import MemoryStore
from .sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = ["ProfileStore", "CompactingStore", "UnsyncedAppendStore", "AppendResult", "PersonalDataStore", "PersonalData", "MemoryStore",
           "SQLiteStore", "SCHEMA_VERSION", "open_store"]


def open_store(url: str, *, clock: Callable[[], datetime] | None = None) -> ProfileStore:
    """Open a store by URL or path.

    ``"memory://"`` is a ``MemoryStore``; ``":memory:"`` an in-memory SQLite database;
    ``"sqlite:///path.db"`` or a plain path (``"data/profiles.db"``) a SQLite file.
    ``"redis://host:6379/0"`` (``rediss://`` for TLS) a ``RedisStore`` (``pip install segmint[redis]``).

    >>> open_store("memory://").url
    'memory://'
    """
    if url == "memory://":
        return MemoryStore(clock=clock)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
        if not path:
            raise StoreError("a sqlite:// URL needs a file path (sqlite:///profiles.db)", store=url)
        return SQLiteStore(path, clock=clock)
    if url.startswith(("redis://", "rediss://")):
        from .redis import RedisStore  # redis-py is optional: imported only when asked for

        return RedisStore(url, clock=clock)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise StoreError(
            f"unsupported store URL scheme {scheme!r}: use memory://, sqlite:///path.db, redis://host:6379/0 or a file path",
            store=redacted_url(url),  # shown in logs and on /health
        )
    return SQLiteStore(url, clock=clock)
