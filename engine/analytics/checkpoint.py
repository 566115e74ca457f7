"""Report checkpoints: the attribution state saved in the store, so the next report reads only
the events logged after it instead of the whole log.

A report is one pass over the event log in time order. Reading it is the cost (millions of
events), and yesterday's part of the pass gives the same totals today. So a report that read
many events saves the ``Attributor``'s state as it stood at a *position* (a time): every
event with ``since <= at < position`` is in it. The next report with the same window,
campaign filter and ``since`` restores that state and reads only the events from the
position on. The state is bounded like the pass itself: the people seen within the window,
the links and the totals (about 250 bytes an active person, most of it the skus shown).

Events do not always arrive in time order: the shop posts an order a few minutes late, an
import backfills last month. So the position trails the report's end by ``SETTLE_SECONDS``
(late events within that never touch a checkpoint), and a checkpoint carries the store's
*event fingerprint* for the events before its position (``ReportStateStore.event_fingerprint``:
it changes when such an event is added or removed). A report that finds the fingerprint
changed ignores the checkpoint, reads the whole log and saves a new one: a checkpoint can make
a report faster, never different. A store that is no ``ReportStateStore`` gets no checkpoints.

Saved in parts, so a refresh writes what changed. A state of 10M events' week holds ~800,000
people (200 MB); a refresh an hour later meets a few percent of them. The people are kept in
activity order, and a resumed pass leaves the ones it does not meet encoded and in place
(``AttributorState``), so the state is saved as a *head* (totals, links, buyers' history) in
the checkpoint's own meta blob and the people in *parts* of about ``2**PART_BITS`` each, each
its own meta blob named by its digest. A part ends after a person whose key's crc32 has its
low ``PART_BITS`` bits zero, so the cuts move with the people rather than with positions:
after a refresh, every part whose people were neither met nor swept is the very part that was
loaded, and it is not encoded or written again. Loading leaves the people of each part
encoded and out of the attributor's tables (``attribution.RestingPart``: only a key -> part
index is built), so a refresh spends nothing per person it does not meet, when it resumes,
when it saves, or when it lets the state go. The new parts, the head and the deletion of the
parts no head names any more (replaced, or left by an older save) are one write
(``ReportStateStore.update_meta``: one transaction, one sync, where a sync per part took
seconds for a first report's 200 parts), so the head never names a part that is not there.
The head's digest and each part's crc32 are checked when they are loaded: a damaged or
missing part makes the report read the whole log.

Erasing a person (``PersonalDataStore.forget``) drops every checkpoint, parts included: the
state holds the person's entries (their keys, runs and links) inside totals that cannot be
split by person, and removing their events changes the fingerprint anyway. The next report
reads the whole log without them and saves a new checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Iterator
from datetime import datetime
from itertools import compress, count, repeat
from operator import and_, not_

import msgspec

from ..stores.base import REPORT_STATE_META_PREFIX, ProfileStore, ReportStateStore
from .attribution import Attributor, AttributorState, RestingPart

__all__ = ["SETTLE_SECONDS", "MIN_EVENTS", "ReportCheckpoint", "saved_state"]

log = logging.getLogger("segmint.analytics")

#: The checkpoint position trails the report's end by this much (events that arrive late by
#: less than this never invalidate a checkpoint).
SETTLE_SECONDS = 3600.0
#: A report saves a checkpoint when it read at least this many events before the position
#: (saving costs less than reading them did: the state holds at most one entry per person read).
MIN_EVENTS = 100_000
#: Bumped when attribution changes what its state means (or how it is saved): older
#: checkpoints are then ignored.
FORMAT = 4
#: People are saved in parts of about 2**PART_BITS (see the docstring): ~1 MB each.
PART_BITS = 12


class _PartRef(msgspec.Struct, array_like=True, frozen=True):
    """A part of the saved people: ``digest`` (blake2b) names it, ``check`` (its crc32) catches
    damage when it is loaded (six times faster than hashing 200 MB again)."""

    digest: bytes
    check: int


class _Saved(msgspec.Struct, array_like=True):
    format: int
    window_days: float
    campaign: str | None
    since: float | None
    position: float
    fingerprint: list[float]
    #: blake2b of ``head``: damage must be caught before resuming, not halfway through a report.
    digest: bytes
    head: msgspec.Raw  # an encoded AttributorState without its people
    #: The people's parts, in activity order (each part's meta blob is ``<checkpoint>/<digest hex>``).
    parts: list[_PartRef]


class _Part(msgspec.Struct, array_like=True):
    """Consecutive people of a state: their keys and encodings (``AttributorState.people``)."""

    keys: list[str]
    people: list[bytes]


class _LazyPart(msgspec.Struct, array_like=True):
    """A ``_Part`` read with its people left encoded (``RestingPart`` decodes them if needed)."""

    keys: list[str]
    people: msgspec.Raw


_encode = msgspec.msgpack.Encoder().encode
_decode_saved = msgspec.msgpack.Decoder(_Saved).decode
_decode_part = msgspec.msgpack.Decoder(_Part).decode
_decode_lazy_part = msgspec.msgpack.Decoder(_LazyPart).decode
_decode_state = msgspec.msgpack.Decoder(AttributorState).decode


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _part_ends(keys: list[str]) -> Iterator[int]:
    """The positions just after each key that ends a part (its crc32's low ``PART_BITS`` bits
    are zero), found by C-level maps: a first report cuts 800,000 keys."""
    crcs = map(zlib.crc32, map(str.encode, keys))
    return compress(count(1), map(not_, map(and_, crcs, repeat((1 << PART_BITS) - 1))))


class ReportCheckpoint:
    """The saved state of one kind of report (window, campaign filter, ``since``) in a store."""

    def __init__(self, store: ProfileStore, *, window_days: float, campaign: str | None,
                 since: datetime | None) -> None:
        self.store = store
        self.window_days, self.campaign = float(window_days), campaign
        self.since = since.timestamp() if since is not None else None
        self._states: ReportStateStore | None = store if isinstance(store, ReportStateStore) else None
        key = msgspec.msgpack.encode([self.window_days, campaign, self.since])
        self.meta_name = REPORT_STATE_META_PREFIX + hashlib.blake2b(key, digest_size=8).hexdigest()
        #: The position of a valid checkpoint too late for the report at hand (not overwritten).
        self.later_position: float | None = None

    @property
    def supported(self) -> bool:
        """True when the store can keep a saved state (a ``ReportStateStore``)."""
        return self._states is not None

    def fingerprint(self, position: float) -> list[float]:
        assert self._states is not None
        return [float(x) for x in self._states.event_fingerprint(position)]

    def find(self, limit: float) -> _Saved | None:
        """The saved checkpoint, if one is saved, still valid and not past ``limit`` (the end
        of the report at hand): its ``position`` is where the report reads from. Cheap: the
        head only; ``load`` reads the people."""
        if not self.supported:
            return None
        data = self.store.get_meta(self.meta_name)
        if data is None:
            return None
        try:
            saved = _decode_saved(data)
        except (msgspec.DecodeError, ValueError) as exc:
            log.warning("report checkpoint %s is unreadable (%s); reading the whole event log",
                        self.meta_name, exc)
            return None
        if (saved.format, saved.window_days, saved.campaign, saved.since) != (
                FORMAT, self.window_days, self.campaign, self.since):
            return None
        if saved.position > limit:
            if saved.fingerprint == self.fingerprint(saved.position):
                self.later_position = saved.position
            return None
        if saved.fingerprint != self.fingerprint(saved.position):
            log.info("events before the report checkpoint changed (a late or imported event); "
                     "reading the whole event log")
            return None
        return saved

    def load(self, saved: _Saved) -> Attributor | None:
        """The attributor ``saved`` (from ``find``) holds, its parts read and checked (their
        people stay encoded and out of the attributor's tables until met: ``RestingPart``);
        None, logged, when one is missing or damaged (the report then reads from ``since``)."""
        try:
            head = _head(saved)
            resting = []
            for ref in saved.parts:
                part = _decode_lazy_part(_part_data(self.store, self.meta_name, ref))
                resting.append(RestingPart(part.keys, part.people, ref))
            return Attributor.from_state(head, resting=resting)
        except (KeyError, ValueError, TypeError, msgspec.DecodeError) as exc:
            log.warning("report checkpoint %s is inconsistent (%r); reading the whole event log",
                        self.meta_name, exc)
            return None

    @staticmethod
    def _parts(segments: list[RestingPart]) -> list[tuple[_PartRef, bytes | None]]:
        """The people (``Attributor.people_segments``) as parts: ``(reference, encoded part)``,
        the encoding None for a part kept as it was loaded; the others cut after each key
        that ends a part, and at the end of their segment."""
        parts: list[tuple[_PartRef, bytes | None]] = []
        for segment in segments:
            if isinstance(segment.tag, _PartRef):
                parts.append((segment.tag, None))
                continue
            keys, people = segment.keys, segment.people
            start = 0
            for end in [*_part_ends(keys), len(keys)]:
                if end > start:
                    data = _encode(_Part(keys[start:end], people[start:end]))
                    parts.append((_PartRef(_digest(data), zlib.crc32(data)), data))
                    start = end
        return parts

    def save(self, attributor: Attributor, position: float, fingerprint: list[float], *, read: int) -> bool:
        """Save ``attributor`` (fed every event before ``position``) when this pass ``read`` at
        least ``MIN_EVENTS`` events and no later valid checkpoint is saved already;
        ``fingerprint`` must be taken before the events were read.

        Nothing is saved when the events before ``position`` changed meanwhile (a late event,
        or a person erased while the pass ran: the state would hold them), and what was
        written is deleted again when they change while it is written."""
        if read < MIN_EVENTS or (self.later_position is not None and self.later_position >= position):
            return False
        assert self._states is not None
        if self.fingerprint(position) != fingerprint:
            log.info("events before the report checkpoint changed while the report read; not saving it")
            return False
        parts = self._parts(attributor.people_segments())
        head = _encode(attributor.state(people=False))
        saved = _Saved(FORMAT, self.window_days, self.campaign, self.since, position, fingerprint,
                       _digest(head), msgspec.Raw(head), [ref for ref, _ in parts])
        try:
            named = {_part_name(self.meta_name, ref.digest) for ref, _ in parts}
            written = {_part_name(self.meta_name, ref.digest): data for ref, data in parts if data is not None}
            # One write: the new parts, the head naming them, and the parts no head names any more.
            self._states.update_meta({**written, self.meta_name: _encode(saved)},
                                     delete=[name for name in self._states.meta_names(self.meta_name + "/")
                                             if name not in named])
            if self.fingerprint(position) != fingerprint:  # erased or logged while writing
                self._states.update_meta({}, delete=[self.meta_name, *named])
                return False
        except Exception as exc:  # noqa: BLE001 - saving only speeds up the next report
            log.warning("could not save the report state (%s); the next report reads the whole log", exc)
            return False
        return True


def saved_state(store: ProfileStore, name: str) -> AttributorState | None:
    """The attribution state saved under the meta ``name`` (a privacy export looks inside);
    None when there is none or it is unreadable (no report resumes that one)."""
    data = store.get_meta(name)
    if data is None:
        return None
    try:
        return _load(store, name, _decode_saved(data))
    except (msgspec.DecodeError, KeyError, ValueError, TypeError):
        return None


def _part_name(name: str, digest: bytes) -> str:
    return f"{name}/{digest.hex()}"


def _head(saved: _Saved) -> AttributorState:
    """The state ``saved`` holds without its people, checked against its digest."""
    if _digest(saved.head) != saved.digest:
        raise ValueError("its digest does not match")
    return _decode_state(saved.head)


def _part_data(store: ProfileStore, name: str, ref: _PartRef) -> bytes:
    """The encoded part ``ref`` of the state saved as ``name``, checked against its crc32."""
    data = store.get_meta(_part_name(name, ref.digest))
    if data is None or zlib.crc32(data) != ref.check:
        raise ValueError(f"its part {ref.digest.hex()} is {'missing' if data is None else 'damaged'}"
                         " (its checksum does not match)")
    return data


def _load(store: ProfileStore, name: str, saved: _Saved) -> AttributorState:
    """The whole state ``saved`` (the meta blob ``name``) holds, every part read and checked."""
    state = _head(saved)
    for ref in saved.parts:
        part = _decode_part(_part_data(store, name, ref))
        if not part.keys or len(part.keys) != len(part.people):
            raise ValueError(f"its part {ref.digest.hex()} is malformed")
        state.people_keys += part.keys
        state.people += part.people
    return state
