"""End to end against a real uvicorn server on a free loopback port."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from segmint.middleware import SegmintMiddleware

pytestmark = pytest.mark.server

fx = sys.modules["segmint_tests_fixtures"]  # tests/fixtures.py, loaded by tests/conftest.py
PAGE = fx.PAGE


class ServerThread:
    """uvicorn serving ``app`` in a thread; stopped (with lifespan shutdown) by ``stop``."""

    def __init__(self, app: Any) -> None:
        self.port = fx.free_port()
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
    segmint = SegmintMiddleware(fx.shop_app(), config=config, shutdown_timeout=2.0)
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
        posted = client.post("/_segmint/events", headers=mw.AUTH,
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
            response = client.get("/", headers={"cookie": mw.visitor_cookie()})
            statuses.append(response.status_code)
            bodies.append(response.text)
    assert statuses == [200] * 30
    for body in bodies:
        assert body == PAGE or ('data-segmint-campaign="default"' in body and body.endswith("<p>footer</p></body></html>"))
    if damage == "corrupt":  # the store really failed, and those pages went out unchanged
        assert segmint.counters.get("failures") > 0
        assert bodies.count(PAGE) > 0


# -- segmint that cannot start: the shop is served as it is, until the files are mended -----------
async def api(request: Any) -> JSONResponse:
    return JSONResponse({"items": [1, 2, 3]})


async def stream(request: Any) -> StreamingResponse:
    async def chunks() -> Any:
        for i in range(3):
            yield f"<p>chunk {i}</p>".encode()
    return StreamingResponse(chunks(), media_type="text/html")


APP_BODIES = {"/": PAGE, "/api": '{"items":[1,2,3]}', "/stream": "<p>chunk 0</p><p>chunk 1</p><p>chunk 2</p>"}


def _break_catalog_json(config: Path, request: Any) -> Callable[[], None]:
    catalog = config.parent / "catalog.json"
    good = catalog.read_text()
    catalog.write_text('[{"sku": "serum-1",')
    return lambda: catalog.write_text(good)


def _remove_catalog(config: Path, request: Any) -> Callable[[], None]:
    catalog = config.parent / "catalog.json"
    good = catalog.read_text()
    catalog.unlink()
    return lambda: catalog.write_text(good)


def _filter_typo(config: Path, request: Any) -> Callable[[], None]:
    good = config.read_text()
    config.write_text(good.replace('"spend.total"', '"spend.totl"'))
    return lambda: config.write_text(good)


def _unreachable_redis(config: Path, request: Any) -> Callable[[], None]:
    redis = request.getfixturevalue("redis_server")  # only this case needs redis-server
    config.write_text(config.read_text().replace("[store]\n", f'[store]\nurl = "{redis.url}"\n'))
    redis.stop()  # its port is closed now; the same port answers again once it is started
    return redis.start


START_FAULTS = {
    "catalog not JSON": (_break_catalog_json, "catalog.json: $: catalog is not a JSON list of products"),
    "catalog missing": (_remove_catalog, "catalog.json: $: cannot read catalog file"),
    "filter typo": (_filter_typo, "segmint.toml:20: $.segments.big_spender.filter.spend.totl: unknown field"),
    "Redis unreachable": (_unreachable_redis, "opening the store failed"),
}


@pytest.mark.parametrize("fault", list(START_FAULTS))
def test_segmint_that_cannot_start_serves_the_shop_unchanged_until_mended(
        fault: str, mw: Any, tmp_path: Path, request: Any, caplog: Any, monkeypatch: Any):
    import segmint.engine.startup

    monkeypatch.setattr(segmint.engine.startup, "RETRY_BACKOFF", (0.2,))  # the store: retried quickly
    damage, cause = START_FAULTS[fault]
    config = mw.write_config(tmp_path, budget=200)
    mend = damage(config, request)
    with caplog.at_level(logging.ERROR, logger="segmint.startup"):
        segmint = SegmintMiddleware(fx.shop_app(Route("/api", api), Route("/stream", stream)), config=config)
        server = ServerThread(segmint).start()
        try:
            with httpx.Client(base_url=server.url) as client:
                for _ in range(3):
                    for path, body in APP_BODIES.items():
                        response = client.get(path, headers={"accept": "text/html"})
                        assert (response.status_code, response.text) == (200, body)
                        assert "set-cookie" not in response.headers
                health = client.get("/_segmint/health", headers=mw.AUTH)
                assert health.status_code == 503 and cause in health.json()["error"]
                mend()
                deadline = time.monotonic() + 10
                while 'data-segmint-campaign="default"' not in client.get("/").text and time.monotonic() < deadline:
                    time.sleep(0.05)
                response = client.get("/", headers={"accept": "text/html"})
                assert 'data-segmint-campaign="default"' in response.text
                assert client.get("/api").text == APP_BODIES["/api"]
                assert client.get("/_segmint/health", headers=mw.AUTH).status_code == 200
        finally:
            server.stop()
    logged = [r.getMessage() for r in caplog.records if r.name == "segmint.startup"]
    assert len(logged) == 1 and cause in logged[0]  # once, not per request or per retry
