"""Privacy requests: everything stored about one person, as plain data (``segmint export``).

The store gives the person's profiles, links and logged events (``PersonalDataStore.export``);
the saved report states are looked into here, where their format is known, for the person's
own entries (what the store holds as blobs).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .analytics.checkpoint import saved_state
from .stores.base import ProfileStore, personal_data_store

__all__ = ["export_person"]


def export_person(store: ProfileStore, *, customer_id: str | None = None,
                  visitor_id: str | None = None) -> dict[str, Any]:
    """``{"customer_id", "visitor_ids", "profiles", "links", "events", "report_states"}`` of
    the person one id names (see ``resolve_person``), ready for JSON: ``report_states`` lists
    the saved report states holding the person, each with its ``name``, ``people`` and
    ``links`` entries of theirs."""
    data = personal_data_store(store).export(customer_id=customer_id, visitor_id=visitor_id)
    exported = msgspec.to_builtins(data)
    exported["report_states"] = []
    for name in data.report_states:
        state = saved_state(store, name)
        entries = state.entries_of(data.keys) if state is not None else None
        if entries and (entries["people"] or entries["links"]):
            exported["report_states"].append({"name": name, **entries})
    return exported
