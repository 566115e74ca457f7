"""Helpers for the fault, crash and load tests: a real config, real runtimes, real servers.

``rel`` (a fixture) gives ``write_config``, ``runtime(...)``, ``client(runtime)``, ``Server``
(uvicorn in a child process, SIGKILL-able) and small utilities. Tests import nothing from
here directly (pytest runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

fx = sys.modules["segmint_tests_fixtures"]  # tests/fixtures.py, loaded by tests/conftest.py

HERE = Path(__file__).resolve().parent
SECRET, TOKEN, AUTH, PAGE = fx.SECRET, fx.TOKEN, fx.AUTH, fx.PAGE
wait_until = fx.wait_until

CATALOG = [
    {"sku": f"p-{i}", "name": f"Product {i}", "url": f"/products/p-{i}", "price": 10.0 + i,
     "category": "skincare" if i % 2 else "electronics"}
    for i in range(12)
] + [fx.BIG_TV]


def write_config(directory: Path, *, budget: int = 2000, cache_size: int = 1000, cache_ttl: float = 0.0,
                 vip_strategy: str = "manual", vip_params: str = fx.VIP_PARAMS,
                 store: Path | None = None, catalog: list[dict[str, Any]] | None = None) -> Path:
    """The test shop's config (``fx.write_config``) in ``directory``. ``cache_ttl=0``: every
    request reads the store, so a store fault shows at once."""
    return fx.write_config(
        directory, catalog=CATALOG if catalog is None else catalog, store=store,
        cache={"maxsize": cache_size, "ttl_seconds": cache_ttl}, middleware={"time_budget_ms": budget},
        vip_strategy=vip_strategy, vip_params=vip_params, skus=("p-1", "p-2", "p-3"))


def order(order_id: str, customer: str, *, price: float = 900.0) -> dict[str, Any]:
    return {"type": "order", "order_id": order_id, "customer_id": customer,
            "items": [{"sku": "tv-1", "category": "electronics", "price": price}]}


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process (Linux ``/proc``), in kB: all of it (``VmRSS``), or its
    heap alone (``RssAnon``: without the pages of files it maps, which are the kernel's
    page cache, shared and reclaimable)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


class Server:
    """``uvicorn shop_app:app`` in a child process on a free loopback port."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.port = fx.free_port()
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


class Rel:
    SECRET, TOKEN, AUTH, PAGE = SECRET, TOKEN, AUTH, PAGE
    write_config = staticmethod(write_config)
    order = staticmethod(order)
    rss_kb = staticmethod(rss_kb)
    wait_until = staticmethod(wait_until)
    Server = Server

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._runtimes = fx.Runtimes()

    def runtime(self, *, store: Any = None, extra_plugins: tuple[Any, ...] = (), **options: Any) -> Any:
        return self._runtimes.start(write_config(self.tmp_path, **options), store=store, extra_plugins=extra_plugins)

    def client(self, runtime: Any) -> Any:
        return fx.middleware_client(runtime, shutdown_timeout=2.0)

    def visitor_cookie(self, visitor_id: str) -> dict[str, str]:
        return fx.visitor_headers(visitor_id)

    def close(self) -> None:
        self._runtimes.close()


@pytest.fixture
def rel(tmp_path: Path) -> Iterator[Rel]:
    helper = Rel(tmp_path)
    yield helper
    helper.close()
