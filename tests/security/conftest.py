"""A shop with hostile data, served through the real middleware and runtime.

``shop`` writes a config and catalog to ``tmp_path`` whose titles, coupon codes and product
names carry markup, quotes and script, builds the REAL runtime from them and wraps a small
Starlette app in ``SegmintMiddleware``. Tests reach the helpers through the ``shop`` fixture
(pytest runs with ``--import-mode=importlib``: conftest modules are not importable).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient may warn about httpx versions
    from starlette.testclient import TestClient

SECRET = "security-secret-0123456789abcdef"
TOKEN = "security-token-9876543210"
HOSTILE = "\"'><script>alert(1)</script>"

CATALOG = [
    {"sku": "safe-1", "name": f"Serum {HOSTILE}", "url": "/products/safe-1", "price": 30.0,
     "category": "skincare", "image": "/img/safe-1.png"},
    {"sku": "safe-2", "name": "Quote \" ' & < > Cream", "url": "https://shop.example/p/2?a=1&b=\"x\"",
     "price": 45.0, "category": "skincare"},
    {"sku": "tv-1", "name": "Big TV", "url": "/products/tv-1", "price": 900.0, "category": "electronics"},
]

CONFIG = """\
[store]
path = "{store}"

[identity]
secret = "{secret}"

[api]
token = "{token}"

[catalog]
path = "{catalog}"

[middleware]
debug_header = {debug}
time_budget_ms = 2000

[segments.big_spender]
filter = {{ "spend.total" = {{ "$gte" = 500 }} }}

[[campaigns]]
id = "vip"
segment = "big_spender"
slots = ["cart"]
strategy = "manual"
# The big spenders bought the TV: show it anyway.
params = {{ skus = ["tv-1"], exclude_purchased = false }}
title = "VIP only"
priority = 10

[[campaigns]]
id = "default"
slots = ["cart"]
strategy = "manual"
params = {{ skus = ["safe-1", "safe-2"] }}
title = {title}
coupon = {{ code = {coupon}, percent = 10 }}
"""

PAGE = '<!doctype html><html><body><h1>Shop</h1><div data-segmint-slot="cart"></div></body></html>'


def toml_string(text: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML for these characters)."""
    return json.dumps(text)


def write_shop(tmp_path: Path, *, debug: bool = False, catalog: list[dict[str, Any]] | None = None,
               title: str = f"Popular {HOSTILE}", coupon: str = "<b>SAVE</b>\"10") -> Path:
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(CATALOG if catalog is None else catalog))
    path = tmp_path / "segmint.toml"
    path.write_text(CONFIG.format(
        store=(tmp_path / "segmint.db").as_posix(), secret=SECRET, token=TOKEN,
        catalog=catalog_path.as_posix(), debug=str(debug).lower(), title=toml_string(title),
        coupon=toml_string(coupon),
    ))
    return path


async def _page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def _echo(request: Request) -> HTMLResponse:
    # A careless app that echoes the query string: segmint must not make it worse.
    return HTMLResponse(PAGE.replace("<h1>Shop</h1>", f"<h1>{request.url.path}</h1>"))


class Shop:
    """Helpers and constants for the security tests."""

    SECRET = SECRET
    TOKEN = TOKEN
    HOSTILE = HOSTILE
    PAGE = PAGE
    AUTH = {"authorization": f"Bearer {TOKEN}"}
    write_shop = staticmethod(write_shop)
    TestClient = TestClient

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._runtimes: list[Any] = []

    def runtime(self, **options: Any) -> Any:
        from segmint.engine.runtime import Segmint

        runtime = Segmint.from_config(write_shop(self.tmp_path, **options), watch=False)
        self._runtimes.append(runtime)
        return runtime

    def client(self, runtime: Any) -> TestClient:
        from segmint.middleware import SegmintMiddleware

        app = Starlette(routes=[Route("/", _page), Route("/echo/{rest:path}", _echo)])
        return TestClient(SegmintMiddleware(app, runtime=runtime))

    def close(self) -> None:
        for runtime in self._runtimes:
            runtime.close()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    helper = Shop(tmp_path)
    yield helper
    helper.close()
