"""The test shop, once: its config template, catalog base, page, secrets, and the builders
of real runtimes and middleware clients that the folder conftests share.

Each folder's conftest keeps only what is its own (its catalog rows, the options its tests
turn, its fixtures); the config they write is ``write_config`` with those options.

``tests/conftest.py`` loads this file by path as ``segmint_tests_fixtures`` (pytest runs with
``--import-mode=importlib``, so test helpers are not importable by name); a conftest or test
module reaches it as ``sys.modules["segmint_tests_fixtures"]``, and loads other helper files
(or another test module, to run its tests again) with ``load_by_path``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient prefers httpx2; httpx (a dev dependency) works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = [
    "AUTH", "BIG_TV", "PAGE", "SECRET", "TESTS", "TOKEN", "VIP_PARAMS", "Runtimes", "TestClient", "free_port",
    "load_by_path", "middleware_client", "redis_server", "shop_app", "toml_value", "visitor_cookie",
    "visitor_headers", "wait_until", "write_config",
]

TESTS = Path(__file__).resolve().parent


def load_by_path(name: str, path: Path) -> Any:
    """The module in the file ``path`` (``TESTS / "redis_server.py"``), loaded once as ``name``."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


#: The real redis-server helper (``redis_server`` fixture); benchmarks load that file alone.
redis_server = load_by_path("segmint_tests_redis_server", TESTS / "redis_server.py")
#: A free loopback port.
free_port = redis_server.free_port

SECRET = "test-secret-0123456789abcdef"
TOKEN = "intake-token-123456"
#: The intake token's Authorization header.
AUTH = {"authorization": f"Bearer {TOKEN}"}

#: The product the VIP campaign shows the big spenders: every test catalog has it.
BIG_TV = {"sku": "tv-1", "name": "Big TV", "url": "/products/tv-1", "price": 900.0, "category": "electronics"}

#: The shop's page: one ``cart`` slot between a heading and a footer.
PAGE = ('<!doctype html><html><body><h1>Shop</h1><div data-segmint-slot="cart"></div>'
        "<p>footer</p></body></html>")

# The big spenders bought the TV the VIP campaign shows: ``exclude_purchased = false`` shows it
# anyway (tests see the segment's campaign by its sku).
CONFIG = """\
[store]
path = {store}

[identity]
secret = {secret}

[api]
token = {token}

[catalog]
path = {catalog}
{sections}
[segments.big_spender]
filter = {{ "spend.total" = {{ "$gte" = 500 }} }}

[[campaigns]]
id = "vip"
segment = "big_spender"
slots = {vip_slots}
strategy = {vip_strategy}
params = {vip_params}
title = "For our best customers"
priority = 10

[[campaigns]]
id = "default"
slots = {slots}
strategy = "manual"
params = {{ skus = {skus} }}
title = {title}
{default}"""

VIP_PARAMS = '{ skus = ["tv-1"], exclude_purchased = false }'


def toml_value(value: str | bool | int | float | Iterable[str]) -> str:
    """A TOML string, boolean, number or list of strings (their JSON spelling is valid TOML)."""
    return json.dumps(value if isinstance(value, (str, bool, int, float)) else list(value))


def _lines(values: Mapping[str, Any], *, raw: bool = False) -> str:
    return "".join(f"{key} = {value if raw else toml_value(value)}\n" for key, value in values.items())


def write_config(directory: Path, *, catalog: list[dict[str, Any]], store: str | Path | None = None,
                 middleware: Mapping[str, Any] | None = None, cache: Mapping[str, Any] | None = None,
                 vip_slots: Iterable[str] = ("cart",), vip_strategy: str = "manual", vip_params: str = VIP_PARAMS,
                 slots: Iterable[str] = ("cart",), skus: Iterable[str] = (), title: str = "Popular now",
                 default: Mapping[str, str] | None = None) -> Path:
    """Write ``catalog.json`` and ``segmint.toml`` (a store file beside them unless ``store``
    says otherwise) to ``directory``; the config's path.

    ``middleware`` and ``cache`` are the keys of those tables; the ``big_spender`` segment's
    ``vip`` campaign shows the TV; the ``default`` campaign shows ``skus`` with ``title``, and
    ``default`` adds keys to it as raw TOML (``{"coupon": '{ code = "X", percent = 10 }'}``).
    """
    catalog_path = directory / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    sections = "".join(f"\n[{name}]\n{_lines(values)}" for name, values in (("cache", cache), ("middleware", middleware))
                       if values is not None)
    path = directory / "segmint.toml"
    path.write_text(CONFIG.format(
        store=toml_value(store if isinstance(store, str) else (store or directory / "segmint.db").as_posix()),
        secret=toml_value(SECRET), token=toml_value(TOKEN), catalog=toml_value(catalog_path.as_posix()),
        sections=sections, vip_slots=toml_value(vip_slots), vip_strategy=toml_value(vip_strategy),
        vip_params=vip_params, slots=toml_value(slots), skus=toml_value(skus), title=toml_value(title),
        default=_lines(default or {}, raw=True)))
    return path


class Runtimes:
    """Real runtimes started from config files, and the stores handed to them; ``close()``
    (at teardown) closes them newest first, each runtime before its store."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], Any]] = []

    def start(self, config: Path, *, store: Any = None, **options: Any) -> Any:
        """``Segmint.from_config(config, watch=False, ...)``: tests reload by hand."""
        from segmint.engine.runtime import Segmint

        if store is not None:
            self._closers.append(store.close)
        runtime = Segmint.from_config(config, watch=False, store=store, **options)
        self._closers.append(runtime.close)
        return runtime

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


def shop_app(*routes: Any, page: str = PAGE) -> Any:
    """A Starlette shop that serves ``page`` at ``/`` (and ``routes``)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def home(request: Any) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", home), *routes])


def middleware_client(runtime: Any, app: Any = None, **options: Any) -> TestClient:
    """A TestClient of ``app`` (default ``shop_app()``) behind ``SegmintMiddleware`` on ``runtime``."""
    from segmint.middleware import SegmintMiddleware

    return TestClient(SegmintMiddleware(shop_app() if app is None else app, runtime=runtime, **options))


def visitor_cookie(visitor_id: str | None = None) -> str:
    """The ``cookie`` header of a returning visitor (a new id by default): its signed visitor id."""
    from segmint.engine.signing import new_visitor_id, sign

    return f"segmint_vid={sign(visitor_id or new_visitor_id(), SECRET)}"


def visitor_headers(visitor_id: str | None = None) -> dict[str, str]:
    """A browser's page request as ``visitor_id`` (a new id by default)."""
    return {"accept": "text/html", "cookie": visitor_cookie(visitor_id)}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
