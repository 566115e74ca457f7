"""The built-in catalog: the products of the file ``[catalog] path`` names in the config.

The file is a JSON list of products or a CSV file with a header of product fields, chosen by
its extension (``load_catalog_file``); the module keeps its first name, which configs and
plugin lists may refer to. Bad products are left out and listed in ``catalog.problems``.

The path is relative to the config file's directory (``config.source_dir``), so a config and
its catalog can move together. No path: an empty catalog (strategies return nothing and
campaigns fall through), which is what a config without recommendations wants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segmint.engine.catalog import Catalog, load_catalog_file
from segmint.engine.hooks import hookimpl


def catalog_path(config: Any) -> Path | None:
    """Where the config says the catalog file is, resolved against the config's directory."""
    raw = config.catalog.path
    return config.resolve_path(raw) if raw else None


@hookimpl(trylast=True)
def segmint_load_catalog(config: Any) -> Catalog:
    path = catalog_path(config)
    return Catalog() if path is None else load_catalog_file(path)
