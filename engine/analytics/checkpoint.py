"""Report checkpoints: the attribution state saved in the store, so the next report reads only
the events logged after it instead of the whole log.

A report is one pass over the event log in time order. Reading it is the cost (millions of
events), and yesterday's part of the pass gives the same totals today. So a report that read
many events saves the ``Attributor``'s state as it stood at a *position* (a time): every
event with ``since <= at < position`` is in it. The next report with the same window,
campaign filter and ``since`` restores that state and reads only the events from the
position on. The state is bounded like the pass itself: the people seen within the window,
the links and the totals (about 180 bytes an active person, most of it the skus shown).

Events do not always arrive in time order: the shop posts an order a few minutes late, an
import backfills last month. So the position trails the report's end by ``SETTLE_SECONDS``
(late events within that never touch a checkpoint), and a checkpoint carries the store's
*event fingerprint* for the events before its position (``store.event_fingerprint``: it
changes when such an event is added or removed). A report that finds the fingerprint changed
ignores the checkpoint, reads the whole log and saves a new one: a checkpoint can make a
report faster, never different. A store without ``event_fingerprint`` gets no checkpoints.

Erasing a person (``PersonalDataStore.forget``) drops every checkpoint: the state holds the
person's entries (their keys, runs and links) inside totals that cannot be split by person,
and removing their events changes the fingerprint anyway. The next report reads the whole
log without them and saves a new checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from ..stores.base import REPORT_STATE_META_PREFIX, ProfileStore
from .attribution import Attributor, AttributorState

__all__ = ["SETTLE_SECONDS", "MIN_EVENTS", "ReportCheckpoint", "saved_state"]

log = logging.getLogger("segmint.analytics")

#: The checkpoint position trails the report's end by this much (events that arrive late by
#: less than this never invalidate a checkpoint).
SETTLE_SECONDS = 3600.0
#: A report saves a checkpoint when it read at least this many events before the position
#: (saving costs less than reading them did: the state holds at most one entry per person read).
MIN_EVENTS = 100_000
#: Bumped when attribution changes what its state means: older checkpoints are then ignored.
FORMAT = 2


class _Saved(msgspec.Struct, array_like=True):
    format: int
    window_days: float
    campaign: str | None
    since: float | None
    position: float
    fingerprint: list[float]
    #: blake2b of ``state``: people stay encoded until a resumed pass meets them, so damage
    #: must be caught before resuming, not halfway through a report.
    digest: bytes
    state: msgspec.Raw  # an encoded AttributorState


class ReportCheckpoint:
    """The saved state of one kind of report (window, campaign filter, ``since``) in a store."""

    def __init__(self, store: ProfileStore, *, window_days: float, campaign: str | None,
                 since: datetime | None) -> None:
        self.store = store
        self.window_days, self.campaign = float(window_days), campaign
        self.since = since.timestamp() if since is not None else None
        self._fingerprint: Callable[[float], Sequence[float]] | None = getattr(store, "event_fingerprint", None)
        key = msgspec.msgpack.encode([self.window_days, campaign, self.since])
        self.meta_name = REPORT_STATE_META_PREFIX + hashlib.blake2b(key, digest_size=8).hexdigest()
        #: The position of a valid checkpoint too late for the report at hand (not overwritten).
        self.later_position: float | None = None

    @property
    def supported(self) -> bool:
        """True when the store can tell whether its past events changed (``event_fingerprint``)."""
        return self._fingerprint is not None

    def fingerprint(self, position: float) -> list[float]:
        assert self._fingerprint is not None
        return [float(x) for x in self._fingerprint(position)]

    def resume(self, limit: float) -> tuple[Attributor, float] | None:
        """The saved attributor and its position, if one is saved, still valid and not past
        ``limit`` (the end of the report at hand); None means: read from ``since``."""
        if not self.supported:
            return None
        data = self.store.get_meta(self.meta_name)
        if data is None:
            return None
        try:
            saved = msgspec.msgpack.decode(data, type=_Saved)
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
        try:
            if hashlib.blake2b(saved.state, digest_size=16).digest() != saved.digest:
                raise ValueError("its digest does not match")
            state = msgspec.msgpack.decode(saved.state, type=AttributorState)
            return Attributor.from_state(state), saved.position
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("report checkpoint %s is inconsistent (%r); reading the whole event log",
                        self.meta_name, exc)
            return None

    def save(self, attributor: Attributor, position: float, fingerprint: list[float], *, read: int) -> bool:
        """Save ``attributor`` (fed every event before ``position``) when this pass ``read`` at
        least ``MIN_EVENTS`` events and no later valid checkpoint is saved already;
        ``fingerprint`` must be taken before the events were read."""
        if read < MIN_EVENTS or (self.later_position is not None and self.later_position >= position):
            return False
        state = msgspec.msgpack.encode(attributor.state())
        saved = _Saved(FORMAT, self.window_days, self.campaign, self.since, position, fingerprint,
                       hashlib.blake2b(state, digest_size=16).digest(), msgspec.Raw(state))
        try:
            self.store.set_meta(self.meta_name, msgspec.msgpack.encode(saved))
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
        return msgspec.msgpack.decode(msgspec.msgpack.decode(data, type=_Saved).state, type=AttributorState)
    except (msgspec.DecodeError, ValueError):
        return None
