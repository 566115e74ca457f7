"""The complete third-party plugin of docs/plugins.md, installed through its entry point.

Instead of pip-installing the package (slow, and it would leak into other tests), the test
writes the ``.dist-info`` metadata pip would write next to the package on ``sys.path``:
``importlib.metadata`` then finds the ``segmint`` entry point exactly as for an installed
distribution, and ``get_plugin_manager()`` loads it with ``load_setuptools_entrypoints``.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine import get_plugin_manager
from segmint.engine.config import load_config
from segmint.engine.errors import ConfigError
from segmint.engine.runtime import Segmint

PACKAGE = Path(__file__).resolve().parents[1] / "fixture_plugins" / "segmint_loyalty"
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture()
def installed(tmp_path, monkeypatch):
    """segmint-loyalty 'installed': its package and its dist-info on sys.path."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    dist = tmp_path / f"segmint_loyalty-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    entry_points = "".join(f"{name} = {target}\n" for name, target in project["entry-points"]["segmint"].items())
    (dist / "entry_points.txt").write_text("[segmint]\n" + entry_points)
    monkeypatch.syspath_prepend(str(PACKAGE))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield
    sys.modules.pop("segmint_loyalty", None)


def test_the_entry_point_registers_the_plugin(installed):
    pm = get_plugin_manager()
    assert pm.has_plugin("loyalty")
    names = {s.name for batch in pm.hook.segmint_register_strategies() for s in batch or ()}
    assert "loyalty_picks" in names
    fields = {f.name for batch in pm.hook.segmint_field_catalog() for f in batch or ()}
    assert "extra.loyalty_tier" in fields


def test_without_the_distribution_nothing_is_loaded():
    assert not get_plugin_manager().has_plugin("loyalty")


CONFIG = f"""
[store]
path = ":memory:"
[catalog]
path = "{CATALOG.as_posix()}"

[segments.gold]
filter = {{ "extra.loyalty_tier" = "gold" }}

[[campaigns]]
id = "gold-picks"
segment = "gold"
slots = ["home"]
strategy = "loyalty_picks"
params = {{ limit = 3 }}
"""


def test_the_plugin_field_strategy_and_sink_work_end_to_end(installed, tmp_path):
    config = tmp_path / "segmint.toml"
    config.write_text(CONFIG)
    plugin = importlib.import_module("segmint_loyalty")
    plugin.decisions.clear()
    with Segmint.from_config(config, watch=False, clock=lambda: NOW) as rt:
        rt.record([{"type": "order", "order_id": "o1", "customer_id": "big", "at": (NOW - timedelta(days=3)).isoformat(),
                    "items": [{"sku": "EL-LAP-001", "category": "laptops", "price": 1299.0}], "total": 1299.0}])
        gold = rt.decide(rt.profile(customer_id="big"), ["home"])
        nobody = rt.decide(rt.profile(customer_id="small"), ["home"])
    home = gold.slots["home"]
    assert home.campaign == "gold-picks" and home.segment == "gold"
    newest = sorted((p for p in rt.catalog if p.created_at and (p.stock is None or p.stock > 0)),
                    key=lambda p: p.created_at, reverse=True)
    assert home.skus == [p.sku for p in newest[:3]]  # gold members get new arrivals
    assert nobody.slots["home"].campaign is None
    assert plugin.decisions == {"gold-picks": 1, None: 1}


def test_a_typo_in_the_plugin_field_value_is_a_config_error(installed, tmp_path):
    config = tmp_path / "segmint.toml"
    config.write_text(CONFIG.replace('"gold" }', '"golden" }'))
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert "golden" in str(info.value)
