"""``RedisStore``: the shared store for several app servers (``redis://host:6379/0``).

Key layout, schema version 2 (``P`` is the prefix, default ``segmint:``, so several shops can
share a Redis; set it with ``?prefix=shop1:`` in the URL)::

    P meta:<name>        string   meta blobs; ``meta:schema_version`` is the layout version
    P log                stream   every appended event, fields ``key`` (routed profile key),
                                  ``at``, ``type``, ``data`` (msgpack): the compactors' feed,
                                  read by the consumer group ``fold``; entries every
                                  compactor has acknowledged are trimmed
    P k:<profile key>    list     the key's complete history: one entry per event,
                                  ``<stream id> <seq (8 bytes)><at (8 bytes)><msgpack event>``
    P p:<profile key>    hash     ``profile`` (msgpack ``Profile``) folded from the first ``n``
                                  entries of ``P k:<profile key>`` (``P p:c:42``, ``P p:v:abc``)
    P profiles           zset     every key with a row, score 0: lexicographic paging, ZCARD
    P l:<visitor_id>     string   the customer id an ``identify`` linked the visitor to
    P cv:<customer_id>   set      the visitors linked to the customer (the key group, ``forget``)
    P o:<order_id>       string   the order's time (its presence dedupes a resent order)
    P e:<event type>     zset     the event log of one type for reports, score 0, member =
                                  ``at``(8 bytes, sortable) ``seq``(8) ``len(key)``(2) key data
    P event_types        set      the event types that have a log
    P seq                string   event sequence counter (keeps insertion order within one ``at``)
    P invalidate         channel  ``[origin, [changed profile keys]]`` after every append
                                  and every ``forget``

The log is the truth, the rows a materialized view of it (``batch.py`` has the rules, the
same as SQLite's). ``append`` only logs: it reads the order and link keys through a
``WATCH`` (``route_batch``), then one ``MULTI``/``EXEC`` stores the links and order ids and,
per event, ``XADD``s it to the stream and ``RPUSH``es it to its key's list (a small Lua
script, so the list entry can carry the stream id ``forget`` needs), adds it to its type's
log and ``PUBLISH``es the changed keys. Another server's append between the reads and
``EXEC`` makes it fail and the batch is routed again, so an order id is counted once and a
link is never lost. No profile is read or written.

``load`` (and ``aload``) is one script call: the link, the row and the key's tail
(``LRANGE P k:<key> n -1``, O(tail)), folded with ``batch.materialize``; a late event or an
``identify`` in the tail refolds the key group from the lists (a second script call reads
the customer's visitors and their lists at once).

Compaction (``compact``): compactors form the consumer group ``fold`` on ``P log``
(``segmint fold --follow`` on any number of hosts, and every serving process's embedded
compactor thread; consumer name = host, pid and a random suffix). A pass takes this
consumer's own unacknowledged entries (a pass that failed), then entries another consumer
left pending for longer than ``claim_idle`` seconds (``XAUTOCLAIM``: a dead compactor's),
then new ones (``XREADGROUP >``), at most ``max_events``; folds each touched key group once
(row + tail, ``materialize``) and writes its row under a ``WATCH`` of the row (and of the
visitor's link for a ``v:`` key), so two compactors never regress a row nor write a row
for a visitor that was just linked; then ``XACK``s and trims the stream below the oldest
entry still pending or undelivered (``XTRIM MINID``). Idempotent by position: a redelivered
entry whose event the row holds already finds an empty tail and writes nothing. Consumer
groups coordinate the compactors, so ``compactor_lock`` never excludes anyone.
``compaction_position`` is ``(logged - waiting, logged)``: ``logged`` the stream's
``entries-added``, ``waiting`` the group's pending entries plus its lag (``XINFO``).

Schema version 1 (profiles folded on append, no stream or key lists) is refused on open
with the fix: copy it with the segmint version that wrote it into a SQLite file
(``segmint migrate``), then with this one into an empty Redis database or prefix.
Redis Cluster is not supported (keys of one batch span hash slots).

Event logs for reports are sorted sets whose member bytes sort by (event time, sequence),
so ``iter_events(since, types)`` is a ``ZRANGE BYLEX`` per type merged oldest first, paged
with an exclusive cursor: constant memory, no offsets. Profiles page the same way. An event
is thus held twice for good (its type's log and its key's list) and once more in the
stream until every compactor has acknowledged it.

Two clients: writes and batch reads (appends, compaction, ``iter_*``, meta, the pub/sub
listener) use the sync client in threads; ``aload``, the request-path read, uses a
``redis.asyncio`` client on the caller's event loop (no thread hop). Async connections
belong to one loop, so there is one async client per running loop, closed when that loop
shuts down (``_closed_with_loop``).

Erasing one person (``forget``): the person's visitors come from ``P cv:<customer>``, their
events from their keys' lists (each entry names its stream id and type-log member). The
person's rows, links and lists are ``WATCH``ed meanwhile and everything is deleted in one
``MULTI`` (``XDEL`` of the stream entries too) with the ``PUBLISH`` that drops the person
from every server's cache: an event of the person appended in between makes ``EXEC`` fail
and the search start again. The rows are written before they are deleted, so a compactor
folding the person meanwhile (it watches the row) cannot write the row back.

Failures: every Redis error becomes a ``StoreError``. Socket timeouts are short (0.5 s,
``?socket_timeout=0.2`` in the URL) and redis-py does not retry (the pool replaces a
connection the server closed before using it), so a page whose profile lookup fails goes
out without widgets after at most one timeout; the event writer retries failed appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import random
import socket
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from ..errors import StoreError
from ..events import Event
from ..profile import Profile
from .base import (
    COMPACT_CHUNK, REPORT_STATE_META_PREFIX, AppendResult, PersonalData, redacted_url, refuse_reserved_meta,
    report_state_names, resolve_person,
)
from .batch import BatchPlan, LogRow, materialize, route_batch

try:  # redis-py is optional: ``pip install segmint[redis]``
    import redis as _redis
    import redis.asyncio as _aredis
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _redis = None

__all__ = ["RedisStore", "REDIS_SCHEMA_VERSION", "encode_event_member", "decode_event_member"]

REDIS_SCHEMA_VERSION = 2
DEFAULT_PREFIX = "segmint:"
#: The consumer group of the compactors on ``P log``.
GROUP = "fold"
#: Seconds an entry may stay pending with a compactor before another one takes it over.
DEFAULT_CLAIM_IDLE = 30.0
#: How long ``catch_up`` (scans, counts) waits for the compactors.
CATCH_UP_SECONDS = 30.0
_CHUNK = 1000  # keys per MGET / WATCH
_MAX_ATTEMPTS = 50
_FOLD_CHUNK = 200  # key groups read and written per round trip in a compaction pass

_encode = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(Profile).decode
_decode_event = msgspec.msgpack.Decoder(Event).decode
_decode_message = msgspec.msgpack.Decoder(tuple[str, list[str]]).decode
_ENTRY = struct.Struct(">Qd")  # seq, at: after the stream id in a key's list entry

# The log writes of one append (inside its MULTI). KEYS[1] the stream, KEYS[1 + i] the list
# of event i; ARGV per event: routed key, at, type, data, then the list entry after its id.
_LOG = """
for i = 2, #KEYS do
  local a = (i - 2) * 5
  local id = redis.call('XADD', KEYS[1], '*', 'key', ARGV[a + 1], 'at', ARGV[a + 2],
                        'type', ARGV[a + 3], 'data', ARGV[a + 4])
  redis.call('RPUSH', KEYS[i], id .. ' ' .. ARGV[a + 5])
end
"""
# A profile's row and tail in one round trip: ARGV prefix, 'c' or 'v', id. Returns the
# routed key, the row's n, its profile (or nil) and the key's list entries from n on.
_LOAD = """
local p, key = ARGV[1], nil
if ARGV[2] == 'c' then
  key = 'c:' .. ARGV[3]
else
  local customer = redis.call('GET', p .. 'l:' .. ARGV[3])
  if customer then key = 'c:' .. customer else key = 'v:' .. ARGV[3] end
end
local row = redis.call('HMGET', p .. 'p:' .. key, 'n', 'profile')
local n = tonumber(row[1]) or 0
return {key, n, row[2], redis.call('LRANGE', p .. 'k:' .. key, n, -1)}
"""
# A key group read at one instant (a refold): ARGV prefix, key. Returns {key, entries} pairs,
# the key's own first, then one per visitor linked to the customer.
_GROUP = """
local p, key = ARGV[1], ARGV[2]
local keys = {key}
if string.sub(key, 1, 2) == 'c:' then
  for _, visitor in ipairs(redis.call('SMEMBERS', p .. 'cv:' .. string.sub(key, 3))) do
    keys[#keys + 1] = 'v:' .. visitor
  end
end
local out = {}
for i, k in ipairs(keys) do out[i] = {k, redis.call('LRANGE', p .. 'k:' .. k, 0, -1)} end
return out
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


def _decode_entry(entry: bytes) -> tuple[bytes, int, float, bytes]:
    """``(stream id, seq, at, msgpack event)`` of a key's list entry."""
    space = entry.index(b" ")
    seq, at = _ENTRY.unpack_from(entry, space + 1)
    return entry[:space], seq, at, entry[space + 1 + _ENTRY.size:]


def _log_rows(entries: Iterable[bytes], first: int) -> list[LogRow]:
    """A key's list entries from position ``first`` (1-based) as ``materialize`` reads them."""
    rows = []
    for position, entry in enumerate(entries, first):
        _, _, at, data = _decode_entry(entry)
        rows.append((position, at, data))
    return rows


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a ``SCAN MATCH`` pattern (a prefix may hold ``*?[]\\``)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _next_id(stream_id: bytes) -> str:
    """The smallest stream id after ``stream_id``."""
    ms, seq = stream_id.split(b"-")
    return f"{int(ms)}-{int(seq) + 1}"


class _GroupUnread(Exception):
    """``materialize`` needs the key group (a refold): read it and materialize again."""


class _Group:
    """The ``GroupLog`` of one ``materialize``: a key group as ``_GROUP`` read it (or nothing
    yet: then asking raises ``_GroupUnread``). Positions count the key's own list entries
    only: other keys' events get 0, so a refold's ``folded_to`` is the own list's length."""

    def __init__(self, reply: list[Any] | None = None) -> None:
        self.lists: dict[str, list[bytes]] | None = None
        if reply is not None:
            self.lists = {key.decode(): entries for key, entries in reply}
            self.own = reply[0][0].decode()

    def linked_visitors(self, customer_ids: set[str]) -> dict[str, set[str]]:
        if self.lists is None:
            raise _GroupUnread
        visitors = {key[2:] for key in self.lists if key.startswith("v:")}
        return {c: visitors for c in customer_ids if visitors}

    def group_events(self, keys: set[str]) -> list[LogRow]:
        if self.lists is None:
            raise _GroupUnread
        rows: list[LogRow] = []
        for key in keys:
            found = _log_rows(self.lists.get(key, ()), 1)
            rows += found if key == self.own else [(0, at, data) for _, at, data in found]
        return rows


class _WatchedSource:
    """The ``BatchSource`` of one append: every key read is WATCHed first. ``linked`` keeps
    the links read, so a visitor linked anew leaves its former customer's group."""

    def __init__(self, pipe: Any, prefix: str) -> None:
        self.pipe, self.prefix = pipe, prefix
        self.linked: dict[str, str] = {}

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
        self.linked = {v: c.decode() for v, c in zip(ids, found) if c is not None}
        return dict(self.linked)


class RedisStore:
    """A ``ProfileStore`` and ``CompactingStore`` in Redis, shared by every app server that
    opens the same URL.

    ``socket_timeout`` (seconds) bounds each read and write (URL ``?socket_timeout=``
    wins); ``prefix`` namespaces every key (URL ``?prefix=`` wins); ``claim_idle``
    (seconds, URL ``?claim_idle=`` wins) is how long an entry may stay pending with a
    compactor before another takes it over (a compactor that died); ``clock`` stamps events
    without ``at``. ``client`` is the redis-py client (``migrate`` writes through it).
    """

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 0.5, claim_idle: float = DEFAULT_CLAIM_IDLE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.url = redacted_url(url)
        if _redis is None:
            raise StoreError("the Redis store needs redis-py: pip install segmint[redis]", store=self.url)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.prefix = query.pop("prefix", prefix)
        try:
            self.claim_idle = float(query.pop("claim_idle", claim_idle))
        except ValueError as exc:
            raise StoreError(f"invalid Redis URL: claim_idle must be a number of seconds ({exc})",
                             store=self.url) from exc
        query.setdefault("socket_timeout", str(socket_timeout))
        query.setdefault("socket_connect_timeout", query["socket_timeout"])
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._origin = uuid.uuid4().hex  # lets the listener skip this store's own messages
        #: This store's name in the compactors' consumer group.
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{self._origin[:8]}"
        self._closed = False
        self._listener: Any = None
        # The URL the clients connect with (timeouts added); the async clients reuse it.
        self._client_url = urlunsplit(parts._replace(query=urlencode(query)))
        # event loop -> (async client, its load script, its group script, the closer)
        self._async_clients: dict[asyncio.AbstractEventLoop, tuple[Any, Any, Any, Any]] = {}
        self._async_lock = threading.Lock()
        try:
            self.client = _redis.Redis.from_url(self._client_url, retry=Retry(NoBackoff(), 0))
        except (ValueError, TypeError) as exc:
            raise StoreError(f"invalid Redis URL: {exc}", store=self.url) from exc
        self._log = self.client.register_script(_LOG)
        self._load = self.client.register_script(_LOAD)
        self._group = self.client.register_script(_GROUP)
        self._check_schema()

    @property
    def channel(self) -> str:
        return f"{self.prefix}invalidate"

    @property
    def stream(self) -> str:
        return f"{self.prefix}log"

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
            version = self.client.info("server").get("redis_version", "0")
            if tuple(int(part) for part in str(version).split(".")[:2] if part.isdigit()) < (7, 0):
                raise StoreError(f"the Redis store needs Redis 7.0 or newer (consumer group lag, "
                                 f"XAUTOCLAIM); this server is {version}", store=self.url)
            self.client.setnx(key, str(REDIS_SCHEMA_VERSION))
            found = int(self.client.get(key) or REDIS_SCHEMA_VERSION)
            if found == REDIS_SCHEMA_VERSION:
                self._create_group()
        if found > REDIS_SCHEMA_VERSION:
            raise StoreError(
                f"the data was written by a newer segmint (schema version {found}; this "
                f"version reads up to {REDIS_SCHEMA_VERSION}): upgrade segmint or use another "
                "Redis database or prefix", store=self.url,
            )
        if found < REDIS_SCHEMA_VERSION:
            raise StoreError(
                f"the data is in segmint's Redis layout version {found} (profiles folded on append); "
                f"this version logs events in a Redis Stream (layout {REDIS_SCHEMA_VERSION}). Copy it "
                "with the segmint version that wrote it into a SQLite file (segmint migrate --from "
                "REDIS_URL --to old.db), then with this version into an empty Redis database or "
                "prefix (segmint migrate --from old.db --to REDIS_URL?prefix=new:)", store=self.url,
            )

    def _create_group(self) -> None:
        """The compactors' consumer group, reading the stream from its start."""
        with contextlib.suppress(_redis.ResponseError):  # BUSYGROUP: it exists
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)

    # -- ProfileStore --
    def _load_args(self, visitor_id: str | None, customer_id: str | None) -> list[str]:
        if customer_id:
            return [self.prefix, "c", customer_id]
        if visitor_id:
            return [self.prefix, "v", visitor_id]
        raise ValueError("load() needs a visitor_id or a customer_id")

    @staticmethod
    def _materialize(reply: list[Any], group: _Group) -> tuple[Profile, int, bool] | None:
        """``batch.materialize`` of a ``_LOAD``-shaped reply ``[key, n, profile, tail]``;
        raises ``_GroupUnread`` when it needs the key group and ``group`` has not read it."""
        key, n, data, tail = reply[0], int(reply[1]), reply[2], reply[3]
        key = key.decode() if isinstance(key, bytes) else key
        if data is None and group.lists is None and key.startswith("v:"):
            group = _Group([[key.encode(), tail]])  # no row: the tail is the whole list
        row = None if data is None else (_decode_profile(data), n)
        return materialize(key, row, _log_rows(tail, n + 1), group)

    def load(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        """The row plus its key's newer events, folded (``batch.materialize``)."""
        args = self._load_args(visitor_id, customer_id)
        with self.errors("loading a profile"):
            reply = self._load(args=args)
            try:
                found = self._materialize(reply, _Group())
            except _GroupUnread:
                found = self._materialize(reply, _Group(self._group(args=[self.prefix, reply[0]])))
        return None if found is None else found[0]

    async def aload(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        """``load`` without blocking the event loop: the same scripts and errors, over this
        loop's async client."""
        args = self._load_args(visitor_id, customer_id)
        with self.errors("loading a profile"):
            client, load, group = await self._loop_client()
            reply = await load(args=args)
            try:
                found = self._materialize(reply, _Group())
            except _GroupUnread:
                found = self._materialize(reply, _Group(await group(args=[self.prefix, reply[0]])))
        return None if found is None else found[0]

    async def _loop_client(self) -> tuple[Any, Any, Any]:
        """The running loop's async client and scripts, created on first use."""
        loop = asyncio.get_running_loop()
        entry = self._async_clients.get(loop)
        if entry is None:  # no await before the insert: one client per loop
            client = _aredis.Redis.from_url(self._client_url, retry=AsyncRetry(NoBackoff(), 0))
            closer = self._closed_with_loop(loop, client)
            entry = (client, client.register_script(_LOAD), client.register_script(_GROUP), closer)
            with self._async_lock:
                self._async_clients[loop] = entry
            await anext(closer)  # park it (see _closed_with_loop)
        return entry[0], entry[1], entry[2]

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
        """Log the batch (dedupe orders, route, store links); no profile is read or written."""
        if not events:
            return AppendResult()
        events = list(events)
        with self.errors("append"):
            for attempt in range(_MAX_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        source = _WatchedSource(pipe, self.prefix)
                        plan = route_batch(events, source, now=self._clock())
                        # Not watched (every append bumps it); a failed EXEC just leaves a gap.
                        count = len(plan.logged)
                        first_seq = self.client.incrby(f"{self.prefix}seq", count) - count + 1 if count else 0
                        pipe.multi()
                        self._queue_plan(pipe, plan, source.linked, first_seq)
                        pipe.execute()
                        return plan.result
                    except _redis.WatchError:
                        # Another server changed a key this batch read: route it again.
                        time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise StoreError(f"append gave up after {_MAX_ATTEMPTS} conflicting attempts", store=self.url)

    def _queue_plan(self, pipe: Any, plan: BatchPlan, linked: dict[str, str], first_seq: int) -> None:
        p = self.prefix
        if plan.links:  # few commands with many arguments: per-command cost dominates
            pipe.mset({f"{p}l:{v}": c for v, c in plan.links.items()})
            for visitor, customer in plan.links.items():
                if visitor in linked:  # linked to another customer before
                    pipe.srem(f"{p}cv:{linked[visitor]}", visitor)
                pipe.sadd(f"{p}cv:{customer}", visitor)
        if plan.orders:
            pipe.mset({f"{p}o:{order_id}": repr(at) for order_id, at in plan.orders})
        self._queue_log(pipe, plan.rows(), first_seq)
        if plan.result.changed_keys:
            pipe.publish(self.channel, _encode((self._origin, sorted(plan.result.changed_keys))))

    def _queue_log(self, pipe: Any, rows: Sequence[tuple[float, str, str, bytes]], first_seq: int) -> None:
        """Queue the log writes of ``(at, type, routed key, msgpack)`` rows on ``pipe``:
        stream, key lists (``_LOG``) and type logs."""
        if not rows:
            return
        p = self.prefix
        logs: dict[str, dict[bytes, int]] = {}
        keys, args = [self.stream], []
        for seq, (at, tag, key, data) in enumerate(rows, first_seq):
            logs.setdefault(tag, {})[encode_event_member(at, seq, key, data)] = 0
            keys.append(f"{p}k:{key}")
            args += [key, repr(at), tag, data, _ENTRY.pack(seq, at) + data]
        self._log(keys=keys, args=args, client=pipe)
        for tag, members in logs.items():
            pipe.zadd(f"{p}e:{tag}", members)
        pipe.sadd(f"{p}event_types", *logs)

    def append_logged(self, rows: Sequence[tuple[str, float, str, bytes]]) -> None:
        """Log already routed ``(type, at, profile key, msgpack)`` rows as they are, for
        ``migrate``: the compactors fold them like appended events."""
        count = len(rows)
        with self.errors("logging events"):
            first_seq = self.client.incrby(f"{self.prefix}seq", count) - count + 1
            with self.client.pipeline(transaction=True) as pipe:
                self._queue_log(pipe, [(at, tag, key, data) for tag, at, key, data in rows], first_seq)
                pipe.execute()

    def add_links(self, links: Sequence[tuple[str, str]]) -> None:
        """Store visitor -> customer links as they are (``migrate``), with the reverse index."""
        p = self.prefix
        with self.errors("writing links"), self.client.pipeline(transaction=True) as pipe:
            pipe.mset({f"{p}l:{visitor}": customer for visitor, customer in links})
            for visitor, customer in links:
                pipe.sadd(f"{p}cv:{customer}", visitor)
            pipe.execute()

    # -- compaction (CompactingStore) --
    def compact(self, *, max_events: int = COMPACT_CHUNK, wait: bool = False) -> int:
        """One pass over at most ``max_events`` stream entries: this consumer's own pending
        ones first, then entries a compactor left pending longer than ``claim_idle``, then
        new ones; each touched key group folded and written once, then the entries
        acknowledged. The number taken (0: nothing waited). Never None: every compactor may
        fold (``wait`` is accepted for the protocol)."""
        with self.errors("compaction"):
            try:
                entries = self._take(max_events)
            except _redis.ResponseError as exc:
                if not str(exc).startswith("NOGROUP"):
                    raise
                # Redis lost the group (restarted without persistence, flushed): start afresh.
                self._create_group()
                entries = self._take(max_events)
            if not entries:
                return 0
            keys = {fields[b"key"].decode() for _, fields in entries if fields}
            visitors = sorted(key[2:] for key in keys if key.startswith("v:"))
            links = dict(zip(visitors, self.client.mget([self._key("l", v) for v in visitors]))) if visitors else {}
            groups = {f"c:{links[key[2:]].decode()}" if key.startswith("v:") and links.get(key[2:]) else key
                      for key in keys}
            self._fold_groups(sorted(groups))
            ids = [entry_id for entry_id, _ in entries]
            for chunk in _chunks(ids):
                self.client.xack(self.stream, GROUP, *chunk)
            self._trim()
            return len(entries)

    def _take(self, count: int) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """Up to ``count`` entries for this consumer: its own pending (a failed pass), then
        stale ones of other consumers (``XAUTOCLAIM``), then new ones."""
        name, consumer = self.stream, self.consumer
        entries: list[tuple[bytes, Any]] = []
        for _, found in self.client.xreadgroup(GROUP, consumer, {name: "0"}, count=count) or ():
            entries += found
        if len(entries) < count and self.claim_idle >= 0:
            reply = self.client.xautoclaim(name, GROUP, consumer, int(self.claim_idle * 1000),
                                           start_id="0-0", count=count - len(entries))
            entries += [e for e in reply[1] if e is not None]
            deleted = reply[2] if len(reply) > 2 else []  # erased by forget: nothing to fold
            entries += [(entry_id, None) for entry_id in deleted]
        if len(entries) < count:
            for _, found in self.client.xreadgroup(GROUP, consumer, {name: ">"}, count=count - len(entries)) or ():
                entries += found
        unique = dict(entries)  # own pending and claimed may overlap once the claimed are ours
        return [(entry_id, fields or None) for entry_id, fields in unique.items()]

    def _fold_groups(self, groups: list[str]) -> None:
        """Fold each group's tail into its row, unless another compactor did it meanwhile.

        Optimistically all at once: the rows (and visitors' links) are WATCHed, every row
        and tail read in one pipeline (``_LOAD``, which also says whether a visitor is linked
        now), the refolded groups in a second, and every row written in one ``MULTI``. When
        another compactor wrote one of the rows in between, each group is redone alone."""
        p = self.prefix
        for start in range(0, len(groups), _FOLD_CHUNK):
            chunk = groups[start:start + _FOLD_CHUNK]
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*(f"{p}p:{g}" for g in chunk), *(f"{p}l:{g[2:]}" for g in chunk if g[0] == "v"))
                    self._fold_watched(pipe, chunk)
                except _redis.WatchError:
                    for group in chunk:
                        self._fold_group(group)

    def _fold_group(self, group: str) -> None:
        """``_fold_groups`` of one group, again while another compactor writes its row."""
        for attempt in range(_MAX_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(f"{self.prefix}p:{group}", *([f"{self.prefix}l:{group[2:]}"] if group[0] == "v" else []))
                    self._fold_watched(pipe, [group])
                    return
                except _redis.WatchError:
                    time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise StoreError(f"compacting {group} gave up after {_MAX_ATTEMPTS} conflicting attempts", store=self.url)

    def _fold_watched(self, pipe: Any, groups: list[str]) -> None:
        """Read, fold and write ``groups`` whose rows ``pipe`` WATCHes (``WatchError``: one
        of them changed meanwhile)."""
        p = self.prefix
        reads = self.client.pipeline(transaction=False)  # another connection: the WATCH holds
        for group in groups:
            self._load(args=[p, group[0], group[2:]], client=reads)
        # A visitor linked meanwhile loads as its customer: that group holds its events now.
        wanted = set(groups)
        replies = {key: reply for reply in reads.execute() if (key := reply[0].decode()) in wanted}
        found: dict[str, tuple[Profile, int, bool] | None] = {}
        grouped: dict[str, _Group] = {}
        for key, reply in replies.items():
            try:
                found[key] = self._materialize(reply, _Group())
            except _GroupUnread:
                grouped[key] = _Group()
        if grouped:
            reads = self.client.pipeline(transaction=False)
            for key in grouped:
                self._group(args=[p, key], client=reads)
            for reply, key in zip(reads.execute(), grouped):
                grouped[key] = _Group(reply)
            for key, group in grouped.items():
                found[key] = self._materialize(replies[key], group)
        pipe.multi()
        for key, reply in replies.items():
            result = found.get(key)
            if result is None or (reply[2] is not None and result[1] <= int(reply[1])):
                continue  # nothing new (an entry folded already, redelivered)
            profile, folded_to, refolded = result
            pipe.hset(f"{p}p:{key}", mapping={"n": folded_to, "profile": _encode(profile)})
            pipe.zadd(f"{p}profiles", {key: 0})
            if refolded and key[0] == "c" and key in grouped:  # the joined visitors' events are in it now
                joined = [k for k in grouped[key].lists or () if k.startswith("v:")]
                if joined:
                    pipe.delete(*(f"{p}p:{k}" for k in joined))
                    pipe.zrem(f"{p}profiles", *joined)
        pipe.execute()

    def _trim(self) -> None:
        """Drop the stream entries every compactor is done with (below the oldest pending or
        undelivered one); the key lists keep the history."""
        pending = self.client.xpending(self.stream, GROUP)
        if pending["pending"]:
            low = pending["min"]
        else:
            group = next(g for g in self.client.xinfo_groups(self.stream) if g["name"] == GROUP.encode())
            low = _next_id(group["last-delivered-id"])
        self.client.xtrim(self.stream, minid=low, approximate=False)

    @contextmanager
    def compactor_lock(self, *, wait: bool = True) -> Iterator[bool]:
        """Always held (True): the consumer group shares the entries among every compactor,
        so any number may fold at once."""
        yield True

    def catch_up(self, *, timeout: float = CATCH_UP_SECONDS) -> bool:
        """Compact until every entry logged before the call is folded and acknowledged (by
        this or another compactor); False when ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        with self.errors("compaction"):
            last = self.client.xinfo_stream(self.stream)["last-generated-id"]
        while not self._folded_up_to(last):
            if not self.compact():  # what is left is another compactor's, folding now
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
        return True

    def _folded_up_to(self, last: bytes) -> bool:
        with self.errors("compaction"):
            group = next(g for g in self.client.xinfo_groups(self.stream) if g["name"] == GROUP.encode())
            delivered = tuple(map(int, group["last-delivered-id"].split(b"-")))
            if delivered < tuple(map(int, last.split(b"-"))):
                return False
            return not self.client.xpending_range(self.stream, GROUP, min="-", max=last, count=1)

    def compaction_position(self) -> tuple[int, int]:
        """``(folded, logged)``: ``logged`` the number of events ever added to the stream,
        ``folded`` that minus what waits (pending with a compactor, or not yet delivered)."""
        with self.errors("reading the compaction position"):
            logged = int(self.client.xinfo_stream(self.stream)["entries-added"])
            group = next(g for g in self.client.xinfo_groups(self.stream) if g["name"] == GROUP.encode())
            lag = group.get("lag")
            if lag is None:  # unknown after an XDEL (forget) past the group's position: count
                lag = len(self.client.xrange(self.stream, "(" + group["last-delivered-id"].decode(), "+"))
            return logged - int(group["pending"]) - int(lag), logged

    # -- reads --
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
        """Every row, after the compactors caught up with the log (like SQLite's)."""
        self.catch_up()
        for keys in self._page_lex(f"{self.prefix}profiles", "-", batch_size):
            with self.errors("reading profiles"):
                pipe = self.client.pipeline(transaction=False)
                for key in keys:
                    pipe.hget(f"{self.prefix}p:{key.decode()}", "profile")
                found = pipe.execute()
            for data in found:
                if data is not None:  # deleted (joined by identify) since the page was read
                    yield _decode_profile(data)

    def count_profiles(self) -> int:
        self.catch_up()
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
        refuse_reserved_meta((name,))
        with self.errors("writing meta"):
            self.client.set(self._key("meta", name), bytes(value))

    def meta_names(self, prefix: str) -> list[str]:
        with self.errors("listing meta"):
            return [name for name, _ in self._meta_keys(prefix)]

    def update_meta(self, values: Mapping[str, bytes], delete: Collection[str] = ()) -> None:
        refuse_reserved_meta([*values, *delete])
        with self.errors("writing meta"):
            pipe = self.client.pipeline(transaction=True)  # MULTI/EXEC: all or nothing
            if delete:
                pipe.delete(*(self._key("meta", name) for name in delete))
            for name, value in values.items():
                pipe.set(self._key("meta", name), bytes(value))
            pipe.execute()

    def delete_meta(self, name: str) -> None:
        refuse_reserved_meta((name,))
        with self.errors("deleting meta"):
            self.client.delete(self._key("meta", name))

    # -- PersonalDataStore --
    def _person(self, customer_id: str | None, visitor_id: str | None,
                pipe: Any = None) -> tuple[PersonalData, list[tuple[str, bytes]], list[bytes]]:
        """The person's data, their type-log ``(type, member)`` pairs and stream ids; with
        ``pipe`` (``forget``), every key read is WATCHed on it first."""
        reader = pipe if pipe is not None else self.client

        def read(*names: str) -> None:
            if pipe is not None:  # WATCH puts the pipeline in immediate mode: reads run at once
                pipe.watch(*names)

        def link_of(visitor: str) -> str | None:
            read(self._key("l", visitor))
            found = reader.get(self._key("l", visitor))
            return None if found is None else found.decode()

        def visitors_of(customer: str) -> list[str]:
            read(self._key("cv", customer))
            return [v.decode() for v in reader.smembers(self._key("cv", customer))]

        customer, visitors = resolve_person(customer_id, visitor_id, link_of=link_of, visitors_of=visitors_of)
        data = PersonalData(customer_id=customer, visitor_ids=visitors)
        keys = sorted(data.keys)
        link_names = [self._key("l", v) for v in visitors]
        read(*(self._key("p", k) for k in keys), *(self._key("k", k) for k in keys), *link_names)
        if link_names:
            data.links = {v: c.decode() for v, c in zip(visitors, reader.mget(link_names)) if c is not None}
        rows: list[tuple[float, int, str, bytes, bytes]] = []  # at, seq, key, data, stream id
        for key in keys:
            for entry in reader.lrange(self._key("k", key), 0, -1):
                entry_id, seq, at, raw = _decode_entry(entry)
                rows.append((at, seq, key, raw, entry_id))
        rows.sort()
        data.events = [_decode_event(raw) for _, _, _, raw, _ in rows]
        members = [(type(e).__struct_config__.tag, encode_event_member(at, seq, key, raw))  # type: ignore[union-attr]
                   for e, (at, seq, key, raw, _) in zip(data.events, rows)]
        # Rows with their tails folded; a linked visitor's events are its customer's profile.
        for key in keys:
            if key.startswith("v:") and key[2:] in data.links:
                continue
            reply = [key, *self._row_and_tail(reader, key)]
            try:
                found = self._materialize(reply, _Group())
            except _GroupUnread:
                found = self._materialize(reply, _Group(self._group(args=[self.prefix, key])))
            if found is not None:
                data.profiles.append(found[0])
        return data, members, [entry_id for *_, entry_id in rows]

    def _row_and_tail(self, reader: Any, key: str) -> tuple[int, bytes | None, list[bytes]]:
        n_raw, data = reader.hmget(self._key("p", key), "n", "profile")
        n = int(n_raw or 0)
        return n, data, reader.lrange(self._key("k", key), n, -1)

    def export(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        with self.errors("exporting a person"):
            data = self._person(customer_id, visitor_id)[0]
            data.report_states = report_state_names(name for name, _ in self._report_states())
            return data

    def _report_states(self) -> list[tuple[str, bytes]]:
        """``(meta name, Redis key)`` of every saved report state and part."""
        return self._meta_keys(REPORT_STATE_META_PREFIX)

    def _meta_keys(self, prefix: str) -> list[tuple[str, bytes]]:
        """``(meta name, Redis key)`` of every meta blob whose name starts with ``prefix``, sorted."""
        meta = f"{self.prefix}meta:"
        found = self.client.scan_iter(match=_glob_escape(meta + prefix) + "*", count=1000)
        return sorted((key[len(meta.encode()):].decode(), key) for key in found)

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        p = self.prefix
        with self.errors("forgetting a person"):
            for attempt in range(_MAX_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        data, members, ids = self._person(customer_id, visitor_id, pipe)
                        states = self._report_states()
                        data.report_states = report_state_names(name for name, _ in states)
                        keys = sorted(data.keys)
                        rows = [self._key("p", k) for k in keys]
                        pipe.multi()
                        for row in rows:  # a write the compactors' WATCH sees even without a row
                            pipe.hset(row, "n", 0)
                        pipe.delete(*rows, *(self._key("k", k) for k in keys), *(key for _, key in states),
                                    *(self._key("l", v) for v in data.links))
                        if data.customer_id is not None:
                            pipe.delete(self._key("cv", data.customer_id))
                        pipe.zrem(f"{p}profiles", *keys)
                        by_type: dict[str, list[bytes]] = {}
                        for tag, member in members:
                            by_type.setdefault(tag, []).append(member)
                        for tag, tagged in by_type.items():
                            for chunk in _chunks(tagged):
                                pipe.zrem(f"{p}e:{tag}", *chunk)
                        for chunk in _chunks(ids):
                            pipe.xdel(self.stream, *chunk)
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
        # Leave the consumer group tidy: a compactor with nothing pending leaves no trace
        # (one with pending entries stays, for another to claim them).
        with contextlib.suppress(_redis.RedisError):
            consumers = self.client.xinfo_consumers(self.stream, GROUP)
            if any(c["name"] == self.consumer.encode() and not c["pending"] for c in consumers):
                self.client.xgroup_delconsumer(self.stream, GROUP, self.consumer)
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
