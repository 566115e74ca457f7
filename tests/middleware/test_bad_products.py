"""A bad product is not a broken shop: the runtime serves the good ones, logs each bad one once,
counts them and shows them on /health; the catalog mended, they are gone."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.engine.runtime import Segmint
from segmint.middleware import SegmintMiddleware


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse('<html><body><div data-segmint-slot="cart"></div></body></html>')


def half_bad(catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The test catalog with lip-1's price spoiled and a product without a name added."""
    spoiled = [dict(p, price="twelve") if p["sku"] == "lip-1" else p for p in catalog]
    return spoiled + [{"sku": "nameless", "url": "/products/x", "price": 1, "category": "makeup"}]


def test_a_runtime_with_a_half_bad_catalog_serves_the_good_products(tmp_path: Any, mw: Any, caplog: Any):
    config = mw.write_config(tmp_path)
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps(half_bad(mw.CATALOG), indent=1))
    with caplog.at_level(logging.WARNING, logger="segmint.runtime"):
        runtime = Segmint.from_config(config, watch=False)
    try:
        assert sorted(p.sku for p in runtime.catalog) == ["cream-1", "serum-1", "tv-1"]
        logged = [r.getMessage() for r in caplog.records if "bad product" in r.getMessage()]
        assert len(logged) == 2
        assert "$[1].price: bad product 'lip-1': Expected `float`, got `str`" in logged[0]
        assert "$[4].name: bad product 'nameless'" in logged[1]

        app = Starlette(routes=[Route("/", page)])
        app.add_middleware(SegmintMiddleware, runtime=runtime)
        with mw.TestClient(app) as client:
            html = client.get("/").text
            assert "/products/serum-1" in html and "/products/cream-1" in html  # the widget
            assert "/products/lip-1" not in html
            health = client.get("/_segmint/health", headers=mw.AUTH).json()
        assert health["catalog"]["products"] == 3 and health["catalog"]["bad_products"] == 2
        assert [p.split(": bad product ")[1].split(":")[0] for p in health["catalog"]["problems"]] == [
            "'lip-1'", "'nameless'"]

        # A reload for another reason (the config changed, the catalog did not) logs nothing new.
        caplog.clear()
        config.write_text(config.read_text().replace('title = "Popular <right> now"', 'title = "Popular"'))
        assert runtime.reload_if_changed()
        assert not [r for r in caplog.records if "bad product" in r.getMessage()]

        # Mended: every product is served and the health entry is clean.
        catalog_file.write_text(json.dumps(mw.CATALOG))
        assert runtime.reload_if_changed()
        assert len(runtime.catalog) == 4 and runtime.catalog.rejected == 0
    finally:
        runtime.close()
