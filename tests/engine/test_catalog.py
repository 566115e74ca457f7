import json
from datetime import datetime, timezone

import pytest

from segmint.engine import catalog as catalog_module
from segmint.engine.catalog import Catalog, Product, is_safe_url, load_catalog_file
from segmint.engine.dates import EXAMPLES
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


def test_bad_product_names_index_line_field_sku_and_an_example(tmp_path):
    items = [GOOD, {**GOOD, "sku": "b"}, {**GOOD, "sku": "c"}, {**GOOD, "sku": "d", "price": "cheap"}]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(items, indent=1))
    cat = load_catalog_file(path)
    assert [p.sku for p in cat] == ["S1", "b", "c"]  # the good ones are kept
    (err,) = cat.problems
    assert cat.rejected == 1
    assert (err.path, err.file, err.line) == ("$[3].price", str(path), 23)
    assert err.message == "bad product 'd': Expected `float`, got `str` (e.g. 52.0)"
    assert str(err).startswith(f"{path}:23: $[3].price: bad product 'd'")


def test_negative_price_and_missing_field(tmp_path):
    no_name = {k: v for k, v in GOOD.items() if k != "name"}
    cat = load_catalog_file(write(tmp_path, [{**GOOD, "price": -1}, no_name]))
    assert len(cat) == 0
    assert [p.path for p in cat.problems] == ["$[0].price", "$[1].name"]
    assert cat.problems[1].message == 'bad product \'S1\': Object missing required field `name` (e.g. "Hydrating serum")'


def test_unknown_field_suggests(tmp_path):
    (err,) = load_catalog_file(write(tmp_path, [{**GOOD, "compare_at_prise": 60}])).problems
    assert err.path == "$[0].compare_at_prise"
    assert err.suggestion == "compare_at_price"


def test_script_url_rejected_at_load(tmp_path):
    items = [GOOD, {**GOOD, "sku": "x", "url": "javascript:alert(document.cookie)"},
             {**GOOD, "sku": "y", "image": "data:image/svg+xml,<svg onload=alert(1)>"}]
    cat = load_catalog_file(write(tmp_path, items))
    assert [p.path for p in cat.problems] == ["$[1].url", "$[2].image"]
    assert [p.sku for p in cat] == ["S1"]


def test_duplicate_sku_at_load(tmp_path):
    cat = load_catalog_file(write(tmp_path, [GOOD, {**GOOD, "name": "Other"}]))
    (err,) = cat.problems
    assert err.path == "$[1].sku"
    assert "first at $[0]" in err.message and "'S1'" in err.message
    assert cat.get("S1").name == "Serum"  # the first one wins


def test_many_bad_products_are_all_counted_and_the_first_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog_module, "MAX_REPORTED_PROBLEMS", 20)
    items = [{**GOOD, "sku": f"s{i}", "price": "x"} for i in range(100)] + [GOOD]
    cat = load_catalog_file(write(tmp_path, items))
    assert len(cat.problems) == 20 and cat.rejected == 100
    assert cat.problems[-1].path == "$[19].price"
    assert len(cat) == 1


# -- dates: created_at takes every form segmint.engine.dates reads ------------------------------


@pytest.mark.parametrize(("text", "instant"), [
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
    ("2026-11-01T10:30:00Z", datetime(2026, 11, 1, 10, 30, tzinfo=timezone.utc)),
    ("2026-11-01T12:30:00+02:00", datetime(2026, 11, 1, 10, 30, tzinfo=timezone.utc)),
    ("2026-11-01T10:30:00", datetime(2026, 11, 1, 10, 30, tzinfo=timezone.utc)),
    ("2026-11-01 10:30", datetime(2026, 11, 1, 10, 30, tzinfo=timezone.utc)),
])
def test_created_at_forms(tmp_path, text, instant):
    cat = load_catalog_file(write(tmp_path, [{**GOOD, "created_at": text}]))
    assert cat.problems == ()
    assert cat.get("S1").created_at == instant and cat.get("S1").created_at.tzinfo is timezone.utc


def test_created_at_that_is_no_date(tmp_path):
    (err,) = load_catalog_file(write(tmp_path, [{**GOOD, "created_at": "01/11/2026"}])).problems
    assert err.path == "$[0].created_at" and err.line == 1
    assert err.message == f"bad product 'S1': '01/11/2026' is not a date or time; write it like {EXAMPLES}"


# -- CSV catalogs -------------------------------------------------------------------------------


def write_csv(tmp_path, text, name="catalog.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_catalog_types_cells_by_the_product_fields(tmp_path):
    path = write_csv(tmp_path, "\ufeffsku,name,url,price,category,compare_at_price,created_at,tags,stock,image\n"
                     "S1,Serum,/p/s1,52,skincare,60.5,2026-11-01,new; vegan ;,3,\n"
                     'M1,"Lipstick, red",https://shop.example/p/m1,9.90,makeup,,,,,https://cdn.example/m1.jpg\n')
    cat = load_catalog_file(path)
    assert cat.problems == ()
    s1, m1 = cat.get("S1"), cat.get("M1")
    assert (s1.price, s1.compare_at_price, s1.stock, s1.tags) == (52.0, 60.5, 3, ("new", "vegan"))
    assert s1.created_at == datetime(2026, 11, 1, tzinfo=timezone.utc) and s1.image is None
    assert (m1.name, m1.price, m1.compare_at_price, m1.stock, m1.tags) == ("Lipstick, red", 9.9, None, None, ())
    assert m1.image == "https://cdn.example/m1.jpg"


def test_csv_bad_rows_name_line_field_and_sku(tmp_path):
    path = write_csv(tmp_path, "sku,name,url,price,category,created_at\n"
                     "S1,Serum,/p/s1,52,skincare,2026-11-01\n"
                     "S2,Cream,/p/s2,cheap,skincare,\n"
                     '"S3","Multi\nline",/p/s3,4,skincare,\n'
                     "S4,Toner,/p/s4,5,skincare,someday\n"
                     "S5,Mask,/p/s5,5\n"
                     "S6,Gel,javascript:alert(1),5,skincare,\n")
    cat = load_catalog_file(path)
    assert [p.sku for p in cat] == ["S1", "S3"]
    assert [(p.line, p.path) for p in cat.problems] == [
        (3, "$[1].price"), (6, "$[3].created_at"), (7, "$[4]"), (8, "$[5].url")]
    assert cat.problems[0].message == "bad product 'S2': Expected `float`, got `str` (e.g. 52.0)"
    assert "'someday' is not a date or time" in cat.problems[1].message
    assert cat.problems[2].message == "bad product 'S5': expected 6 columns, got 4"


def test_csv_header_must_name_product_fields(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write_csv(tmp_path, "sku,name,url,prize,category\n"))
    assert info.value.suggestion == "price" and info.value.line == 1
    with pytest.raises(ConfigError, match="lacks the column.s. price"):
        load_catalog_file(write_csv(tmp_path, "sku,name,url,category\n"))


@pytest.mark.parametrize("name", ["catalog.xml", "catalog.jsonl", "catalog"])
def test_unsupported_extension_says_which_formats_are_accepted(tmp_path, name):
    with pytest.raises(ConfigError) as info:
        load_catalog_file(write_csv(tmp_path, "[]", name=name))
    assert ".json" in info.value.message and ".csv" in info.value.message
    assert info.value.file == str(tmp_path / name)
