"""The ``segmint`` command line: check, explain, audience, import, rfm, predict, report, segments,
forget, export, migrate, fold, schema, demo.

Every command prints a readable result to a terminal, and ``--json`` where a script would
consume it. Errors are one clear message and exit code 1; a traceback only with ``--debug``.
The commands are thin: each calls the engine API a shop developer could call from Python.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

from segmint.engine.errors import SegmintError

from . import cli_analytics, cli_commands, cli_privacy
from .cli_output import Output

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segmint",
        description="Server-side segment targeting and recommendation widgets for ASGI shops.",
    )
    parser.add_argument("--version", action="version", version=f"segmint {version('segmint')}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, func, *, config: bool = True, json: bool = True):
        p = sub.add_parser(name, help=help, description=help)
        if config:
            p.add_argument("config", metavar="CONFIG", help="path of the segmint config file")
        if json:
            p.add_argument("--json", action="store_true", help="machine-readable JSON output")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.set_defaults(func=func)
        return p

    command("check", "validate a config: segments, filters, campaigns, strategies, catalog",
            cli_commands.check)

    p = command("explain", "why a visitor is (not) in each segment, and what each slot shows",
                cli_commands.explain)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="ID", help="a customer id")
    who.add_argument("--visitor", metavar="ID", help="a visitor id (the cookie's unsigned id)")
    p.add_argument("--slot", action="append", default=[], metavar="S", help="slot(s) to decide (default: all)")
    p.add_argument("--path", default="/", help="page path for campaign page patterns")

    p = command("audience", "how many profiles are in a segment, with a sample", cli_commands.audience)
    p.add_argument("segment", metavar="SEGMENT", help="a segment name of the config")
    p.add_argument("--sample", type=int, default=10, metavar="N", help="sample size (default 10)")

    p = command("import", "import historic orders from CSV or JSONL (streaming)", cli_commands.import_orders)
    p.add_argument("file", metavar="FILE", help="orders.csv or orders.jsonl")

    command("rfm", "recompute RFM quintile thresholds over all customers", cli_commands.rfm)
    command("predict", "refit the predictive model (BG/NBD, Gamma-Gamma) over all customers",
            cli_commands.predict)

    p = command("report", "per campaign and variant: conversion, revenue and lift against control",
                cli_analytics.report)
    p.add_argument("--since", metavar="DATE", help="only events from this day on (YYYY-MM-DD)")
    p.add_argument("--campaign", metavar="ID", help="only this campaign")
    p.add_argument("--window", type=float, default=7.0, metavar="DAYS",
                   help="attribution window in days (default 7)")
    p.add_argument("--csv", action="store_true", help="CSV output, one row per campaign variant")
    p.add_argument("--fresh", action="store_true",
                   help="read the whole event log, not just what came after the saved report state")
    p.add_argument("--engine", choices=("frequentist", "bayesian"),
                   help="how to read the lifts (default: [analytics] engine, else frequentist)")

    p = command("segments", "segment sizes over time and overlap between segments", cli_analytics.segments)
    p.add_argument("--snapshot", action="store_true",
                   help="count every segment's members now and keep today's snapshot (run daily)")

    for name, help, func in (
        ("forget", "erase one person: profiles, identity links, logged events, saved report states",
         cli_privacy.forget),
        ("export", "print everything stored about one person as JSON", cli_privacy.export),
    ):
        p = command(name, help, func, json=name == "forget")
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--customer", metavar="ID", help="a customer id (with every visitor linked to it)")
        who.add_argument("--visitor", metavar="ID",
                         help="a visitor id; one linked to a customer means that customer's whole person")

    p = command("migrate", "copy profiles, links, order ids, events and meta into an empty store",
                cli_commands.migrate, config=False)
    p.add_argument("--from", dest="source", required=True, metavar="URL",
                   help="source store: sqlite:///segmint.db (or a path) or redis://host:6379/0")
    p.add_argument("--to", dest="target", required=True, metavar="URL", help="target store (must be empty)")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N", help="rows per batch (default 1000)")
    p = command("fold", "fold the event log into the profile rows (compaction)", cli_commands.fold)
    p.add_argument("--follow", action="store_true",
                   help="keep folding as events arrive (a compactor in its own process)")
    p.add_argument("--interval", type=float, default=0.2, metavar="SECONDS",
                   help="with --follow: pause when caught up (default 0.2)")
    command("schema", "print the JSON Schema of the config file", cli_commands.schema, config=False, json=False)

    p = command("demo", "serve the demo shop (what `make demo` runs)", cli_commands.demo, config=False, json=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--db", default=None,
                   help="demo database file (default: the config's store, which `segmint explain CONFIG` reads)")
    p.add_argument("--config", dest="config", default=None, help="config (default: examples/segmint.toml)")
    p.add_argument("--reseed", action="store_true", help="rebuild the demo database even if it exists")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output()
    err = Output(sys.stderr)
    try:
        return int(args.func(args, out) or 0)
    except SegmintError as exc:
        if getattr(args, "debug", False):
            raise
        err.line(err.paint("error: ", "red") + str(exc))
        return 1
    except KeyboardInterrupt:
        err.line("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback for an end user
        if getattr(args, "debug", False):
            raise
        err.line(err.paint("internal error: ", "red") + f"{type(exc).__name__}: {exc}")
        err.line("run again with --debug for the traceback")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
