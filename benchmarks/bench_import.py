"""Bulk import of historic orders: 1,000,000 CSV order lines into a fresh SQLite store.

A synthetic order file (quick: 200,000 lines) is written to a temp dir: about 100 lines
per 10 customers, orders of 1-4 lines over the last year, a tenth of them with a coupon or
a discount. ``segmint.engine.importer.import_orders`` (what ``segmint import`` runs) loads
it into a new ``SQLiteStore`` (its defaults: WAL, ``synchronous=FULL``) in a child process,
so the child's peak RSS (``VmHWM``) is the import's memory. The floor is ``wc -l`` of
the same file: the cost of just reading it.

Targets: under 60 s per million lines (the quick run is held to the same rate), peak RSS
under 200 MB. The store must end with exactly the generated orders, customers and total
spend, so a fast wrong answer cannot pass. One repetition (a full import takes about a
minute; its wall time is what a user waits for, so this is wall time).

Run alone: ``python -m benchmarks.bench_import [--quick]``.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from .bench_profiles import NOW, child_json, peak_rss_mb, row

SECONDS_PER_MILLION = 60.0
RSS_TARGET_MB = 200.0
HEADER = "order_id,customer_id,at,sku,quantity,price,category,discount,coupon\n"
CATEGORIES = ("shoes", "dresses", "skincare", "makeup", "phones", "headphones", "knitwear", "haircare")


def write_orders_csv(path: Path, lines: int, seed: int = 3) -> dict[str, Any]:
    """Write ``lines`` order lines; return what the store must hold afterwards."""
    rng = random.Random(seed)
    customers = max(1, lines // 10)
    times = [(NOW - timedelta(minutes=17 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(30_000)]
    products = [(f"SKU-{i:05d}", CATEGORIES[i % len(CATEGORIES)], round(5 + (i * 37) % 300 + 0.99, 2))
                for i in range(5000)]
    written = orders = 0
    spend = 0.0
    seen: set[int] = set()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HEADER)
        while written < lines:
            orders += 1
            customer = rng.randrange(customers)
            seen.add(customer)
            at = times[rng.randrange(len(times))]
            coupon = "SPRING10" if rng.random() < 0.05 else ""
            count = min(rng.randint(1, 4), lines - written)
            out = []
            for _ in range(count):
                sku, category, price = products[rng.randrange(len(products))]
                quantity = 1 if rng.random() < 0.8 else 2
                discount = round(price * 0.2, 2) if rng.random() < 0.05 else 0.0
                spend += quantity * (price - discount)
                out.append(f"o{orders},c{customer},{at},{sku},{quantity},{price},{category},"
                           f"{discount if discount else ''},{coupon}\n")
            fh.write("".join(out))
            written += count
    return {"lines": written, "orders": orders, "customers": len(seen), "spend": spend}


def import_child(csv_path: str, db_path: str) -> dict[str, Any]:
    """In a fresh process: import the file, then read back what the store holds."""
    from segmint.engine.importer import import_orders
    from segmint.engine.stores import SQLiteStore

    store = SQLiteStore(db_path)
    cpu = time.process_time()
    started = time.perf_counter()
    report = import_orders(csv_path, store)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = peak_rss_mb()
    profiles = spend = orders = 0
    for profile in store.iter_profiles():
        profiles += 1
        spend += profile.spend
        orders += profile.orders
    store.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak, "lines": report.lines,
            "orders": report.orders, "rejected": report.rejected_count, "profiles": profiles,
            "profile_orders": orders, "spend": spend}


def _wc_seconds(path: Path, lines: int) -> float:
    """The read floor: fastest of three ``wc -l`` runs (the file is in the page cache)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(["wc", "-l", str(path)], capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - started)
    if int(done.stdout.split()[0]) != lines + 1:
        raise AssertionError(f"wc -l counted {done.stdout.split()[0]} lines, expected {lines + 1}")
    return best


def run(quick: bool) -> list[dict[str, Any]]:
    lines = 200_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="segmint-bench-import-") as tmp:
        csv_path = Path(tmp) / "orders.csv"
        expected = write_orders_csv(csv_path, lines)
        floor = _wc_seconds(csv_path, expected["lines"])
        got = child_json(["benchmarks.bench_import", "import-child", str(csv_path), str(Path(tmp) / "db.sqlite")])
    checks = {
        "lines": (got["lines"], expected["lines"]), "orders": (got["orders"], expected["orders"]),
        "profile orders": (got["profile_orders"], expected["orders"]),
        "profiles": (got["profiles"], expected["customers"]), "rejected": (got["rejected"], 0),
    }
    wrong = {name: pair for name, pair in checks.items() if pair[0] != pair[1]}
    if wrong or abs(got["spend"] - expected["spend"]) > 1e-6 * expected["spend"]:
        raise AssertionError(f"import stored the wrong thing (got, expected): {wrong}, "
                             f"spend {got['spend']:.2f} vs {expected['spend']:.2f}")
    limit = SECONDS_PER_MILLION * lines / 1_000_000
    seconds = got["seconds"]
    name = f"bulk import, {lines:,} CSV order lines ({expected['orders']:,} orders)"
    return [
        row(name, seconds, "wc -l of the file (read floor)", floor, floor / seconds, "s",
            f"< {limit:g} s", seconds < limit, cpu_seconds=round(got["cpu_seconds"], 1),
            lines_per_second=round(lines / seconds)),
        row("peak RSS of that import (child process)", got["peak_rss_mb"], "-", 0.0, 0.0, "MB",
            f"< {RSS_TARGET_MB:g} MB", got["peak_rss_mb"] < RSS_TARGET_MB),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["import-child"]:
        print(json.dumps(import_child(sys.argv[2], sys.argv[3])))
    else:
        for r in run("--quick" in sys.argv):
            print(r)
