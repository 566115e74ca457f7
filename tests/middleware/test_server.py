"""End to end against a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.engine.signing import new_visitor_id, sign
from segmint.middleware import SegmintMiddleware

pytestmark = pytest.mark.server

PAGE = ('<!doctype html><html><body><h1>Shop</h1><div data-segmint-slot="cart"></div>'
        "<p>footer</p></body></html>")


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """uvicorn serving ``app`` in a thread; stopped (with lifespan shutdown) by ``stop``."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on",
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(mw: Any, tmp_path: Path) -> Iterator[tuple[ServerThread, SegmintMiddleware, Path]]:
    config = mw.write_config(tmp_path, budget=200)
    # A broken store may keep the writer from flushing: bound the shutdown wait.
    segmint = SegmintMiddleware(Starlette(routes=[Route("/", page)]), config=config, shutdown_timeout=2.0)
    server = ServerThread(segmint).start()
    try:
        yield server, segmint, tmp_path / "segmint.db"
    finally:
        server.stop()


def test_a_page_view_gets_the_widget(served: Any, mw: Any):
    server, segmint, _ = served
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/", headers={"accept": "text/html"})
        assert response.status_code == 200
        assert 'data-segmint-campaign="default"' in response.text
        assert response.cookies.get("segmint_vid")
        assert int(response.headers["content-length"]) == len(response.content)
        posted = client.post("/_segmint/events", headers={"authorization": f"Bearer {mw.TOKEN}"},
                             json=[{"type": "order", "customer_id": "c", "order_id": "1",
                                    "items": [{"sku": "tv-1", "price": 900.0}]}])
        assert posted.status_code == 200 and posted.json()["stored"] == 1


@pytest.mark.parametrize("damage", ["remove", "corrupt"])
def test_a_broken_store_mid_run_still_serves_every_page(served: Any, mw: Any, damage: str):
    server, segmint, store = served
    with httpx.Client(base_url=server.url) as client:
        assert 'data-segmint-campaign="default"' in client.get("/").text
    segmint.runtime.writer.flush(timeout=5)
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{store}{suffix}")
        if damage == "remove":
            path.unlink(missing_ok=True)
        elif path.exists():  # overwrite every byte, the shared-memory index included
            path.write_bytes(b"\xa5" * max(path.stat().st_size, 4096))
    statuses, bodies = [], []
    with httpx.Client(base_url=server.url) as client:
        for _ in range(30):  # a returning visitor each time: every request needs the store
            client.cookies.clear()
            response = client.get("/", headers={"cookie": f"segmint_vid={sign(new_visitor_id(), mw.SECRET)}"})
            statuses.append(response.status_code)
            bodies.append(response.text)
    assert statuses == [200] * 30
    for body in bodies:
        assert body == PAGE or ('data-segmint-campaign="default"' in body and body.endswith("<p>footer</p></body></html>"))
    if damage == "corrupt":  # the store really failed, and those pages went out unchanged
        assert segmint.counters.get("failures") > 0
        assert bodies.count(PAGE) > 0
