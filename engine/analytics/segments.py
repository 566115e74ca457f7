"""Segment analytics: how big each segment is, day by day, and how segments overlap.

``snapshot_segments`` streams every stored profile once, evaluates every named segment on the
profile's document and counts members and pairwise overlaps (profiles in both of two
segments). The day's snapshot is kept in the store's meta table as ``segments:YYYY-MM-DD``
and its sizes are appended to a small history blob (``segments:history``, at most
``MAX_HISTORY_DAYS`` days) that ``segment_history`` reads back for a chart or a table.
Run it once a day (``segmint segments CONFIG --snapshot`` from cron).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import combinations
from typing import Any

from ..filters import FilterSet
from ..profile import Profile
from ..stores.base import ProfileStore

__all__ = ["SegmentSnapshot", "count_segments", "snapshot_segments", "segment_history",
           "load_snapshot", "HISTORY_META", "MAX_HISTORY_DAYS"]

HISTORY_META = "segments:history"
MAX_HISTORY_DAYS = 400


@dataclass(frozen=True, slots=True)
class SegmentSnapshot:
    """Members per segment on ``day``; ``overlap[(a, b)]`` (a < b) = profiles in both."""

    day: date
    profiles: int
    sizes: dict[str, int]
    overlap: dict[tuple[str, str], int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "profiles": self.profiles, "sizes": dict(self.sizes),
                "overlap": [{"a": a, "b": b, "both": n} for (a, b), n in sorted(self.overlap.items())]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentSnapshot:
        return cls(day=date.fromisoformat(data["day"]), profiles=int(data["profiles"]),
                   sizes={str(k): int(v) for k, v in data["sizes"].items()},
                   overlap={(o["a"], o["b"]): int(o["both"]) for o in data.get("overlap", ())})


def count_segments(profiles: Iterable[Profile], names: Iterable[str],
                   member_of: Callable[[Profile], Iterable[str]], day: date) -> SegmentSnapshot:
    """Count members and pairwise overlaps in one pass; ``member_of`` names a profile's segments."""
    ordered = sorted(names)
    sizes = dict.fromkeys(ordered, 0)
    overlap: dict[tuple[str, str], int] = {}
    total = 0
    for profile in profiles:
        total += 1
        members = sorted(member_of(profile))
        for name in members:
            sizes[name] += 1
        for pair in combinations(members, 2):
            overlap[pair] = overlap.get(pair, 0) + 1
    return SegmentSnapshot(day=day, profiles=total, sizes=sizes, overlap=overlap)


def snapshot_segments(runtime: Any, now: datetime, *, store_result: bool = True) -> SegmentSnapshot:
    """Evaluate every named segment of ``runtime`` over every stored profile; keep the day's counts.

    ``runtime`` is a ``Segmint`` (``store``, ``state.segments``, ``document_builder(now, only=)``).
    """
    segments = runtime.state.segments
    together = FilterSet(segments)  # every segment in one generated function
    fields = together.fields  # what any of them reads

    document = runtime.document_builder(now, only=fields)

    def member_of(profile: Profile) -> list[str]:
        return together.matching(document(profile), now)

    snapshot = count_segments(runtime.store.iter_profiles(), segments, member_of, now.date())
    if store_result:
        _store(runtime.store, snapshot)
    return snapshot


def _store(store: ProfileStore, snapshot: SegmentSnapshot) -> None:
    store.set_meta(f"segments:{snapshot.day.isoformat()}", json.dumps(snapshot.to_dict()).encode())
    history = [h for h in _history_entries(store) if h["day"] != snapshot.day.isoformat()]
    history.append({"day": snapshot.day.isoformat(), "profiles": snapshot.profiles, "sizes": snapshot.sizes})
    history.sort(key=lambda h: h["day"])
    store.set_meta(HISTORY_META, json.dumps(history[-MAX_HISTORY_DAYS:]).encode())


def _history_entries(store: ProfileStore) -> list[dict[str, Any]]:
    raw = store.get_meta(HISTORY_META)
    return json.loads(raw) if raw else []


def segment_history(store: ProfileStore) -> list[SegmentSnapshot]:
    """Every stored daily snapshot, oldest first (sizes only; overlap via ``load_snapshot``)."""
    return [SegmentSnapshot.from_dict(entry) for entry in _history_entries(store)]


def load_snapshot(store: ProfileStore, day: date) -> SegmentSnapshot | None:
    """The full snapshot (with overlap) of ``day``, or None when none was taken that day."""
    raw = store.get_meta(f"segments:{day.isoformat()}")
    return SegmentSnapshot.from_dict(json.loads(raw)) if raw else None
