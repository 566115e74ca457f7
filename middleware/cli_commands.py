"""The commands behind ``segmint``: each takes parsed ``args`` and an ``Output``; returns an exit code."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from segmint.engine.errors import ConfigError, SegmintError, suggest

from .cli_output import Output, Progress, number, plural

log = logging.getLogger("segmint")

if TYPE_CHECKING:
    from segmint.engine.analytics.columnar import ColumnarLog
    from segmint.engine.failure_log import FailureLog
    from segmint.engine.runtime import Runtime

__all__ = ["check", "explain", "audience", "import_orders", "rfm", "predict", "migrate", "schema", "demo", "flatten",
           "config_runtime", "config_store"]


def _problems(exc: ConfigError) -> list[ConfigError]:
    return exc.problems or [exc]


def check(args: argparse.Namespace, out: Output) -> int:
    """Validate the config (and its catalog); print every problem with file, path and suggestion,
    and warnings for what a valid config leaves switched off (exit code 0)."""
    from segmint.engine.config import config_warnings, load_compiled

    try:
        state = load_compiled(args.config)
    except ConfigError as exc:
        return _report_problems(_problems(exc), out, args.json)
    # A running app serves the good products of a catalog and leaves the bad ones out; a
    # check is where they are errors.
    if state.catalog.rejected:
        return _report_problems(list(state.catalog.problems), out, args.json,
                                unlisted=state.catalog.rejected - len(state.catalog.problems))
    slots = sorted({s for c in state.campaigns for s in c.slots})
    summary = {
        "ok": True,
        "segments": sorted(state.segments),
        "campaigns": [c.id for c in state.campaigns],
        "slots": slots,
        "products": len(state.catalog),
        "strategies": sorted(state.strategies),
        "warnings": config_warnings(state.config),
    }
    if args.json:
        out.json(summary)
    else:
        out.line(out.paint("ok", "green") + f": {args.config}")
        out.line(f"  {plural(len(summary['segments']), 'segment')}, {plural(len(summary['campaigns']), 'campaign')}, "
                 f"{plural(len(slots), 'slot')} ({', '.join(slots) or 'none'}), "
                 f"{plural(summary['products'], 'product')}")
        for warning in summary["warnings"]:
            out.line(out.paint(f"warning: {warning}", "yellow"))
    return 0


def _report_problems(problems: list[ConfigError], out: Output, as_json: bool, *, unlisted: int = 0) -> int:
    """Print every problem (file, line, path, message, suggestion); the exit code, 1."""
    if as_json:
        out.json({"ok": False, "problems": [_problem_dict(p) for p in problems]}
                 | ({"unlisted": unlisted} if unlisted else {}))
        return 1
    for p in problems:
        hint = f" (did you mean {p.suggestion!r}?)" if p.suggestion else ""
        out.line(f"{out.paint(p.location(), 'bold')}: {p.message}{hint}")
    more = f" and {unlisted} more not listed" if unlisted else ""
    out.line(out.paint(f"{plural(len(problems), 'problem')} found{more}", "red"))
    return 1


def _problem_dict(p: ConfigError) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "path": p.path, "message": p.message, "suggestion": p.suggestion}


def config_runtime(config: str) -> Runtime:
    """The runtime of a config file, without background threads (a one-shot command)."""
    from segmint.engine.runtime import Segmint

    return Segmint.from_config(config, watch=False)


@contextlib.contextmanager
def config_store(config: str) -> Iterator[Any]:
    """The store a config file names, closed afterwards (commands that need no runtime)."""
    from segmint.engine.config import load_config
    from segmint.engine.stores import open_store

    store = open_store(load_config(config, validate=False).store_location)
    try:
        yield store
    finally:
        store.close()


def flatten(doc: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted paths and leaf values of a nested document, in key order.

    >>> list(flatten({"a": {"b": 1}, "c": [1, 2]}))
    [('a.b', 1), ('c', [1, 2])]
    """
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


def _failing_clauses(explanation: Any) -> list[Any]:
    """The deepest failing clauses of a non-matching explanation (what to show first)."""
    if explanation.matched:
        return []
    failing = [c for c in explanation.children if not c.matched]
    if not failing:
        return [explanation]
    found: list[Any] = []
    for child in failing:
        found.extend(_failing_clauses(child))
    return found


def explain(args: argparse.Namespace, out: Output) -> int:
    """Profile fields, segment verdicts with the failing clause, and the decision per slot."""
    rt = config_runtime(args.config)
    try:
        profile = rt.profile(visitor_id=args.visitor, customer_id=args.customer)
        if not profile.first_seen and not profile.orders:
            who = f"customer {args.customer}" if args.customer else f"visitor {args.visitor}"
            out.line(out.paint(f"note: no events are stored for {who}; showing an empty profile", "yellow"))
        slots = args.slot or [None]
        explanations = [rt.explain(profile, slot, path=args.path, visitor_id=args.visitor) for slot in slots]
    finally:
        rt.close()
    first = explanations[0]
    decisions = {name: sd for ex in explanations for name, sd in ex.decision.slots.items()}
    if args.json:
        data = first.to_dict()
        data["decision"]["slots"] = {name: sd.to_dict() for name, sd in decisions.items()}
        data["profile_key"] = profile.key
        out.json(data)
        return 0
    out.line(out.paint(f"profile {profile.key}", "bold"))
    out.table(("field", "value"), ((k, _short(v, k)) for k, v in flatten(first.document)))
    out.line()
    out.line(out.paint("segments", "bold"))
    rows = []
    for name, ex in first.segments.items():
        verdict = out.paint("matched", "green") if ex.matched else out.paint("no", "red")
        why = "; ".join(_clause(c) for c in _failing_clauses(ex)[:3])
        rows.append((name, verdict, why))
    out.table(("segment", "in", "failing clause (actual value)"), rows)
    out.line()
    out.line(out.paint("decision", "bold"))
    for name, sd in decisions.items():
        if sd.campaign is None:
            what = "nothing"
        elif sd.control:
            what = f"campaign {sd.campaign}, variant {sd.variant}: control (holdout, nothing shown)"
        else:
            what = (f"campaign {sd.campaign}, variant {sd.variant}, strategy {sd.strategy}: "
                    f"{', '.join(sd.skus) or 'no products'}")
        out.line(f"  {out.paint(name, 'bold')}: {what}")
        for reason in sd.reasons:
            out.line(f"    skipped: {reason}")
    return 0


def _clause(explanation: Any) -> str:
    """One failing clause and the value it saw, rounded like the field table."""
    data = explanation.to_dict()
    if data.get("missing"):
        return f"{data['label']} (missing)"
    if "actual" not in data:
        return data["label"]
    return f"{data['label']} (actual: {_short(data['actual'], data.get('path') or '')})"


def _short(value: Any, field: str = "", width: int = 80) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        # Day counts to a tenth (a visit a minute ago is 0.0 days, not 6.9e-04); others to cents.
        return number(value, 1 if "days" in field else 2)
    text = json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def audience(args: argparse.Namespace, out: Output) -> int:
    """Count a segment's members by streaming every stored profile; print a sample."""
    rt = config_runtime(args.config)
    try:
        segments = rt.state.segments
        if args.segment not in segments:
            known = ", ".join(sorted(segments)) or "none: the config defines no segments"
            raise ConfigError(f"unknown segment {args.segment!r}; the config's segments: {known}",
                              path="$.segments", suggestion=suggest(args.segment, segments), file=args.config)
        target = segments[args.segment]
        now = rt.clock()
        progress = Progress(rt.store.count_profiles(), f"scanning profiles for {args.segment}")
        members = total = 0
        sample: list[dict[str, Any]] = []
        document = rt.document_builder(now, only=target.fields)  # only the sections it reads
        for profile in rt.store.iter_profiles():
            total += 1
            progress.advance()
            if target.matches(document(profile), now):
                members += 1
                if len(sample) < args.sample:
                    sample.append(_sample_row(profile))
        progress.close()
    finally:
        rt.close()
    share = members / total if total else 0.0
    if args.json:
        out.json({"segment": args.segment, "members": members, "profiles": total, "share": share,
                  "sample": sample})
        return 0
    out.line(f"{out.paint(args.segment, 'bold')}: {members:,} of {plural(total, 'profile')} ({share:.1%})")
    if sample:
        out.table(("profile", "orders", "spend", "last order", "visits"),
                  ((s["key"], s["orders"], s["spend"], s["last_order_at"] or "-", s["visits"]) for s in sample))
    return 0


def _sample_row(profile: Any) -> dict[str, Any]:
    last = profile.last_order_at
    return {
        "key": profile.key,
        "orders": profile.orders,
        "spend": round(profile.spend, 2),
        "last_order_at": datetime.fromtimestamp(last).date().isoformat() if last else None,
        "visits": profile.visits,
    }


def import_orders(args: argparse.Namespace, out: Output) -> int:
    """Stream a CSV/JSONL order file into the config's store; report rejected lines."""
    from dataclasses import asdict

    from segmint.engine.importer import import_orders as run_import

    path = Path(args.file)
    if not path.is_file():
        raise SegmintError(f"{path}: no such file")
    with config_store(args.config) as store:
        progress = Progress(path.stat().st_size, f"importing {path.name}")
        try:
            report = run_import(path, store, progress=lambda done, total: progress.update(done))
        finally:
            progress.close()
    if args.json:
        out.json(asdict(report))
    else:
        out.line(f"imported {plural(report.orders, 'order')} ({plural(report.lines, 'line')}) in "
                 f"{report.seconds:.1f} s; {plural(report.duplicates, 'duplicate')} skipped")
        if report.rejected_count:
            out.line(out.paint(f"{plural(report.rejected_count, 'rejected line')}:", "yellow"))
            for line, message in report.rejected[:50]:
                out.line(f"  {path}:{line}: {message}")  # file:line, as config problems are shown
    return 1 if report.rejected_count else 0


def rfm(args: argparse.Namespace, out: Output) -> int:
    """Recompute and store the RFM quintile thresholds."""
    from datetime import timezone

    from segmint.engine.rfm import compute_rfm_thresholds

    with config_store(args.config) as store:
        thresholds = compute_rfm_thresholds(store, datetime.now(timezone.utc))
    if thresholds is None:
        out.line("no customer has ordered yet: no thresholds computed")
        return 0
    if args.json:
        out.json(msgspec.to_builtins(thresholds))
    else:
        out.line(f"RFM thresholds from {plural(thresholds.customers, 'customer')} "
                 f"(sample {thresholds.sample_size:,})")
        out.table(("score cut", "20%", "40%", "60%", "80%"), [
            ("recency (days)", *thresholds.recency_days),
            ("frequency (orders)", *thresholds.frequency),
            ("monetary (spend)", *thresholds.monetary),
        ])
    return 0


def predict(args: argparse.Namespace, out: Output) -> int:
    """Refit and store the predictive model now (the batch job refits it every 6 hours)."""
    from datetime import timezone

    from segmint.engine.predict import MIN_CUSTOMERS, MIN_REPEAT, PredictUnavailable, compute_predict_model

    try:
        with config_store(args.config) as store:
            model = compute_predict_model(store, datetime.now(timezone.utc))
    except PredictUnavailable as exc:
        raise SegmintError(str(exc)) from None
    if model is None:
        out.line(f"no model fitted: a fit needs {MIN_CUSTOMERS} customers with orders, "
                 f"{MIN_REPEAT} of them with a repeat order")
        return 0
    if args.json:
        out.json(msgspec.to_builtins(model))
        return 0
    out.line(f"fitted over {plural(model.customers, 'customer')} (sample {model.sample_size:,}); "
             "time in days")
    bg, gg = model.bgnbd, model.gamma_gamma
    rows = [("BG/NBD (purchases)", f"r {number(bg.r, 4)}, alpha {number(bg.alpha, 4)}, a {number(bg.a, 4)}, "
             f"b {number(bg.b, 4)}", number(bg.log_likelihood, 1))]
    if gg is not None:
        rows.append(("Gamma-Gamma (order value)", f"p {number(gg.p, 4)}, q {number(gg.q, 4)}, "
                     f"gamma {number(gg.gamma, 4)}", number(gg.log_likelihood, 1)))
    out.table(("model", "parameters", "log-likelihood"), rows)
    return 0


def migrate(args: argparse.Namespace, out: Output) -> int:
    """Copy one store into another (e.g. SQLite -> Redis when adding app servers)."""
    from segmint.engine.stores.migrate import migrate as run_migrate

    progress = Progress(None, "migrating")

    def show(kind: str, done: int) -> None:
        if progress.label != f"migrating {kind}":  # counts restart for each kind
            progress.label, progress.done = f"migrating {kind}", 0
        progress.update(done)

    try:
        report = run_migrate(args.source, args.target, batch_size=args.batch_size, progress=show)
    finally:
        progress.close()
    if args.json:
        out.json({"source": report.source, "target": report.target, **report.counts,
                  "seconds": round(report.seconds, 3)})
    else:
        out.line(str(report))
    return 0


def fold(args: argparse.Namespace, out: Output) -> int:
    """Fold the store's event log into its profile rows (what the embedded compactor does).

    Folds what is logged and exits (while another compactor holds the file's lock, waits
    for it to get there); ``--follow`` takes the lock, holds it and keeps folding as events
    arrive: the compactor in its own process (docs/deployment.md). Either also appends the
    newly logged events to the reports' DuckDB projection when reports read through it
    (``[analytics] reader``; ``--follow``: every few seconds), as the serving processes do.
    """
    import time

    from segmint.engine.analytics.columnar import KEEP_UP_SECONDS, kept_projection
    from segmint.engine.config import load_config
    from segmint.engine.errors import StoreError
    from segmint.engine.failure_log import FailureLog
    from segmint.engine.stores import CompactingStore

    folded, failures = 0, FailureLog()
    with config_store(args.config) as store:
        if not isinstance(store, CompactingStore):
            raise StoreError("this store folds events as they are appended: nothing to compact",
                             store=store.url)
        projection = kept_projection(store, load_config(args.config, validate=False).analytics.reader)
        if not args.follow:  # fold what is logged now (or wait while another compactor does)
            start = store.compaction_position()[0]
            store.catch_up()
            position, logged = store.compaction_position()
            folded = position - start
            while projection is not None and _keep_up(projection, failures):
                pass  # turn after turn: this run ends with the projection current
        else:
            # Held for the whole run: the serving processes' compactor threads leave it alone.
            with contextlib.suppress(KeyboardInterrupt), store.compactor_lock(wait=True):
                kept_at = time.monotonic()
                while True:
                    done = store.compact(wait=True)
                    folded += done or 0
                    if projection is not None and time.monotonic() - kept_at >= KEEP_UP_SECONDS:
                        _keep_up(projection, failures)
                        kept_at = time.monotonic()
                    if not done:
                        time.sleep(args.interval)
            position, logged = store.compaction_position()
        waiting = logged - position
    if args.json:
        out.json({"folded": folded, "waiting": waiting})
    else:
        out.line(f"folded {plural(folded, 'event')} into profiles; {waiting:,} waiting")
    return 0


def _keep_up(projection: ColumnarLog, failures: FailureLog) -> int:
    """The compactor's turn at the reports' projection: the events appended. A failure is
    logged once a minute and folding goes on (a report catches the projection up itself, or
    reads the log in Python)."""
    try:
        return projection.keep_up() or 0
    except Exception as exc:  # noqa: BLE001
        failures.report(log, "report-projection", f"keeping the report projection current failed: {exc}", exc)
        return 0


def schema(args: argparse.Namespace, out: Output) -> int:
    """Print the JSON Schema of the config file."""
    from segmint.engine.config import config_json_schema

    out.json(config_json_schema())
    return 0


def demo(args: argparse.Namespace, out: Output) -> int:
    """Seed the demo database if needed and serve the demo shop."""
    from .demo import run_demo

    run_demo(host=args.host, port=args.port, db_path=args.db, config=args.config, reseed=args.reseed,
             program=_program())
    return 0


def _program() -> str:
    """How to run this ``segmint`` again from the current directory, for printed commands:
    ``segmint`` when that is the one on PATH, else the path that ran (``make demo`` runs
    ``.venv/bin/segmint`` without activating the venv)."""
    import shutil
    import sys

    ran = Path(sys.argv[0])
    if ran.name != "segmint":
        return "segmint"
    on_path = shutil.which("segmint")
    if on_path and Path(on_path).resolve() == ran.resolve():
        return "segmint"
    try:
        shown = str(ran.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(ran)
    return shown if "/" in shown else f"./{shown}"
