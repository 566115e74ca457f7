import json
from pathlib import Path

import pytest

from segmint.engine.catalog import Catalog
from segmint.engine.errors import ConfigError
from segmint.engine.hooks import get_plugin_manager
from segmint.engine.config import CatalogConfig, Config
from segmint.plugins import catalog_json

SHOP = Path(__file__).with_name("shop_catalog.json")


def config(path, source_dir=None):
    source = str(Path(source_dir) / "segmint.toml") if source_dir else None
    return Config(catalog=CatalogConfig(path=path), source_path=source)


def test_path_is_relative_to_the_config_directory(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "products.json").write_text(SHOP.read_text())
    catalog = catalog_json.segmint_load_catalog(config("data/products.json", tmp_path))
    assert len(catalog) == 21 and catalog.get("E3").discount_pct == 60.0


def test_absolute_path():
    assert len(catalog_json.segmint_load_catalog(config(str(SHOP), Path("/elsewhere")))) == 21


@pytest.mark.parametrize("cfg", [config(None), Config()])
def test_no_catalog_path_is_an_empty_catalog(cfg):
    catalog = catalog_json.segmint_load_catalog(cfg)
    assert isinstance(catalog, Catalog) and len(catalog) == 0


def test_errors_name_the_resolved_file(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps([{"sku": "a"}]))
    (problem,) = catalog_json.segmint_load_catalog(config("c.json", tmp_path)).problems
    assert problem.file == str(tmp_path / "c.json")
    assert problem.path == "$[0].name"
    with pytest.raises(ConfigError) as info:
        catalog_json.segmint_load_catalog(config("missing.json", tmp_path))
    assert info.value.file == str(tmp_path / "missing.json")


def test_a_csv_catalog_through_the_plugin(tmp_path):
    (tmp_path / "c.csv").write_text("sku,name,url,price,category\nS1,Serum,/p/s1,52,skincare\n")
    assert catalog_json.segmint_load_catalog(config("c.csv", tmp_path)).get("S1").price == 52.0


def test_through_the_plugin_manager_a_user_catalog_wins():
    class ShopCatalog:
        from segmint.engine.hooks import hookimpl

        @hookimpl
        def segmint_load_catalog(self, config):
            return Catalog()

    pm = get_plugin_manager(builtins=["segmint.plugins.catalog_json"], load_entrypoints=False)
    assert len(pm.hook.segmint_load_catalog(config=config(str(SHOP)))) == 21
    pm.register(ShopCatalog())
    assert len(pm.hook.segmint_load_catalog(config=config(str(SHOP)))) == 0
