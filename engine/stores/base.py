"""The ``ProfileStore`` protocol every store implements, and ``AppendResult``.

A store keeps profiles (by key ``c:<customer_id>`` / ``v:<visitor_id>``), the visitor ->
customer links made by ``identify``, the ids of stored orders (to drop retried duplicates),
an append-only event log and a few named meta blobs (RFM thresholds, ...).
``append`` is atomic per batch: the events are logged and folded, or nothing is.

Optional: ``event_fingerprint(until: float) -> tuple`` returns a value that changes whenever
an event with ``at < until`` is logged or removed (the built-in stores have it). Campaign
reports use it to know that a saved report state is still valid (``analytics/checkpoint.py``);
a store without it gets reports that always read the whole event log.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from ..events import Event
from ..profile import Profile

__all__ = ["ProfileStore", "AppendResult", "RESERVED_META", "redacted_url"]

def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: how a store URL appears in ``store.url``,
    errors, logs and ``/health``.

    >>> redacted_url("redis://:s3cret@cache:6379/0")
    'redis://:***@cache:6379/0'
    """
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


#: Meta names the stores use themselves; ``set_meta`` refuses them.
RESERVED_META = frozenset({"schema_version"})


@dataclass(slots=True)
class AppendResult:
    """What one ``append`` did.

    ``stored`` events were logged and folded; ``duplicates`` orders were dropped because
    their ``order_id`` was already stored; ``changed_keys`` are the profile keys written or
    deleted (a merged visitor's ``v:`` key included), for cache invalidation; ``profiles``
    the written profiles themselves.
    """

    stored: int = 0
    duplicates: int = 0
    changed_keys: set[str] = field(default_factory=set)
    #: The profiles as folded and written, by key (deleted keys excluded), so a cache can be
    #: refreshed in place instead of reloading them. Owned by the caller: the store keeps no
    #: reference to these objects.
    profiles: dict[str, Profile] = field(default_factory=dict)


@runtime_checkable
class ProfileStore(Protocol):
    url: str

    def load(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        """The profile of a customer (wins) or visitor (following identify links), or None."""

    def append(self, events: Sequence[Event]) -> AppendResult:
        """Log and fold a batch atomically, in time order; duplicate orders are dropped."""

    def iter_profiles(self, *, batch_size: int = 1000) -> Iterator[Profile]:
        """Every profile, read in batches of ``batch_size`` (constant memory)."""

    def count_profiles(self) -> int: ...

    def iter_events(
        self, *, since: datetime | float | None = None, types: Collection[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Event]:
        """Logged events with ``at >= since`` of the given types, oldest first, in batches."""

    def get_meta(self, name: str) -> bytes | None: ...

    def set_meta(self, name: str, value: bytes) -> None: ...

    def close(self) -> None: ...
