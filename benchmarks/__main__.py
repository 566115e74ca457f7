"""``make bench``: run every ``benchmarks/bench_*.py``, print one table, write JSON.

Each benchmark module exposes ``run(quick: bool) -> list[dict]``; a row is::

    {"figure": str, "ours": float, "peer": str, "peer_value": float, "ratio": float,
     "unit": str, "target": str, "ok": bool}

Figures are ratios against a peer (or a floor) measured in the same run, medians of several
repetitions, because this machine is shared and noisy. A benchmark also checks that it
computed the right thing (peers agree), so a fast wrong answer cannot pass. A row with
``"available": False`` measures what the code cannot do yet (a store capability it lacks):
it shows ``n/a`` and counts neither as met nor as missed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _modules(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs (under 2 minutes)")
    parser.add_argument("--only", action="append", default=[], help="run benchmarks whose name contains this")
    parser.add_argument("--output", default=str(HERE / "results" / "latest.json"))
    args = parser.parse_args(argv)

    rows: list[dict] = []
    failures: list[str] = []
    started = time.perf_counter()
    timings: dict[str, float] = {}
    for name in _modules(args.only):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            for row in module.run(args.quick):
                row.setdefault("benchmark", name)
                rows.append(row)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            failures.append(name)
            traceback.print_exc()
        timings[name] = round(time.perf_counter() - began, 1)
        print(f"  {name}: {timings[name]} s", file=sys.stderr, flush=True)

    header = ("figure", "ours", "unit", "peer", "peer_value", "ratio", "target", "ok")
    blank = {"ours": "-", "peer_value": "-", "ratio": "-", "ok": "n/a"}  # for rows not available
    table = [header] + [tuple(blank.get(k, _fmt(r.get(k, ""))) if r.get("available") is False
                              else _fmt(r.get(k, "")) for k in header) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))

    missed = [r["figure"] for r in rows if not r.get("ok", True)]
    unavailable = sum(1 for r in rows if r.get("available") is False)
    measured = len(rows) - unavailable
    print(f"\n{measured - len(missed)} of {measured} figures meet their target"
          + (f"; missed: {len(missed)}" if missed else "")
          + (f"; not available yet: {unavailable}" if unavailable else "")
          + (f"; failed benchmarks: {', '.join(failures)}" if failures else ""))

    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seconds": round(time.perf_counter() - started, 1),
        "benchmark_seconds": timings,
        "rows": rows,
        "failed_benchmarks": failures,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {out} ({result['seconds']} s)", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
