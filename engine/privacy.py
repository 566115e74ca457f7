"""Privacy requests: erase one person (``segmint forget``, ``DELETE {prefix}/profiles``), and
everything stored about them, as plain data (``segmint export``).

The store erases and gives the person's profiles, links and logged events
(``PersonalDataStore``); the report projection beside a SQLite file (``analytics/columnar.py``)
and the saved report states are handled here, where their formats are known.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec

from .analytics.checkpoint import saved_state
from .analytics.columnar import ColumnarLog, duckdb_available, projection_path
from .stores.base import PersonalData, ProfileStore, personal_data_store
from .stores.sqlite import SQLiteStore

__all__ = ["forget_person", "export_person"]

log = logging.getLogger("segmint.privacy")


def forget_person(store: ProfileStore, *, customer_id: str | None = None,
                  visitor_id: str | None = None) -> PersonalData:
    """Erase the person one id names from ``store`` (``PersonalDataStore.forget``) and their
    events from the report projection beside a SQLite store file, when there is one, at once
    (a report would drop them before reading, but the file would hold them until then)."""
    data = personal_data_store(store).forget(customer_id=customer_id, visitor_id=visitor_id)
    if data.events and type(store) is SQLiteStore and os.path.exists(projection_path(store.path)):
        if duckdb_available():
            ColumnarLog(store.path).drop_erased()
        else:
            log.warning("segmint: %s holds a report projection but DuckDB is not installed: the erased "
                        "events leave it when a report next reads it (pip install \"segmint[analytics]\")",
                        projection_path(store.path))
    return data


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
