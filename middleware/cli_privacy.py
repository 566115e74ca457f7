"""``segmint forget`` and ``segmint export``: erase one person, or print what is stored about them
(privacy requests). Both work on the config's store alone; no runtime is started."""

from __future__ import annotations

import argparse

from segmint.engine.privacy import export_person, forget_person

from .cli_commands import config_store
from .cli_output import Output, plural

__all__ = ["forget", "export"]


def _who(args: argparse.Namespace) -> str:
    return f"customer {args.customer}" if args.customer else f"visitor {args.visitor}"


def forget(args: argparse.Namespace, out: Output) -> int:
    """Erase the person: profiles, identity links, logged events, saved report states."""
    with config_store(args.config) as store:
        gone = forget_person(store, customer_id=args.customer, visitor_id=args.visitor)
    counts = gone.counts()
    if args.json:
        out.json(counts)
        return 0
    if args.visitor and gone.customer_id is not None:
        out.line(f"visitor {args.visitor} is linked to customer {gone.customer_id}: the whole person is erased")
    if not (gone.profiles or gone.links or gone.events):
        out.line(f"nothing was stored about {_who(args)}")
    else:
        person = f"customer {gone.customer_id}" if gone.customer_id is not None else f"visitor {args.visitor}"
        visitors = f" (visitors {', '.join(gone.visitor_ids)})" if gone.customer_id and gone.visitor_ids else ""
        out.line(out.paint("erased", "green") + f" {person}{visitors}: {plural(len(gone.profiles), 'profile')}, "
                 f"{plural(len(gone.links), 'identity link')}, {plural(len(gone.events), 'event')}")
    if gone.report_states:
        out.line(f"dropped {plural(len(gone.report_states), 'saved report state')}: "
                 "the next report reads the whole event log once")
    return 0


def export(args: argparse.Namespace, out: Output) -> int:
    """Print everything stored about the person as JSON: profiles, links, events, and their
    entries in the saved report states."""
    with config_store(args.config) as store:
        out.json(export_person(store, customer_id=args.customer, visitor_id=args.visitor))
    return 0
