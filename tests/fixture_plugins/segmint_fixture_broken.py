"""A plugin whose request-path hooks all raise: pages must still get their decisions."""

from segmint.engine import hookimpl


@hookimpl
def segmint_enrich_document(profile, document, now):
    raise RuntimeError("enrich exploded")


@hookimpl
def segmint_decision_made(decision, profile):
    raise RuntimeError("observer exploded")


@hookimpl
def segmint_render_widget(slot_decision, config):
    raise RuntimeError("renderer exploded")


@hookimpl
def segmint_events_recorded(events, result):
    raise RuntimeError("sink exploded")
