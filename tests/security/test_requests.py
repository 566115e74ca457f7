"""Hostile requests against the real middleware: each gets the documented answer and nothing else.

Complements tests/middleware (which covers forged signatures, markup in slot names, 401/413 and
the basic escaping): here the cookie can never select another visitor's profile, whatever its
shape; hostile config titles, coupons and catalog data stay inert; bodies that are deep,
chunked past the bound or colliding are answered as documented.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import pytest

from segmint.engine.signing import new_visitor_id, sign, verify

VIP_ORDER = {"type": "order", "order_id": "vip-1",
             "items": [{"sku": "tv-1", "category": "electronics", "price": 900.0}]}


def cookie_of(response: Any) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("segmint_vid="):
            return header.split(";")[0].split("=", 1)[1]
    return None


@pytest.fixture
def victim(shop: Any) -> Any:
    """A runtime whose store holds a VIP visitor, and that visitor's valid cookie."""
    runtime = shop.runtime()
    visitor_id = new_visitor_id()
    runtime.record([dict(VIP_ORDER, visitor_id=visitor_id)])
    return runtime, visitor_id, sign(visitor_id, shop.SECRET)


def forged_variants(visitor_id: str, token: str) -> dict[str, str]:
    signature = token.split(".")[1]
    return {
        "other-secret": sign(visitor_id, "a-completely-different-secret"),
        "truncated": token[:-5],
        "id-only": visitor_id,
        "signature-flipped": f"{visitor_id}.{signature[::-1]}",
        "padded": token + "=",
        "10kb": token + "A" * 10_000,
        "10kb-prefix": "A" * 10_000 + token,
        "control-chars": token[:10] + "\x01\x1b[31m" + token[10:],
        "nul": token + "\x00",
        "base64-of-token": base64.b64encode(token.encode()).decode(),
        "lowercased": token.lower(),
    }


def test_the_vip_cookie_itself_gets_the_vip_widget(shop: Any, victim: Any):
    runtime, _, token = victim
    with shop.client(runtime) as client:
        response = client.get("/", headers={"cookie": f"segmint_vid={token}"})
    assert 'data-segmint-campaign="vip"' in response.text and "set-cookie" not in response.headers


@pytest.mark.parametrize("kind", list(forged_variants(new_visitor_id(), sign(new_visitor_id(), "x" * 16))))
def test_a_forged_cookie_gets_a_fresh_id_and_never_the_victims_profile(shop: Any, victim: Any, kind: str):
    runtime, visitor_id, token = victim
    value = forged_variants(visitor_id, token)[kind]
    raw = f"segmint_vid={value}".encode("latin-1", "replace")
    with shop.client(runtime) as client:
        # httpx refuses control characters in header values; send raw bytes through ASGI instead.
        response = client.get("/", headers=[(b"cookie", raw)] if kind in ("control-chars", "nul") else
                              {"cookie": raw.decode("latin-1")})
    assert response.status_code == 200
    fresh = verify(cookie_of(response), shop.SECRET)
    assert fresh is not None and fresh != visitor_id
    assert 'data-segmint-campaign="default"' in response.text and "VIP only" not in response.text


def test_two_cookies_the_first_one_counts_and_a_second_cannot_smuggle_the_victim(shop: Any, victim: Any):
    runtime, visitor_id, token = victim
    with shop.client(runtime) as client:
        response = client.get("/", headers={"cookie": f"segmint_vid=garbage; segmint_vid={token}"})
    assert verify(cookie_of(response), shop.SECRET) not in (None, visitor_id)
    assert 'data-segmint-campaign="vip"' not in response.text


def test_set_cookie_is_httponly_samesite_and_path_scoped(shop: Any):
    with shop.client(shop.runtime()) as client:
        header = client.get("/").headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header


@pytest.mark.parametrize("headers", [
    [(b"x-big", b"x" * 60_000)],
    [(f"x-h{i}".encode(), b"v" * 100) for i in range(500)],
    [(b"cookie", b"; ".join(f"c{i}=v{i}".encode() for i in range(2000)))],
    [(b"user-agent", b"\xff\xfe" * 5000)],
    [(b"accept", b"text/html" * 2000)],
])
def test_huge_and_odd_headers_get_the_page(shop: Any, headers: list[tuple[bytes, bytes]]):
    with shop.client(shop.runtime()) as client:
        response = client.get("/", headers=headers)
    assert response.status_code == 200 and "<h1>Shop</h1>" in response.text


def test_markup_in_the_path_and_query_is_never_reflected_by_segmint(shop: Any):
    runtime = shop.runtime(debug=True)
    evil = '"><img src=x onerror=evil()>'
    with shop.client(runtime) as client:
        response = client.get("/", params={"q": evil, "_sgm": f"default.{evil}.cart"})
        assert response.status_code == 200 and "onerror=evil()" not in response.text
        assert all(" " <= ch <= "~" for ch in response.headers["x-segmint-debug"])
        api = client.get("/_segmint/recommendations", params={"slot": "cart", "path": "/" + evil})
    assert api.status_code == 200 and api.headers["content-type"] == "application/json"
    assert "onerror=evil()" not in api.text


@pytest.mark.parametrize("slot", ['"><script>', "cart\" onmouseover=\"x", "cart<b>", "a" * 500, "cart\x00"])
def test_recommendations_refuse_hostile_slot_names_without_echoing_them(shop: Any, slot: str):
    with shop.client(shop.runtime()) as client:
        response = client.get("/_segmint/recommendations", params={"slot": slot})
    assert response.status_code == 400 and slot not in response.text


def test_hostile_titles_coupons_and_product_names_are_rendered_escaped(shop: Any):
    with shop.client(shop.runtime()) as client:
        html = client.get("/").text
        api = client.get("/_segmint/recommendations", params={"slot": "cart"}).json()["slots"]["cart"]
    for text in (html, api["html"]):
        assert "<script>" not in text and "<b>SAVE</b>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert 'href="https://shop.example/p/2?a=1&amp;b=&quot;x&quot;' in text  # quotes cannot end href
    assert api["title"] == f"Popular {shop.HOSTILE}"  # data stays data in JSON; escaped only as HTML


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)",
                                 "data:text/html,<script>", "vbscript:x", " javascript:x", "\\\\evil/x", "p/1"])
def test_a_product_with_a_script_url_is_left_out_naming_file_product_and_field(shop: Any, url: str):
    catalog = [{"sku": "bad", "name": "Bad", "url": url, "price": 1.0, "category": "x"}]
    runtime = shop.runtime(catalog=catalog)
    assert "bad" not in runtime.catalog
    (problem,) = runtime.catalog.problems
    assert problem.file.endswith("catalog.json") and problem.path == "$[0].url" and "'bad'" in problem.message


def test_a_script_url_arriving_by_hot_reload_is_never_served(shop: Any):
    runtime = shop.runtime()
    catalog = shop.tmp_path / "catalog.json"
    catalog.write_text(json.dumps(
        [{"sku": "safe-1", "name": "x", "url": "javascript:alert(1)", "price": 1.0, "category": "x"}]))
    stamp = time.time_ns() + 10**9  # coarse file timestamps: make the change visible to polling
    os.utime(catalog, ns=(stamp, stamp))
    assert runtime.reload_if_changed() is True  # the bad product is left out, the rest reloads
    assert "safe-1" not in runtime.catalog and runtime.catalog.rejected == 1
    with shop.client(runtime) as client:
        assert "javascript:" not in client.get("/").text


# -- event bodies ------------------------------------------------------------------------------
def test_a_chunked_body_past_the_bound_is_413(shop: Any):
    def chunks() -> Any:  # no Content-Length: the bound is enforced while reading
        for _ in range(1000):
            yield b" " * 4096

    with shop.client(shop.runtime()) as client:
        response = client.post("/_segmint/events", content=chunks(), headers=shop.AUTH)
    assert response.status_code == 413 and "larger than" in response.json()["error"]


def test_a_deeply_nested_body_is_400_not_a_crash(shop: Any):
    with shop.client(shop.runtime()) as client:
        response = client.post("/_segmint/events", content=b"[" * 50_000 + b"]" * 50_000, headers=shop.AUTH)
    assert response.status_code == 400 and response.json()["rejected"][0]["index"] is None


@pytest.mark.parametrize("event,field", [
    ({"items": [{"sku": "x", "price": "9.99"}]}, "items[0].price"),
    ({"items": [{"sku": "x", "quantity": -1}]}, "items[0].quantity"),
    ({"items": [{"sku": "x", "price": 1e300}]}, "items[0].price"),
    ({"items": [{"sku": "x", "price": 5.0, "discount": 6.0}]}, "items[0].discount"),
    ({"items": []}, "items"),
    ({"order_id": 42}, "order_id"),
    ({"order_id": "x" * 129}, "order_id"),
    ({"at": "yesterday"}, "at"),
    ({"customer_id": ["c-1"]}, "customer_id"),
    ({"is_admin": True}, "is_admin"),
])
def test_wrong_types_are_400_naming_index_and_field(shop: Any, event: dict[str, Any], field: str):
    good = dict(VIP_ORDER, customer_id="c-9")
    with shop.client(shop.runtime()) as client:
        response = client.post("/_segmint/events", json=[good | {"order_id": "ok"}, good | event],
                               headers=shop.AUTH)
    assert response.status_code == 200
    assert response.json()["stored"] == 1
    assert [(r["index"], r["field"]) for r in response.json()["rejected"]] == [(1, field)]


def test_colliding_order_ids_are_counted_once_in_a_batch_across_batches_and_customers(shop: Any):
    runtime = shop.runtime()
    order = dict(VIP_ORDER, order_id="same", customer_id="c-1")
    with shop.client(runtime) as client:
        first = client.post("/_segmint/events", json=[order, order], headers=shop.AUTH).json()
        again = client.post("/_segmint/events", json=[order], headers=shop.AUTH).json()
        other = client.post("/_segmint/events", json=[dict(order, customer_id="c-2")], headers=shop.AUTH).json()
        orders = runtime.profile(customer_id="c-1").orders, runtime.profile(customer_id="c-2").orders
    assert (first["stored"], first["duplicates"]) == (1, 1)
    assert (again["stored"], again["duplicates"]) == (0, 1)
    assert (other["stored"], other["duplicates"]) == (0, 1)  # order ids are global: a retry, not a new order
    assert orders == (1, 0)
