"""Helpers for the fault, crash and load tests: a real config, real runtimes, real servers.

``rel`` (a fixture) gives ``write_config``, ``runtime(...)``, ``client(runtime)``, ``Server``
(uvicorn in a child process, SIGKILL-able) and small utilities. Tests import nothing from
here directly (pytest runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

HERE = Path(__file__).resolve().parent
SECRET = "reliability-secret-0123456789"
TOKEN = "reliability-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
PAGE = '<!doctype html><html><body><h1>Shop</h1><div data-segmint-slot="cart"></div><p>footer</p></body></html>'

CATALOG = [
    {"sku": f"p-{i}", "name": f"Product {i}", "url": f"/products/p-{i}", "price": 10.0 + i,
     "category": "skincare" if i % 2 else "electronics"}
    for i in range(12)
] + [{"sku": "tv-1", "name": "Big TV", "url": "/products/tv-1", "price": 900.0, "category": "electronics"}]

CONFIG = """\
[store]
path = "{store}"

[identity]
secret = "{secret}"

[api]
token = "{token}"

[catalog]
path = "{catalog}"

[cache]
maxsize = {cache_size}
ttl_seconds = {cache_ttl}

[middleware]
time_budget_ms = {budget}

[segments.big_spender]
filter = {{ "spend.total" = {{ "$gte" = 500 }} }}

[[campaigns]]
id = "vip"
segment = "big_spender"
slots = ["cart"]
strategy = "{vip_strategy}"
params = {vip_params}
title = "For our best customers"
priority = 10

[[campaigns]]
id = "default"
slots = ["cart"]
strategy = "manual"
params = {{ skus = ["p-1", "p-2", "p-3"] }}
title = "Popular now"
"""


def write_config(directory: Path, *, budget: int = 2000, cache_size: int = 1000, cache_ttl: float = 0.0,
                 vip_strategy: str = "manual", vip_params: str = '{ skus = ["tv-1"], exclude_purchased = false }',
                 store: Path | None = None, catalog: list[dict[str, Any]] | None = None) -> Path:
    """The config (and catalog) in ``directory``. ``cache_ttl=0``: every request reads the store,
    so a store fault shows at once. The big spenders bought the TV the VIP campaign shows:
    ``exclude_purchased = false`` shows it anyway."""
    catalog_path = directory / "catalog.json"
    catalog_path.write_text(json.dumps(CATALOG if catalog is None else catalog))
    path = directory / "segmint.toml"
    path.write_text(CONFIG.format(
        store=(store or directory / "segmint.db").as_posix(), secret=SECRET, token=TOKEN,
        catalog=catalog_path.as_posix(), budget=budget, cache_size=cache_size, cache_ttl=cache_ttl,
        vip_strategy=vip_strategy, vip_params=vip_params))
    return path


def order(order_id: str, customer: str, *, price: float = 900.0) -> dict[str, Any]:
    return {"type": "order", "order_id": order_id, "customer_id": customer,
            "items": [{"sku": "tv-1", "category": "electronics", "price": price}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process (Linux ``/proc``), in kB: all of it (``VmRSS``), or its
    heap alone (``RssAnon``: without the pages of files it maps, which are the kernel's
    page cache, shared and reclaimable)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Server:
    """``uvicorn shop_app:app`` in a child process on a free loopback port."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Server:
        env = {**os.environ, "SEGMINT_CONFIG": str(self.config)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "shop_app:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
                env=env, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(self.url + "/_segmint/health", headers=AUTH, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(ready, timeout):
            raise RuntimeError("uvicorn did not start")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def health(self) -> dict[str, Any]:
        """segmint's health endpoint: counters, event writer, profile cache, reload error."""
        return httpx.get(self.url + "/_segmint/health", headers=AUTH, timeout=10).json()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM: uvicorn runs the lifespan shutdown, which flushes queued events."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


async def _page(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE)


class Rel:
    SECRET, TOKEN, AUTH, PAGE = SECRET, TOKEN, AUTH, PAGE
    write_config = staticmethod(write_config)
    order = staticmethod(order)
    rss_kb = staticmethod(rss_kb)
    wait_until = staticmethod(wait_until)
    Server = Server

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._closers: list[Callable[[], Any]] = []

    def runtime(self, *, store: Any = None, extra_plugins: tuple[Any, ...] = (), **options: Any) -> Any:
        from segmint.engine.runtime import Segmint

        path = write_config(self.tmp_path, **options)
        runtime = Segmint.from_config(path, watch=False, store=store, extra_plugins=extra_plugins)
        self._closers.append(runtime.close)
        if store is not None:
            self._closers.append(store.close)
        return runtime

    def client(self, runtime: Any) -> TestClient:
        from segmint.middleware import SegmintMiddleware

        asgi = SegmintMiddleware(Starlette(routes=[Route("/", _page)]), runtime=runtime, shutdown_timeout=2.0)
        return TestClient(asgi)

    def visitor_cookie(self, visitor_id: str) -> dict[str, str]:
        from segmint.engine.signing import sign

        return {"cookie": f"segmint_vid={sign(visitor_id, SECRET)}", "accept": "text/html"}

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


@pytest.fixture
def rel(tmp_path: Path) -> Iterator[Rel]:
    helper = Rel(tmp_path)
    yield helper
    helper.close()
