import json
from datetime import datetime, timezone

import pytest

from segmint.engine.catalog import Catalog, Product, is_safe_url, load_catalog_file
from segmint.engine.errors import ConfigError


def product(sku="a", **kw):
    fields = {"name": sku.upper(), "url": f"/p/{sku}", "price": 10.0, "category": "makeup"} | kw
    return Product(sku=sku, **fields)


def write(tmp_path, items):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(items))
    return path


GOOD = {"sku": "S1", "name": "Serum", "url": "/p/s1", "price": 52, "category": "skincare"}


@pytest.mark.parametrize("url", ["https://shop.example/p/1", "http://shop.example/p", "/p/1",
                                 "//cdn.example/i.jpg", "HTTPS://SHOP.EXAMPLE/"])
def test_safe_urls(url):
    assert is_safe_url(url)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)", "java\tscript:alert(1)",
                                 " javascript:alert(1)", "data:text/html,<b>", "vbscript:x", "p/1", "",
                                 None, "https:evil", "/\\evil.example", "ftp://files.example/x"])
def test_unsafe_urls(url):
    assert not is_safe_url(url)


def test_discount_pct_from_compare_at_price():
    assert product(price=75, compare_at_price=100).discount_pct == 25.0
    assert product(price=99.5, compare_at_price=199).discount_pct == 50.0
    assert product(price=10, compare_at_price=10).discount_pct == 0.0
    assert product(price=12, compare_at_price=10).discount_pct == 0.0
    assert product(price=10).discount_pct == 0.0


def test_stock_none_is_in_stock():
    assert Catalog.in_stock(product(stock=None))
    assert Catalog.in_stock(product(stock=2))
    assert not Catalog.in_stock(product(stock=0))
    assert not Catalog.in_stock(product(stock=-1))


def test_product_rejects_script_urls():
    with pytest.raises(ValueError, match="url"):
        product(url="javascript:alert(1)")
    with pytest.raises(ValueError, match="image"):
        product(image="javascript:alert(1)")


def test_catalog_lookups():
    cat = Catalog([product("a"), product("b", category="fashion"), product("c")])
    assert len(cat) == 3
    assert [p.sku for p in cat] == ["a", "b", "c"]
    assert cat.get("b").category == "fashion"
    assert cat.get("zz") is None
    assert "a" in cat and "zz" not in cat
    assert [p.sku for p in cat.by_category("makeup")] == ["a", "c"]
    assert cat.by_category("toys") == ()
    assert cat.categories == ("makeup", "fashion")


def test_catalog_rejects_duplicate_skus():
    with pytest.raises(ValueError, match="duplicate sku 'a'"):
        Catalog([product("a"), product("a")])


def test_naive_created_at_is_taken_as_utc():
    cat = Catalog([product("a", created_at=datetime(2024, 1, 1, 12))])
    assert cat.get("a").created_at == datetime(2024, 1, 1, 12, tzinfo=timezone.utc)


def test_memoize_computes_once_per_catalog():
    cat = Catalog([product("a"), product("b")])
    calls = []

    def compute(c):
        calls.append(c)
        return tuple(p.sku for p in c)

    assert cat.memoize("skus", compute) == ("a", "b")
    assert cat.memoize("skus", compute) == ("a", "b")
    assert len(calls) == 1
    assert Catalog([product("x")]).memoize("skus", compute) == ("x",)


def test_load_catalog_file(tmp_path):
    items = [GOOD, {**GOOD, "sku": "M1", "category": "makeup", "compare_at_price": 60, "stock": 0,
                    "created_at": "2024-03-01T09:00:00Z", "tags": ["new"], "image": "https://cdn.example/m1.jpg"}]
    cat = load_catalog_file(write(tmp_path, items))
    m1 = cat.get("M1")
    assert len(cat) == 2
    assert m1.created_at == datetime(2024, 3, 1, 9, tzinfo=timezone.utc)
    assert m1.tags == ("new",) and m1.stock == 0 and not m1.in_stock
    assert m1.discount_pct == pytest.approx(13.3)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_catalog_file(tmp_path / "nope.json")
    assert info.value.file.endswith("nope.json")
    assert "cannot read" in info.value.message


def test_bad_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[{"sku": "a",')
    with pytest.raises(ConfigError, match="not a JSON list") as info:
        load_catalog_file(path)
    assert info.value.file == str(path)


def test_not_a_list(tmp_path):
    with pytest.raises(ConfigError, match="not a JSON list"):
        load_catalog_file(write(tmp_path, {"products": []}))


def test_bad_product_names_index_and_field(tmp_path):
    items = [GOOD, {**GOOD, "sku": "b"}, {**GOOD, "sku": "c"}, {**GOOD, "sku": "d", "price": "cheap"}]
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write(tmp_path, items))
    err = info.value
    assert err.path == "$[3].price"
    assert err.file.endswith("catalog.json")
    assert "Expected `float`" in err.message
    assert "$[3].price" in str(err)


def test_negative_price_and_missing_field(tmp_path):
    no_name = {k: v for k, v in GOOD.items() if k != "name"}
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write(tmp_path, [{**GOOD, "price": -1}, no_name]))
    paths = [p.path for p in info.value.problems]
    assert paths == ["$[0].price", "$[1]"]
    assert "name" in info.value.problems[1].message


def test_unknown_field_suggests(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write(tmp_path, [{**GOOD, "compare_at_prise": 60}]))
    assert info.value.path == "$[0].compare_at_prise"
    assert info.value.suggestion == "compare_at_price"


def test_script_url_rejected_at_load(tmp_path):
    items = [GOOD, {**GOOD, "sku": "x", "url": "javascript:alert(document.cookie)"},
             {**GOOD, "sku": "y", "image": "data:image/svg+xml,<svg onload=alert(1)>"}]
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write(tmp_path, items))
    assert [p.path for p in info.value.problems] == ["$[1].url", "$[2].image"]


def test_duplicate_sku_at_load(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write(tmp_path, [GOOD, {**GOOD, "name": "Other"}]))
    assert info.value.path == "$[1].sku"
    assert "first at $[0]" in info.value.message


def test_many_bad_products_are_capped(tmp_path):
    items = [{**GOOD, "sku": f"s{i}", "price": "x"} for i in range(100)]
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write(tmp_path, items))
    assert len(info.value.problems) == 20
    assert info.value.problems[-1].path == "$[19].price"
