"""``RedisStore``: the shared store for several app servers (``redis://host:6379/0``).

Key layout (``P`` is the prefix, default ``segmint:``, so several shops can share a Redis;
set it with ``?prefix=shop1:`` in the URL)::

    P meta:<name>        string   meta blobs; ``meta:schema_version`` is the layout version
    P p:<profile key>    string   msgpack ``Profile`` (``P p:c:42``, ``P p:v:abc``)
    P profiles           zset     every profile key, score 0: lexicographic paging, ZCARD
    P l:<visitor_id>     string   the customer id an ``identify`` linked the visitor to
    P o:<order_id>       string   the order's time (its presence dedupes a resent order)
    P e:<event type>     zset     the event log of one type, score 0, member =
                                  ``at``(8 bytes, sortable) ``seq``(8) ``len(key)``(2) key data
    P event_types        set      the event types that have a log
    P seq                string   event sequence counter (keeps insertion order within one ``at``)
    P invalidate         channel  ``[origin, [changed profile keys]]`` after every append
                                  and every ``forget``

Appends are optimistic transactions: ``fold_batch`` (the one append algorithm) reads through
a ``WATCH``: first the order keys, then the link keys, then the profile keys it needs; the
plan is written in one ``MULTI``/``EXEC`` together with the ``PUBLISH``. If another server
changed any watched key in between, ``EXEC`` fails and the whole batch is folded again from
fresh data, so concurrent appends to one customer lose no update and an order id is counted
once. Folding stays in Python (a Lua script would need a second implementation of it);
conflicts only arise between batches touching the same customer, visitor or order.
Not yet on the event-time rule of ``batch.py``: the log is not indexed by key, so a late
event is folded onto the stored profile and ``identify`` merges the visitor's profile
(``merge_profiles``) instead of refolding the key group (issue #19 moves the log to a
Redis Stream).
Redis Cluster is not supported (keys of one batch span hash slots).

Event logs are sorted sets whose member bytes sort by (event time, sequence), so
``iter_events(since, types)`` is a ``ZRANGE BYLEX`` per type merged oldest first, paged with
an exclusive cursor: constant memory, no offsets. Profiles page the same way.

Two clients: writes and batch reads (appends, ``iter_*``, meta, the pub/sub listener) use the
sync client in threads; ``aload``, the request-path read, uses a ``redis.asyncio`` client on
the caller's event loop (no thread hop). Async connections belong to one loop, so there is one
async client per running loop, closed when that loop shuts down (``_closed_with_loop``).

Erasing one person (``forget``): links have no reverse index and the log no index by
key, so the person's visitors are found with ``SCAN`` over ``P l:*`` and their events by
reading every type's log (a rare request; the time grows with the store). The person's
profile and link keys are ``WATCH``ed meanwhile and everything is deleted in one ``MULTI``
with the ``PUBLISH`` that drops the person from every server's cache: an event of the person
appended in between makes ``EXEC`` fail and the search start again.

Failures: every Redis error becomes a ``StoreError``. Socket timeouts are short (0.5 s,
``?socket_timeout=0.2`` in the URL) and redis-py does not retry (the pool replaces a
connection the server closed before using it), so a page whose profile lookup fails goes
out without widgets after at most one timeout; the event writer retries failed appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from ..errors import StoreError
from ..events import Event
from ..profile import Profile
from .base import (
    REPORT_STATE_META_PREFIX, RESERVED_META, AppendResult, PersonalData, redacted_url, resolve_person,
)
from .batch import fold_batch

try:  # redis-py is optional: ``pip install segmint[redis]``
    import redis as _redis
    import redis.asyncio as _aredis
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _redis = None

__all__ = ["RedisStore", "REDIS_SCHEMA_VERSION", "encode_event_member", "decode_event_member"]

REDIS_SCHEMA_VERSION = 1
DEFAULT_PREFIX = "segmint:"
_CHUNK = 1000  # keys per MGET / WATCH
_MAX_ATTEMPTS = 50

_encode = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(Profile).decode
_decode_event = msgspec.msgpack.Decoder(Event).decode
_decode_message = msgspec.msgpack.Decoder(tuple[str, list[str]]).decode

# Load a profile by visitor id in one round trip: follow the link when there is one.
_LOAD_VISITOR = """
local customer = redis.call('GET', KEYS[1])
if customer then return redis.call('GET', ARGV[1] .. 'c:' .. customer) end
return redis.call('GET', KEYS[2])
"""


def _sortable_time(at: float) -> bytes:
    """8 bytes whose byte order is the numeric order of ``at`` (IEEE 754 trick)."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", at + 0.0))  # + 0.0: -0.0 becomes 0.0
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63
    return struct.pack(">Q", bits)


def _time_from_sortable(raw: bytes) -> float:
    (bits,) = struct.unpack(">Q", raw)
    bits = bits ^ (1 << 63) if bits >> 63 else bits ^ 0xFFFFFFFFFFFFFFFF
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def encode_event_member(at: float, seq: int, key: str, data: bytes) -> bytes:
    raw_key = key.encode()
    return _sortable_time(at) + struct.pack(">QH", seq, len(raw_key)) + raw_key + data


def decode_event_member(member: bytes) -> tuple[float, int, str, bytes]:
    """``(at, seq, profile key, msgpack event)`` of a log member."""
    seq, size = struct.unpack_from(">QH", member, 8)
    return _time_from_sortable(member[:8]), seq, member[18:18 + size].decode(), member[18 + size:]


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a ``SCAN MATCH`` pattern (a prefix may hold ``*?[]\\``)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


class _WatchedSource:
    """The ``BatchSource`` of one append: every key read is WATCHed first."""

    def __init__(self, pipe: Any, prefix: str) -> None:
        self.pipe, self.prefix = pipe, prefix

    def _get(self, keys: list[str]) -> list[bytes | None]:
        values: list[bytes | None] = []
        for chunk in _chunks(keys):
            self.pipe.watch(*chunk)
            values += self.pipe.mget(chunk)
        return values

    def existing_orders(self, order_ids: set[str]) -> set[str]:
        ids = list(order_ids)
        found = self._get([f"{self.prefix}o:{i}" for i in ids])
        return {i for i, value in zip(ids, found) if value is not None}

    def links(self, visitor_ids: set[str]) -> dict[str, str]:
        ids = list(visitor_ids)
        found = self._get([f"{self.prefix}l:{v}" for v in ids])
        return {v: c.decode() for v, c in zip(ids, found) if c is not None}

    def load_many(self, keys: set[str]) -> dict[str, Profile]:
        names = list(keys)
        found = self._get([f"{self.prefix}p:{k}" for k in names])
        return {k: _decode_profile(data) for k, data in zip(names, found) if data is not None}


class RedisStore:
    """A ``ProfileStore`` in Redis, shared by every app server that opens the same URL.

    ``socket_timeout`` (seconds) bounds each read and write (URL ``?socket_timeout=``
    wins); ``prefix`` namespaces every key (URL ``?prefix=`` wins); ``clock`` stamps events
    without ``at``. ``client`` is the redis-py client (``migrate`` writes through it).
    """

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 0.5, clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.url = redacted_url(url)
        if _redis is None:
            raise StoreError("the Redis store needs redis-py: pip install segmint[redis]", store=self.url)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.prefix = query.pop("prefix", prefix)
        query.setdefault("socket_timeout", str(socket_timeout))
        query.setdefault("socket_connect_timeout", query["socket_timeout"])
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._origin = uuid.uuid4().hex  # lets the listener skip this store's own messages
        self._closed = False
        self._listener: Any = None
        # The URL the clients connect with (timeouts added); the async clients reuse it.
        self._client_url = urlunsplit(parts._replace(query=urlencode(query)))
        # event loop -> (async client, its load script, the generator that closes it)
        self._async_clients: dict[asyncio.AbstractEventLoop, tuple[Any, Any, Any]] = {}
        self._async_lock = threading.Lock()
        try:
            self.client = _redis.Redis.from_url(self._client_url, retry=Retry(NoBackoff(), 0))
        except (ValueError, TypeError) as exc:
            raise StoreError(f"invalid Redis URL: {exc}", store=self.url) from exc
        self._load_visitor = self.client.register_script(_LOAD_VISITOR)
        self._check_schema()

    @property
    def channel(self) -> str:
        return f"{self.prefix}invalidate"

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn redis-py errors inside the block into ``StoreError("<what> failed: ...")``."""
        if self._closed:
            raise StoreError("the store is closed", store=self.url)
        try:
            yield
        except _redis.RedisError as exc:
            raise StoreError(f"{what} failed: {exc}", store=self.url) from exc

    def _check_schema(self) -> None:
        key = self._key("meta", "schema_version")
        with self.errors("opening the store"):
            self.client.setnx(key, str(REDIS_SCHEMA_VERSION))
            found = int(self.client.get(key) or REDIS_SCHEMA_VERSION)
        if found > REDIS_SCHEMA_VERSION:
            raise StoreError(
                f"the data was written by a newer segmint (schema version {found}; this "
                f"version reads up to {REDIS_SCHEMA_VERSION}): upgrade segmint or use another "
                "Redis database or prefix", store=self.url,
            )

    # -- ProfileStore --
    def load(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        with self.errors("loading a profile"):
            if customer_id:
                data = self.client.get(self._key("p", f"c:{customer_id}"))
            elif visitor_id:
                data = self._load_visitor(keys=self._visitor_keys(visitor_id), args=[f"{self.prefix}p:"])
            else:
                raise ValueError("load() needs a visitor_id or a customer_id")
        return None if data is None else _decode_profile(data)

    async def aload(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        """``load`` without blocking the event loop: the same keys, script and errors, over
        this loop's async client."""
        with self.errors("loading a profile"):
            client, load_visitor = await self._loop_client()
            if customer_id:
                data = await client.get(self._key("p", f"c:{customer_id}"))
            elif visitor_id:
                data = await load_visitor(keys=self._visitor_keys(visitor_id), args=[f"{self.prefix}p:"])
            else:
                raise ValueError("aload() needs a visitor_id or a customer_id")
        return None if data is None else _decode_profile(data)

    def _visitor_keys(self, visitor_id: str) -> list[str]:
        """The keys of the visitor load script: the link, then the visitor's own profile."""
        return [self._key("l", visitor_id), self._key("p", f"v:{visitor_id}")]

    async def _loop_client(self) -> tuple[Any, Any]:
        """The running loop's async client and load script, created on first use."""
        loop = asyncio.get_running_loop()
        entry = self._async_clients.get(loop)
        if entry is None:  # no await before the insert: one client per loop
            client = _aredis.Redis.from_url(self._client_url, retry=AsyncRetry(NoBackoff(), 0))
            closer = self._closed_with_loop(loop, client)
            entry = (client, client.register_script(_LOAD_VISITOR), closer)
            with self._async_lock:
                self._async_clients[loop] = entry
            await anext(closer)  # park it (see _closed_with_loop)
        return entry[0], entry[1]

    async def _closed_with_loop(self, loop: asyncio.AbstractEventLoop, client: Any) -> AsyncIterator[None]:
        """Closes ``client`` when its loop ends.

        Parked at its ``yield``, this generator is known to the loop, whose
        ``shutdown_asyncgens()`` (``asyncio.run``, anyio, uvicorn) resumes it: the loop's
        connections close on the loop that opened them, before it is gone.
        """
        try:
            yield
        finally:
            with self._async_lock:
                self._async_clients.pop(loop, None)
            with contextlib.suppress(Exception):  # Redis down: the sockets close all the same
                await client.aclose()

    def append(self, events: Sequence[Event]) -> AppendResult:
        if not events:
            return AppendResult()
        events = list(events)
        with self.errors("append"):
            for attempt in range(_MAX_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        plan = fold_batch(events, _WatchedSource(pipe, self.prefix), now=self._clock())
                        # Not watched (every append bumps it); a failed EXEC just leaves a gap.
                        count = len(plan.logged)
                        first_seq = self.client.incrby(f"{self.prefix}seq", count) - count + 1 if count else 0
                        pipe.multi()
                        self._queue_plan(pipe, plan, first_seq)
                        pipe.execute()
                        return plan.result
                    except _redis.WatchError:
                        # Another server changed a key this batch read: fold again from fresh data.
                        time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise StoreError(f"append gave up after {_MAX_ATTEMPTS} conflicting attempts", store=self.url)

    def _queue_plan(self, pipe: Any, plan: Any, first_seq: int) -> None:
        p = self.prefix
        if plan.profiles:  # few commands with many arguments: per-command cost dominates
            pipe.mset({f"{p}p:{key}": _encode(profile) for key, profile in plan.profiles.items()})
            pipe.zadd(f"{p}profiles", dict.fromkeys(plan.profiles, 0))
        if plan.deleted:
            pipe.delete(*(f"{p}p:{key}" for key in plan.deleted))
            pipe.zrem(f"{p}profiles", *plan.deleted)
        if plan.links:
            pipe.mset({f"{p}l:{v}": c for v, c in plan.links.items()})
        if plan.orders:
            pipe.mset({f"{p}o:{order_id}": repr(at) for order_id, at in plan.orders})
        logs: dict[str, dict[bytes, int]] = {}
        for seq, (event, key, data) in enumerate(plan.logged, first_seq):
            tag = type(event).__struct_config__.tag
            member = encode_event_member(event.at.timestamp(), seq, key, data)  # type: ignore[union-attr]
            logs.setdefault(tag, {})[member] = 0
        for tag, members in logs.items():
            pipe.zadd(f"{p}e:{tag}", members)
        if logs:
            pipe.sadd(f"{p}event_types", *logs)
        if plan.result.changed_keys:
            pipe.publish(self.channel, _encode((self._origin, sorted(plan.result.changed_keys))))

    def _page_lex(self, name: str, start: bytes | str, batch_size: int) -> Iterator[list[bytes]]:
        """Pages of a score-0 sorted set in member order from ``start`` (``-`` or ``[x``)."""
        while True:
            with self.errors("reading"):
                page = self.client.zrangebylex(name, start, "+", start=0, num=batch_size)
            if page:
                yield page
            if len(page) < batch_size:
                return
            start = b"(" + page[-1]

    def iter_profiles(self, *, batch_size: int = 1000) -> Iterator[Profile]:
        for keys in self._page_lex(f"{self.prefix}profiles", "-", batch_size):
            with self.errors("reading profiles"):
                found = self.client.mget([f"{self.prefix}p:{k.decode()}" for k in keys])
            for data in found:
                if data is not None:  # deleted (merged by identify) since the page was read
                    yield _decode_profile(data)

    def count_profiles(self) -> int:
        with self.errors("counting profiles"):
            return int(self.client.zcard(f"{self.prefix}profiles"))

    def iter_event_members(
        self, *, since: datetime | float | None = None, types: Collection[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[tuple[str, bytes]]:
        """``(type, member)`` of the logged events, oldest first (``iter_events``, ``migrate``)."""
        start = since.timestamp() if isinstance(since, datetime) else since
        low = "-" if start is None else b"[" + _sortable_time(start)
        if types is None:
            with self.errors("reading event types"):
                types = sorted(t.decode() for t in self.client.smembers(f"{self.prefix}event_types"))

        def one_log(tag: str) -> Iterator[tuple[bytes, str]]:
            for page in self._page_lex(f"{self.prefix}e:{tag}", low, batch_size):
                for member in page:
                    yield member, tag

        for member, tag in heapq.merge(*(one_log(t) for t in types)):
            yield tag, member

    def iter_events(
        self, *, since: datetime | float | None = None, types: Collection[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Event]:
        for _, member in self.iter_event_members(since=since, types=types, batch_size=batch_size):
            yield _decode_event(decode_event_member(member)[3])

    def event_fingerprint(self, until: float) -> tuple[int, ...]:
        """Changes when an event with ``at < until`` is logged or removed: the count of such
        events in each type's log (``ZLEXCOUNT``, no members read)."""
        high = b"(" + _sortable_time(until)
        with self.errors("counting events"):
            types = sorted(t.decode() for t in self.client.smembers(f"{self.prefix}event_types"))
            pipe = self.client.pipeline(transaction=False)
            for tag in types:
                pipe.zlexcount(f"{self.prefix}e:{tag}", "-", high)
            return tuple(pipe.execute())

    def get_meta(self, name: str) -> bytes | None:
        with self.errors("reading meta"):
            return self.client.get(self._key("meta", name))

    def set_meta(self, name: str, value: bytes) -> None:
        if name in RESERVED_META:
            raise ValueError(f"meta name {name!r} is reserved")
        with self.errors("writing meta"):
            self.client.set(self._key("meta", name), bytes(value))

    # -- PersonalDataStore --
    def _person(self, customer_id: str | None, visitor_id: str | None,
                pipe: Any = None) -> tuple[PersonalData, dict[str, list[bytes]]]:
        """The person's data and their log members by event type; with ``pipe`` (``forget``),
        the person's profile and link keys are WATCHed on it before they are read."""
        p = self.prefix
        if pipe is not None:  # WATCH puts the pipeline in immediate mode: reads run at once
            pipe.watch(self._key("l", visitor_id) if visitor_id else self._key("p", f"c:{customer_id}"))
        reader = pipe if pipe is not None else self.client

        def link_of(visitor: str) -> str | None:
            found = reader.get(self._key("l", visitor))
            return None if found is None else found.decode()

        def visitors_of(customer: str) -> list[str]:
            if pipe is not None:  # an identify linking one more visitor changes this key
                pipe.watch(self._key("p", f"c:{customer}"))
            link_prefix = f"{p}l:".encode()
            names = list(self.client.scan_iter(match=_glob_escape(f"{p}l:") + "*", count=1000))
            found: list[str] = []
            for chunk in _chunks(names):
                for name, value in zip(chunk, self.client.mget(chunk)):
                    if value is not None and value.decode() == customer:
                        found.append(name[len(link_prefix):].decode())
            return found

        customer, visitors = resolve_person(customer_id, visitor_id, link_of=link_of, visitors_of=visitors_of)
        data = PersonalData(customer_id=customer, visitor_ids=visitors)
        keys = sorted(data.keys)
        profile_names = [self._key("p", k) for k in keys]
        link_names = [self._key("l", v) for v in visitors]
        if pipe is not None:
            pipe.watch(*profile_names, *link_names)
        data.profiles = [_decode_profile(raw) for raw in reader.mget(profile_names) if raw is not None]
        if link_names:
            data.links = {v: c.decode() for v, c in zip(visitors, reader.mget(link_names)) if c is not None}
        wanted, members = set(keys), {}
        for tag, member in self.iter_event_members():
            _, _, key, raw = decode_event_member(member)
            if key in wanted:
                members.setdefault(tag, []).append(member)
                data.events.append(_decode_event(raw))
        return data, members

    def export(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        with self.errors("exporting a person"):
            data = self._person(customer_id, visitor_id)[0]
            data.report_states = [name for name, _ in self._report_states()]
            return data

    def _report_states(self) -> list[tuple[str, bytes]]:
        """``(meta name, Redis key)`` of every saved report state."""
        meta = f"{self.prefix}meta:"
        found = self.client.scan_iter(match=_glob_escape(meta + REPORT_STATE_META_PREFIX) + "*", count=1000)
        return sorted((key[len(meta.encode()):].decode(), key) for key in found)

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        p = self.prefix
        with self.errors("forgetting a person"):
            for attempt in range(_MAX_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        data, members = self._person(customer_id, visitor_id, pipe)
                        states = self._report_states()
                        data.report_states = [name for name, _ in states]
                        keys = sorted(data.keys)
                        pipe.multi()
                        pipe.delete(*(self._key("p", k) for k in keys), *(key for _, key in states),
                                    *(self._key("l", v) for v in data.links))
                        pipe.zrem(f"{p}profiles", *keys)
                        for tag, tagged in members.items():
                            for chunk in _chunks(tagged):
                                pipe.zrem(f"{p}e:{tag}", *chunk)
                        pipe.publish(self.channel, _encode((self._origin, keys)))
                        pipe.execute()
                        return data
                    except _redis.WatchError:
                        time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise StoreError(f"forget gave up after {_MAX_ATTEMPTS} conflicting attempts", store=self.url)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
        self.client.close()  # the async clients close when their loops end (_closed_with_loop)

    # -- cache invalidation across servers --
    def on_invalidate(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Call ``callback(keys)`` when another server changed these profile keys;
        ``callback(None)`` means "messages may have been missed: drop everything".

        Starts one listener thread on first use (see ``cache_invalidation``).
        """
        from ..cache_invalidation import InvalidationListener

        if self._listener is None:
            self._listener = InvalidationListener(
                self.client, self.channel, decode=self._decode_invalidation, name=self.url)
        self._listener.add(callback)

    def _decode_invalidation(self, data: bytes) -> frozenset[str] | None:
        origin, keys = _decode_message(data)
        return None if origin == self._origin else frozenset(keys)
