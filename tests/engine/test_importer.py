"""Bulk import of orders: grouping lines, rejected rows by line number, duplicates, JSONL."""

import json

import pytest

from segmint.engine import importer
from segmint.engine.errors import EventError
from segmint.engine.importer import import_orders
from segmint.engine.stores import MemoryStore, SQLiteStore

HEADER = "order_id,customer_id,at,sku,category,quantity,price,discount,coupon\n"


def write(tmp_path, text, name="orders.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_of_one_order_are_grouped_and_folded(tmp_path):
    path = write(tmp_path, HEADER
                 + "o1,c1,2025-01-01T10:00:00Z,serum,skincare,2,30.0,5,\n"
                 + "o1,c1,2025-01-01T10:00:00Z,cream,skincare,1,20.0,,\n"
                 + 'o2,c1,2025-02-01T10:00:00,"lip, red",makeup,1,15.5,0,WELCOME\n'
                 + "o3,c2,2025-02-01T10:00:00+01:00,sock,basics,3,2,0,\n")
    store = MemoryStore()
    progress = []
    report = import_orders(path, store, progress=lambda done, total: progress.append((done, total)))
    assert (report.lines, report.orders, report.duplicates, report.rejected) == (4, 3, 0, [])
    c1 = store.load(customer_id="c1")
    assert (c1.orders, c1.items, c1.spend) == (2, 4, 2 * 25.0 + 20.0 + 15.5)
    assert (c1.discounted_orders, c1.coupon_orders) == (2, 1)
    assert c1.category_items == {"skincare": 3, "makeup": 1}
    assert "lip, red" in c1.purchased_skus
    assert store.load(customer_id="c2").items == 3
    assert progress[-1] == (path.stat().st_size, path.stat().st_size)


def test_bad_rows_are_reported_by_line_number_and_reject_their_order(tmp_path):
    path = write(tmp_path, HEADER
                 + "o1,c1,2025-01-01T10:00:00Z,a,x,1,abc,0,\n"        # line 2: bad price
                 + "o1,c1,2025-01-01T10:00:00Z,b,x,1,5,0,\n"          # line 3: same order, skipped
                 + "o2,c1,yesterday,a,x,1,5,0,\n"                      # line 4: bad time
                 + "o3,c1,2025-01-01T10:00:00Z,a,x,-1,5,0,\n"         # line 5: negative quantity
                 + "o4,c1,2025-01-01T10:00:00Z,a,x,1,5,0\n"           # line 6: missing column
                 + "o5,c1,2025-01-01T10:00:00Z,a,x,1,5,0,\n"          # good
                 + "o5,c1,2025-01-01T10:00:00Z,b,x,1,5,9,\n"          # line 8: discount > price
                 + "o6,,2025-01-01T10:00:00Z,a,x,1,5,0,\n"            # line 9: no customer
                 + "o7,c1,2025-01-01T10:00:00Z,a,x,1,5,0,\n"         # good
                 + "o8,c1,2025-01-01T10:00:00Z,a,x,1,5,0,\n"
                 + "o8,c2,2025-01-01T10:00:00Z,a,x,1,5,0,\n")        # line 12: other customer
    store = MemoryStore()
    report = import_orders(path, store)
    lines = [line for line, _ in report.rejected]
    assert lines == [2, 3, 4, 5, 6, 8, 9, 12]
    reasons = dict(report.rejected)
    assert "price" in reasons[2] and "abc" in reasons[2]
    assert "o1" in reasons[3]
    assert "at" in reasons[4] and "quantity" in reasons[5] and "columns" in reasons[6]
    assert "discount" in reasons[8] and "customer_id" in reasons[9] and "differs" in reasons[12]
    assert report.orders == 1 and report.rejected_count == 8
    assert store.load(customer_id="c1").orders == 1  # o7 only: o5 lost a line so it is rejected


def test_reimporting_counts_duplicates(tmp_path):
    path = write(tmp_path, HEADER + "o1,c1,2025-01-01T10:00:00Z,a,x,1,5,0,\n")
    store = MemoryStore()
    import_orders(path, store)
    report = import_orders(path, store)
    assert (report.orders, report.duplicates) == (0, 1)
    assert store.load(customer_id="c1").orders == 1


def test_a_header_without_required_columns_is_an_error(tmp_path):
    path = write(tmp_path, "order_id,customer,when\no1,c1,2025\n")
    with pytest.raises(EventError, match="customer_id") as info:
        import_orders(path, MemoryStore())
    assert info.value.field == "customer_id"


def test_columns_may_come_in_any_order_and_optional_ones_may_be_missing(tmp_path):
    path = write(tmp_path, "\ufeffprice,quantity,sku,at,customer_id,order_id\n5,2,a,2025-01-01T00:00:00Z,c1,o1\n")
    store = MemoryStore()
    report = import_orders(path, store)
    assert report.rejected == [] and store.load(customer_id="c1").spend == 10.0


def test_rejections_listed_are_bounded_but_all_are_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_REPORTED", 3)
    path = write(tmp_path, HEADER + "".join(f"o{i},c1,bad,a,x,1,5,0,\n" for i in range(10)))
    report = import_orders(path, MemoryStore())
    assert len(report.rejected) == 3 and report.rejected_count == 10


def test_jsonl_orders(tmp_path):
    good = {"type": "order", "customer_id": "c1", "order_id": "o1", "at": "2025-01-01T10:00:00Z",
            "items": [{"sku": "a", "category": "x", "quantity": 2, "price": 3.0}]}
    untyped = {k: v for k, v in good.items() if k != "type"} | {"order_id": "o2"}
    lines = [json.dumps(good), json.dumps(good | {"order_id": "o3", "items": [{"sku": "a", "price": -1}]}),
             "", "{not json", json.dumps(untyped), json.dumps(good | {"order_id": "o4", "at": None}),
             json.dumps(good)]
    path = write(tmp_path, "\n".join(lines) + "\n", name="orders.jsonl")
    store = MemoryStore()
    report = import_orders(path, store)
    assert report.orders == 2 and report.duplicates == 1
    assert [line for line, _ in report.rejected] == [2, 4, 6]
    assert "items[0].price" in report.rejected[0][1]
    assert store.load(customer_id="c1").items == 4
    sniffed = write(tmp_path, json.dumps(good) + "\n", name="orders.txt")
    assert import_orders(sniffed, MemoryStore()).orders == 1


def test_batches_into_sqlite(tmp_path):
    rows = "".join(f"o{i // 3},c{i // 3 % 7},2025-01-01T10:00:00Z,s{i},x,1,2.5,0,\n" for i in range(300))
    path = write(tmp_path, HEADER + rows)
    store = SQLiteStore(str(tmp_path / "p.db"))
    report = import_orders(path, store, batch_size=40)
    assert report.orders == 100 and report.lines == 300
    assert sum(p.items for p in store.iter_profiles()) == 300
    assert sum(p.orders for p in store.iter_profiles()) == 100
    store.close()


def test_a_sqlite_import_syncs_once_at_the_end_and_restores_full_durability(tmp_path):
    import sqlite3

    from segmint.engine.stores import SQLiteStore

    seen = []

    class Watching(SQLiteStore):
        def append(self, events):
            with self._connection() as conn:
                seen.append(conn.execute("PRAGMA synchronous").fetchone()[0])
            return super().append(events)

    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,customer_id,at,sku,category,quantity,price,discount,coupon\n"
                   "o1,c1,2026-01-01T00:00:00Z,s1,x,1,10,0,\n")
    store = Watching(str(tmp_path / "p.db"))
    report = import_orders(csv, store)
    with store._connection() as conn:
        after = conn.execute("PRAGMA synchronous").fetchone()[0]
    store.close()
    assert report.orders == 1
    assert seen == [1] and after == 2  # NORMAL while importing, FULL again afterwards
    raw = sqlite3.connect(tmp_path / "p.db")  # checkpointed: readable from the main file
    assert raw.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    raw.close()


def test_a_line_that_is_not_utf8_is_rejected_by_number_and_the_rest_imported(tmp_path):
    # A file exported with a legacy encoding: the bad line is reported, the import goes on.
    path = tmp_path / "orders.csv"
    path.write_bytes(HEADER.encode()
                     + b"o1,c1,2025-01-01T10:00:00Z,serum,skincare,1,30.0,,\n"
                     + b"o2,c1,2025-01-02T10:00:00Z,cr\xe8me,skincare,1,20.0,,\n"   # line 3: latin-1
                     + b"o3,c2,2025-01-03T10:00:00Z,sock,basics,2,2,,\n")
    store = MemoryStore()
    report = import_orders(path, store)
    assert report.rejected == [(3, "not UTF-8 text (order skipped)")]
    assert (report.lines, report.orders) == (3, 2)
    assert store.load(customer_id="c1").purchased_skus == ("serum",)

    jsonl = tmp_path / "orders.jsonl"
    good = json.dumps({"order_id": "j1", "customer_id": "c9", "at": "2025-01-01T10:00:00Z",
                       "items": [{"sku": "a", "price": 1.0}]}).encode()
    jsonl.write_bytes(good + b"\n" + good.replace(b'"a"', b'"\xff"').replace(b"j1", b"j2") + b"\n")
    report = import_orders(jsonl, store)
    assert report.rejected == [(2, "not UTF-8 text")]
    assert report.orders == 1
