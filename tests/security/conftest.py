"""A shop with hostile data, served through the real middleware and runtime.

``shop`` writes a config and catalog to ``tmp_path`` whose titles, coupon codes and product
names carry markup, quotes and script, builds the REAL runtime from them and wraps a small
Starlette app in ``SegmintMiddleware``. Tests reach the helpers through the ``shop`` fixture
(pytest runs with ``--import-mode=importlib``: conftest modules are not importable).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

fx = sys.modules["segmint_tests_fixtures"]  # tests/fixtures.py, loaded by tests/conftest.py

HOSTILE = "\"'><script>alert(1)</script>"

CATALOG = [
    {"sku": "safe-1", "name": f"Serum {HOSTILE}", "url": "/products/safe-1", "price": 30.0,
     "category": "skincare", "image": "/img/safe-1.png"},
    {"sku": "safe-2", "name": "Quote \" ' & < > Cream", "url": "https://shop.example/p/2?a=1&b=\"x\"",
     "price": 45.0, "category": "skincare"},
    fx.BIG_TV,
]


def write_shop(tmp_path: Path, *, debug: bool = False, catalog: list[dict[str, Any]] | None = None,
               title: str = f"Popular {HOSTILE}", coupon: str = "<b>SAVE</b>\"10") -> Path:
    """The test shop's config (``fx.write_config``) with hostile product names, title and coupon."""
    return fx.write_config(
        tmp_path, catalog=CATALOG if catalog is None else catalog,
        middleware={"debug_header": debug, "time_budget_ms": 2000}, skus=("safe-1", "safe-2"), title=title,
        default={"coupon": f"{{ code = {fx.toml_value(coupon)}, percent = 10 }}"})


async def _echo(request: Request) -> HTMLResponse:
    # A careless app that echoes the query string: segmint must not make it worse.
    return HTMLResponse(fx.PAGE.replace("<h1>Shop</h1>", f"<h1>{request.url.path}</h1>"))


class Shop:
    """Helpers and constants for the security tests."""

    SECRET = fx.SECRET
    TOKEN = fx.TOKEN
    HOSTILE = HOSTILE
    PAGE = fx.PAGE
    AUTH = fx.AUTH
    write_shop = staticmethod(write_shop)
    TestClient = fx.TestClient

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._runtimes = fx.Runtimes()

    def runtime(self, **options: Any) -> Any:
        return self._runtimes.start(write_shop(self.tmp_path, **options))

    def client(self, runtime: Any) -> Any:
        return fx.middleware_client(runtime, fx.shop_app(Route("/echo/{rest:path}", _echo)))

    def close(self) -> None:
        self._runtimes.close()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    helper = Shop(tmp_path)
    yield helper
    helper.close()
