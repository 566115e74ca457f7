"""Segment membership: every segment of the demo config, per profile, against other evaluators.

Profiles are the demo shop's synthetic customers and visitors (``segmint demo``'s seeder,
folded through the store) from several seeds, evaluated at a fixed ``now`` by the runtime
built from ``examples/segmint.toml``: documents from ``Segmint.document(profile, now)`` and
the segments as the runtime tests them all (``rt.state.segment_set``: one generated function
for every segment, as ``Segmint.segments`` and segment snapshots use it). The same segment filters run under the
GrowthBook Python SDK's ``evalCondition`` and mongoquery on the same documents.

Two figures per peer, in microseconds per profile (all segments):

- evaluation only: the documents are built once beforehand;
- with document build: each contender builds the document from the profile first (what a
  page view pays). Peers evaluate JSON-style attributes, so they also pay converting the
  one date field their filters read (``customer_segment.last_purchase_date``) to epoch
  seconds, and relative dates (``today-14d``) are resolved to epoch seconds once up front.

``ratio`` is peer time / our time. Target: at least 10x faster than GrowthBook on
evaluation; the document build is shared work, so that figure is reported for information.
Every peer must find exactly the same members of every segment. Times are CPU time of this
process (see ``bench_profiles.cpu_clock``), median over interleaved chunks.

Run alone: ``python -m benchmarks.bench_segments [--quick]``.
"""

from __future__ import annotations

import gc
import re
import statistics
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from segmint.engine.profile import Profile
from segmint.engine.runtime import Segmint

from .bench_profiles import CONFIG, NOW, cpu_seconds, demo_store, row

TARGET = 10.0
_RELATIVE_DAYS = re.compile(r"(now|today)(?:([+-]\d+)d)?")
DATE_FIELD = ("customer_segment", "last_purchase_date")


def _resolve_dates(spec: Any, now: datetime) -> Any:
    """The spec with relative date operands (``today-14d``) turned into epoch seconds (peers' JSON dates)."""
    if isinstance(spec, Mapping):
        return {key: _resolve_dates(value, now) for key, value in spec.items()}
    if isinstance(spec, list):
        return [_resolve_dates(value, now) for value in spec]
    match = _RELATIVE_DAYS.fullmatch(spec) if isinstance(spec, str) else None
    if match:  # written here independently of segmint, so a wrong resolution shows as a mismatch
        base = now.replace(hour=0, minute=0, second=0, microsecond=0) if match[1] == "today" else now
        return (base + int(match[2] or 0) * timedelta(days=1)).timestamp()
    return spec


def peer_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as a JSON-attribute evaluator needs it: the filtered date as epoch seconds."""
    group, name = DATE_FIELD
    section = doc.get(group)
    if section and name in section:
        doc = dict(doc)
        doc[group] = {**section, name: section[name].timestamp()}
    return doc


def _peers(specs: dict[str, Any]) -> dict[str, Callable[[dict[str, Any]], list[bool]]]:
    """Peer name -> (peer document -> membership of every segment, in ``specs`` order)."""
    peers: dict[str, Callable[[dict[str, Any]], list[bool]]] = {}
    try:
        from growthbook.core import evalCondition

        conditions = list(specs.values())
        peers["growthbook evalCondition"] = lambda d: [evalCondition(d, c) for c in conditions]
    except ImportError:
        print("bench_segments: growthbook not installed, skipped", file=sys.stderr)
    try:
        import mongoquery

        queries = [mongoquery.Query(spec).match for spec in specs.values()]
        peers["mongoquery"] = lambda d: [match(d) for match in queries]
    except ImportError:
        print("bench_segments: mongoquery not installed, skipped", file=sys.stderr)
    return peers


def _population(seeds: int) -> tuple[Segmint, list[Profile]]:
    """The runtime (RFM thresholds from the first seed's shop) and every seed's profiles."""
    stores = [demo_store(seed=42 + i) for i in range(seeds)]
    rt = Segmint.from_config(CONFIG, store=stores[0], clock=lambda: NOW, watch=False)
    return rt, [p for store in stores for p in store.iter_profiles()]


def run(quick: bool) -> list[dict[str, Any]]:
    rt, profiles = _population(seeds=2 if quick else 10)
    try:
        return _measure(rt, profiles, rounds=3 if quick else 5)
    finally:
        rt.close()


def _measure(rt: Segmint, profiles: list[Profile], rounds: int, chunk: int = 200) -> list[dict[str, Any]]:
    now = NOW
    segments = rt.state.segments
    names = list(segments)
    members = rt.state.segment_set.members  # every segment in one generated function
    peer_specs = {name: _resolve_dates(f.spec, now) for name, f in segments.items()}
    peers = _peers(peer_specs)
    document = rt.document
    docs = [document(p, now) for p in profiles]
    peer_docs = [peer_view(d) for d in docs]

    def ours_eval(part: range) -> list[list[bool]]:
        return [members(docs[i], now) for i in part]

    def ours_full(part: range) -> list[list[bool]]:
        out = []
        for i in part:
            doc = document(profiles[i], now)
            out.append(members(doc, now))
        return out

    def peer_eval(evaluate: Callable[[dict[str, Any]], list[bool]]) -> Callable[[range], list[list[bool]]]:
        return lambda part: [evaluate(peer_docs[i]) for i in part]

    def peer_full(evaluate: Callable[[dict[str, Any]], list[bool]]) -> Callable[[range], list[list[bool]]]:
        return lambda part: [evaluate(peer_view(document(profiles[i], now))) for i in part]

    contenders: dict[tuple[str, str], Callable[[range], list[list[bool]]]] = {
        ("segmint", "eval"): ours_eval, ("segmint", "full"): ours_full,
    }
    for peer, evaluate in peers.items():
        contenders[(peer, "eval")] = peer_eval(evaluate)
        contenders[(peer, "full")] = peer_full(evaluate)

    # Correctness first: every contender finds the same members of every segment.
    everything = range(len(profiles))
    expected = ours_eval(everything)
    sizes = {name: sum(m[j] for m in expected) for j, name in enumerate(names)}
    for key, fn in contenders.items():
        got = fn(everything)
        if got != expected:
            bad = next(n for j, n in enumerate(names) if [m[j] for m in got] != [m[j] for m in expected])
            count = sum(m[names.index(bad)] for m in got)
            raise AssertionError(f"{key[0]} ({key[1]}): segment {bad!r} has {count} members, segmint {sizes[bad]}")
    if not all(sizes.values()):
        raise AssertionError(f"a segment has no member, the comparison would be hollow: {sizes}")

    # Everything built so far lives until the end: keep the per-sample collection cheap.
    gc.collect()
    gc.freeze()
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in contenders}
    for r in range(rounds):
        for start in range(0, len(profiles), chunk):
            part = range(start, min(start + chunk, len(profiles)))
            order = list(contenders) if (r + start // chunk) % 2 == 0 else list(reversed(contenders))
            for key in order:
                samples[key].append(cpu_seconds(lambda: contenders[key](part)) / len(part) * 1e6)
    gc.unfreeze()
    median = {key: statistics.median(values) for key, values in samples.items()}

    rows = []
    figure = f"segment membership, {len(names)} demo segments, {len(profiles):,} profiles"
    for mode, label in (("eval", "evaluation only"), ("full", "with document build")):
        ours = median[("segmint", mode)]
        for peer in peers:
            value = median[(peer, mode)]
            ratio = value / ours
            targeted = peer.startswith("growthbook") and mode == "eval"
            rows.append(row(f"{figure}: {label}", ours, peer, value, ratio, "us/profile",
                            f">= {TARGET:g}x faster" if targeted else "- (info)",
                            ratio >= TARGET if targeted else True, sizes=sizes))
    return rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        print(f"{r['figure'][:80]:80} ours {r['ours']:8.2f} {r['peer'][:24]:24} {r['peer_value']:9.2f} "
              f"x{r['ratio']:<7} {r['target']:18} {'ok' if r['ok'] else 'MISS'}")
    print(r["sizes"])
