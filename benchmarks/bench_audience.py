"""Audience count: one segment's members among 1,000,000 stored profiles (quick: 100,000).

The SQLite file holds clones of the demo shop's profiles under fresh keys (see
``bench_profiles.write_profiles_db``) and the RFM thresholds. Two child processes, run in
turn, stream every profile through the same ``store.iter_profiles()``:

- segmint: exactly what ``segmint audience`` does (``middleware/cli_commands.py``): the
  runtime built from ``examples/segmint.toml``, and per profile
  ``target.matches(document(profile), now)`` with
  ``document = rt.document_builder(now, only=target.fields)`` (the document sections the
  segment reads);
- the floor: a hand-written loop over the same decoded profiles with a hand-written
  predicate on the ``Profile`` fields (no document).

Figures: CPU seconds of the scan in the child (median of the repetitions; the machine is
shared, see ``bench_profiles.cpu_clock``) and its peak RSS after a tenth of the profiles
and at the end. Targets: <= 1.5x the loop; constant memory (the peak grows by less than
16 MB from a tenth of the scan to the end). Both must count the same members.

Run alone: ``python -m benchmarks.bench_audience [--quick]``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .bench_profiles import CONFIG, NOW, child_json, demo_store, peak_rss_mb, row, write_profiles_db

SEGMENT = "lapsed_vip"  # spend.total >= 2000 and days_since_last_purchase >= 45
TARGET = 1.5
MEMORY_GROWTH_MB = 16.0


def lapsed_vip(profile: Any, ts: float) -> bool:
    """The segment by hand, on the stored fields."""
    last = profile.last_order_at
    return profile.spend >= 2000 and last is not None and (ts - last) / 86400.0 >= 45


def scan_child(mode: str, db_path: str) -> dict[str, Any]:
    """In a fresh process: count the members, timing the scan and sampling peak RSS."""
    from segmint.engine.runtime import Segmint
    from segmint.engine.stores import SQLiteStore

    store = SQLiteStore(db_path)
    rt = Segmint.from_config(CONFIG, store=store, clock=lambda: NOW, watch=False)
    total_expected = store.count_profiles()
    mark = max(1, total_expected // 10)
    members = total = 0
    rss_mark = 0.0
    now, ts = NOW, NOW.timestamp()
    cpu, started = time.process_time(), time.perf_counter()
    if mode == "segmint":
        target = rt.state.segments[SEGMENT]
        document = rt.document_builder(now, only=target.fields)
        for profile in store.iter_profiles():
            total += 1
            if total == mark:
                rss_mark = peak_rss_mb()
            if target.matches(document(profile), now):
                members += 1
    else:
        for profile in store.iter_profiles():
            total += 1
            if total == mark:
                rss_mark = peak_rss_mb()
            if lapsed_vip(profile, ts):
                members += 1
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    rt.close()
    store.close()
    return {"cpu_seconds": cpu, "wall_seconds": wall, "members": members, "total": total,
            "rss_mark_mb": rss_mark, "rss_end_mb": peak_rss_mb()}


def run(quick: bool) -> list[dict[str, Any]]:
    n = 100_000 if quick else 1_000_000
    rounds = 3
    source = demo_store()
    templates = list(source.iter_profiles())
    results: dict[str, list[dict[str, Any]]] = {"segmint": [], "loop": []}
    with tempfile.TemporaryDirectory(prefix="segmint-bench-audience-") as tmp:
        path = Path(tmp) / "profiles.db"
        write_profiles_db(path, n, templates, rfm_source=source)
        for r in range(rounds):
            for mode in (("segmint", "loop") if r % 2 == 0 else ("loop", "segmint")):
                results[mode].append(child_json(["benchmarks.bench_audience", "scan-child", mode, str(path)]))
    counts = {(x["members"], x["total"]) for runs in results.values() for x in runs}
    if len(counts) != 1:
        raise AssertionError(f"audience counts disagree (members, profiles): {sorted(counts)}")
    members, total = counts.pop()
    if total != n or not members:
        raise AssertionError(f"scanned {total} of {n} profiles, {members} members")
    ours = statistics.median(x["cpu_seconds"] for x in results["segmint"])
    loop = statistics.median(x["cpu_seconds"] for x in results["loop"])
    last = results["segmint"][-1]
    growth = last["rss_end_mb"] - last["rss_mark_mb"]
    figure = f"audience count '{SEGMENT}' over {n:,} SQLite profiles ({members:,} members)"
    return [
        row(figure, ours, "hand-written loop over the same decoded profiles", loop, loop / ours, "s (CPU)",
            f"<= {TARGET:g}x the loop", ours <= TARGET * loop,
            wall_seconds=statistics.median(x["wall_seconds"] for x in results["segmint"])),
        row(f"audience memory: peak RSS after {n:,} profiles", last["rss_end_mb"],
            f"peak RSS after {n // 10:,}", last["rss_mark_mb"], last["rss_mark_mb"] / last["rss_end_mb"], "MB",
            f"grows < {MEMORY_GROWTH_MB:g} MB", growth < MEMORY_GROWTH_MB),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["scan-child"]:
        print(json.dumps(scan_child(sys.argv[2], sys.argv[3])))
    else:
        for r in run("--quick" in sys.argv):
            print(r)
