"""The middleware under a real server and load generator, against the same app without it.

Five uvicorn servers (1 worker each, httptools + uvloop when installed, access log off) run
the same Starlette app on free loopback ports, all at once:

- ``bare``: the app alone;
- ``segmint``: the app wrapped in ``SegmintMiddleware`` with a real config: one campaign
  (bestsellers over ``examples/catalog.json``) for the page's ``home`` slot, a SQLite store
  seeded with the demo shop's history (so bestsellers exist), a generous time budget;
- ``floor``: a pure-ASGI middleware, written here, that only buffers the body and replaces
  the slot with a fixed string: the least any body-rewriting middleware does;
- ``gzip``: Starlette's ``GZipMiddleware`` (a reference for a common middleware's cost);
- ``passthrough``: a pure-ASGI middleware that only calls the app (JSON only): the least any
  middleware costs, and so how finely this machine resolves the JSON figure.

The page is 20 KB of HTML with one ``<div data-segmint-slot="home"></div>``; every request
carries the same signed visitor cookie (warm profile cache), ``Accept: text/html`` (JSON:
``application/json``) and ``Accept-Encoding: gzip``. ``wrk`` (Debian's ``apt-get install
wrk``) drives each server in turn with 8 connections, the variants alternating, 3 repetitions
of 6 s (quick: 2 of 2 s); figures are medians. Without ``wrk`` a bounded httpx client in a
separate process does the same job.

Figures: req/s relative to bare (target >= 0.80x), added p99 latency over bare at the same
concurrency (target < 1 ms), and a JSON response passing through segmint untouched
(target >= 0.97x bare; a few percent is less than the machine drifts between runs, so this
one is 8 groups of 2 s runs (quick: 4 of 1 s), bare, segmint and the do-nothing passthrough
back to back in rotating order, and the median of each one's ratios to the bare run of its
group). The JSON groups run first, and after every segmint page run the benchmark waits
until segmint's event writer has folded the run's page views (``/_segmint/health``): under
wrk they arrive faster than the writer folds them, and the backlog would otherwise be folded
on the CPU of the next run, whichever server it measures. That wait is reported (row note)
and an info row gives the pages per second with it counted. Checks: the segmint page
contains the widget (``data-segmint-campaign``), the floor's page its replacement, gzip
decodes to the page, JSON bodies are identical, wrk saw no errors, and the store logged an
impression for at least 95% of the segmint page views (so segmint personalized under load,
not failed open).

Run alone: ``python -m benchmarks.bench_middleware [--quick]``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .bench_profiles import ROOT, row

VARIANTS = ("bare", "segmint", "floor", "gzip")  # the page figures
JSON_VARIANTS = ("bare", "segmint", "passthrough")
SECRET = "bench-secret-0123456789abcdef"
API_TOKEN = "bench-api-token-0123456789"  # to read the event writer's queue (``/_segmint/health``)
VISITOR = "BenchVisitor0123456789"
SLOT = b'<div data-segmint-slot="home"></div>'
FLOOR_WIDGET = b'<div class="widget" data-floor="1">static recommendations</div>'
CONNECTIONS = 8
RATIO_TARGET, LATENCY_TARGET_MS, JSON_TARGET = 0.80, 1.0, 0.97


# -- the app and the floor middleware (imported by the server processes) ---------------------

def page(size: int = 20_000) -> bytes:
    """A shop page of about ``size`` bytes: product cards, one slot in the middle."""
    cards: list[str] = []
    while sum(map(len, cards)) < size - 250:
        i = len(cards)
        cards.append(f'<li class="card"><a href="/products/SKU-{i:04d}"><img src="/img/{i}.jpg" alt="Product {i}">'
                     f'<span class="name">Product number {i}</span><span class="price">{19 + i % 80}.99 EUR</span>'
                     f'</a></li>\n')
    half = len(cards) // 2
    html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Shop</title></head>"
            f"<body><header><h1>Shop</h1></header><main><ul>{''.join(cards[:half])}</ul>"
            f"{SLOT.decode()}<ul>{''.join(cards[half:])}</ul></main></body></html>")
    return html.encode()


PAGE = page()
JSON_BODY = json.dumps({"items": [{"sku": f"SKU-{i:04d}", "price": 19.99 + i} for i in range(40)]}).encode()


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def home(request: Any) -> Response:
        return Response(PAGE, media_type="text/html; charset=utf-8")

    async def api(request: Any) -> Response:
        return Response(JSON_BODY, media_type="application/json")

    return Starlette(routes=[Route("/", home), Route("/api", api)])


class ReplaceOneString:
    """The floor: buffer an HTML body, replace the slot once, fix Content-Length."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message["headers"])
                if headers.get(b"content-type", b"").startswith(b"text/html"):
                    held["start"] = message
                    return
            elif message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks).replace(SLOT, FLOOR_WIDGET, 1)
                start = held.pop("start")
                headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, wrapped)


class PassThrough:
    """The JSON reference: a middleware that only calls the app (one more coroutine frame)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def app_factory() -> Any:
    """What each uvicorn server runs (``--factory``): the variant named by ``BENCH_VARIANT``."""
    app = starlette_app()
    variant = os.environ["BENCH_VARIANT"]
    if variant == "segmint":
        from segmint.middleware import SegmintMiddleware

        return SegmintMiddleware(app, config=os.environ["BENCH_CONFIG"])
    if variant == "floor":
        return ReplaceOneString(app)
    if variant == "gzip":
        from starlette.middleware.gzip import GZipMiddleware

        return GZipMiddleware(app)
    if variant == "passthrough":
        return PassThrough(app)
    return app


# -- servers --------------------------------------------------------------------------------

def write_config(tmp: Path, *, cache_size: int = 10_000) -> Path:
    """A config with one bestsellers campaign for the home slot and a seeded SQLite store.

    ``cache_size`` is the profile cache's bound (``bench_pipeline`` rotates more visitors
    than the default holds).
    """
    from segmint.engine.catalog import load_catalog_file
    from segmint.middleware.demo.seed import generate_history, write_history

    now = datetime.now(timezone.utc)  # the server's clock is the real one: history ends now
    db = tmp / "segmint.db"
    catalog = ROOT / "examples" / "catalog.json"
    events, _ = generate_history(load_catalog_file(catalog), now, seed=42)
    write_history(db, events, now, seed=42)
    config = tmp / "segmint.toml"
    config.write_text(f"""
[store]
path = "{db}"

[identity]
secret = "{SECRET}"

[api]
token = "{API_TOKEN}"

[catalog]
path = "{catalog}"

[middleware]
time_budget_ms = 1000

[cache]
ttl_seconds = 3600
maxsize = {cache_size}

[[campaigns]]
id = "bench-bestsellers"
slots = ["home"]
strategy = "bestsellers"
params = {{ limit = 4 }}
title = "Popular right now"
""")
    return config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Server:
    def __init__(self, variant: str, config: Path, log: Path, *, workers: int = 1) -> None:
        self.variant, self.port = variant, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "uvicorn", "benchmarks.bench_middleware:app_factory", "--factory",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
                "--no-access-log", "--log-level", "warning"]
        if _has("httptools"):
            args += ["--http", "httptools"]
        if _has("uvloop"):
            args += ["--loop", "uvloop"]
        env = {**os.environ, "BENCH_VARIANT": variant, "BENCH_CONFIG": str(config)}
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.variant} server exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.variant} server did not start within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: uvicorn runs lifespan shutdown (segmint flushes)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# -- load -----------------------------------------------------------------------------------

def _headers(path: str = "/") -> dict[str, str]:
    """A browser's page request; for ``/api``, the same browser's ``fetch`` of JSON."""
    from segmint.engine.signing import sign

    accept = "application/json" if path == "/api" else "text/html,application/xhtml+xml"
    return {"Cookie": f"segmint_vid={sign(VISITOR, SECRET)}", "Accept": accept, "Accept-Encoding": "gzip"}


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk(url: str, seconds: float, script: Path | None = None, *script_args: str) -> dict[str, float]:
    """One ``wrk`` run: req/s, p99 and completed requests; any error response fails it.

    Without ``script`` every request is ``_headers()``'s; a Lua ``script`` (``-s``, with
    ``script_args`` after ``--``) makes its own requests (``bench_pipeline``'s cookie rotation).
    """
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency"]
    if script is None:
        for key, value in _headers(url[url.index("/", 8):]).items():
            args += ["-H", f"{key}: {value}"]
    else:
        args += ["-s", str(script)]
    args.append(url)
    if script_args:
        args += ["--", *script_args]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out)
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        raise AssertionError(f"wrk saw errors against {url}:\n{out}")
    return {"rps": rps, "p99_ms": float(p99[1]) * _UNIT_MS[p99[2]], "requests": requests}  # type: ignore[index]


def _httpx_load(url: str, seconds: float) -> dict[str, float]:
    """Fallback load generator: ``CONNECTIONS`` concurrent keep-alive clients in a child process."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_middleware", "load-child", url, str(seconds)],
                          cwd=ROOT, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_child(url: str, seconds: float) -> dict[str, float]:
    import asyncio

    import httpx

    async def main() -> dict[str, float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        async with httpx.AsyncClient(headers=_headers(url[url.index("/", 8):]), limits=limits) as client:
            async def worker() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await client.get(url)
                    if response.status_code != 200:
                        raise AssertionError(f"{url}: HTTP {response.status_code}")
                    latencies.append(time.perf_counter() - started)
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return {"rps": len(latencies) / elapsed, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
                "requests": len(latencies)}

    return asyncio.run(main())


def _verify(servers: dict[str, Server]) -> None:
    """A fast wrong answer must not pass: check what each server actually returns."""
    import httpx

    with httpx.Client(headers=_headers(), timeout=10) as client:
        bodies = {}
        for name, server in servers.items():
            response = client.get(server.url + "/")
            raw = response.content  # httpx decodes gzip
            bodies[name] = raw
            if response.status_code != 200:
                raise AssertionError(f"{name}: HTTP {response.status_code}")
        if bodies["bare"] != PAGE or bodies["gzip"] != PAGE:
            raise AssertionError("bare/gzip servers did not return the page")
        if bodies["floor"] != PAGE.replace(SLOT, FLOOR_WIDGET, 1):
            raise AssertionError("the floor middleware did not replace the slot")
        if b"data-segmint-campaign" not in bodies["segmint"] or SLOT in bodies["segmint"]:
            raise AssertionError("segmint's page has no widget in the slot:\n" + bodies["segmint"][:500].decode())
        raw = client.get(servers["gzip"].url + "/", headers={"Accept-Encoding": "gzip"})
        if raw.headers.get("content-encoding") != "gzip":
            raise AssertionError("GZipMiddleware did not compress")
        json_bodies = {name: client.get(servers[name].url + "/api", headers=_headers("/api")).content
                       for name in JSON_VARIANTS}
        if any(body != JSON_BODY for body in json_bodies.values()):
            raise AssertionError("the JSON response changed on its way through")
    if gzip.decompress(gzip.compress(PAGE)) != PAGE:  # sanity of the reference itself
        raise AssertionError("gzip round trip")


def _drain(server: Server, timeout: float = 300.0) -> float:
    """Wait until segmint's event writer has folded every queued event; the seconds it took.

    Under wrk the page views arrive faster than the writer folds them, so the queue grows and
    is folded after the run, on the CPU the next run measures. Each run therefore starts with
    an idle writer, and the time the writer needed afterwards is reported with the figure.
    """
    import httpx

    started = time.perf_counter()
    url = server.url + "/_segmint/health"
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    while True:
        health = httpx.get(url, headers=headers, timeout=10).json()
        if health["writer"]["pending"] == 0:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise AssertionError(f"segmint's event writer still has {health['writer']['pending']} events "
                                 f"queued after {timeout:.0f} s")
        time.sleep(0.05)


def _impressions(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("SELECT count(*) FROM events WHERE type = 'impression'").fetchone()[0]
    finally:
        conn.close()


def run(quick: bool) -> list[dict[str, Any]]:
    seconds, rounds = (2, 2) if quick else (6, 3)  # whole seconds: wrk takes no fractions
    json_seconds, json_groups = (1, 4) if quick else (2, 8)
    load = _wrk if shutil.which("wrk") else _httpx_load
    generator = "wrk" if load is _wrk else "httpx (wrk not installed)"
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="segmint-bench-mw-") as tmp_name:
        tmp = Path(tmp_name)
        config = write_config(tmp)
        servers = {v: Server(v, config, tmp / f"{v}.log") for v in (*VARIANTS, "passthrough")}
        try:
            for server in servers.values():
                server.wait_ready()
            _verify(servers)
            before = _impressions(tmp / "segmint.db")
            targets = [(v, "/") for v in VARIANTS] + [(v, "/api") for v in JSON_VARIANTS]
            for variant, path in targets:  # warm-up: lazy imports, caches, thread pools
                load(servers[variant].url + path, 1)
            _drain(servers["segmint"])
            # The JSON figure looks for a few percent, less than the machine drifts between
            # runs: short runs in adjacent groups (order rotating), the median of the ratios
            # to the group's bare run.
            for r in range(json_groups):
                shift = r % len(JSON_VARIANTS)
                for variant in JSON_VARIANTS[shift:] + JSON_VARIANTS[:shift]:
                    runs.setdefault((variant, "/api"), []).append(load(servers[variant].url + "/api", json_seconds))
            for r in range(rounds):
                order = targets[:len(VARIANTS)] if r % 2 == 0 else list(reversed(targets[:len(VARIANTS)]))
                for variant, path in order:
                    result = load(servers[variant].url + path, seconds)
                    if variant == "segmint":
                        result["drain"] = _drain(servers["segmint"])
                    runs.setdefault((variant, path), []).append(result)
        finally:
            for server in servers.values():
                server.stop()
        logged = _impressions(tmp / "segmint.db") - before
    pages = sum(x["requests"] for x in runs[("segmint", "/")])
    # warm-up requests also logged impressions: at least the timed page views must be there
    if logged < 0.95 * pages:
        raise AssertionError(f"segmint logged {logged} impressions for {pages} page views: it did not "
                             f"personalize under load (failed open?)")
    med = {key: {m: statistics.median(x[m] for x in values) for m in ("rps", "p99_ms")}
           for key, values in runs.items()}
    bare = med[("bare", "/")]
    rows = []
    for variant in ("segmint", "floor", "gzip"):
        ours = med[(variant, "/")]
        ratio = ours["rps"] / bare["rps"]
        label = {"segmint": "SegmintMiddleware", "floor": "floor: buffer + replace one string (no segmint)",
                 "gzip": "reference: Starlette GZipMiddleware (no segmint)"}[variant]
        targeted = variant == "segmint"
        drains = [x["drain"] for x in runs[(variant, "/")] if "drain" in x]
        rows.append(row(f"middleware, 20 KB HTML + 1 slot, {label} [{generator}, c={CONNECTIONS}]",
                        ours["rps"], "bare app", bare["rps"], ratio, "req/s",
                        f">= {RATIO_TARGET:g}x bare" if targeted else "- (info)",
                        ratio >= RATIO_TARGET if targeted else True,
                        **({"note": f"after each {seconds} s run the event writer needed "
                                    f"{statistics.median(drains):.1f} s (median) more to fold its events"}
                           if drains else {})))
        if drains:  # the pages' events folded too: requests over the run plus the drain
            sustained = statistics.median(x["requests"] / (seconds + x["drain"]) for x in runs[(variant, "/")])
            rows.append(row(f"middleware, 20 KB HTML + 1 slot, {label}, pages/s with their events folded",
                            sustained, "bare app", bare["rps"], sustained / bare["rps"], "req/s", "- (info)", True))
        added = ours["p99_ms"] - bare["p99_ms"]
        rows.append(row(f"middleware, 20 KB HTML, added p99 latency, {label}", added, "bare app p99",
                        bare["p99_ms"], added / bare["p99_ms"] if bare["p99_ms"] else 0.0, "ms",
                        f"< {LATENCY_TARGET_MS:g} ms" if targeted else "- (info)",
                        added < LATENCY_TARGET_MS if targeted else True, p99_ms=ours["p99_ms"]))
    base = med[("bare", "/api")]
    for variant in JSON_VARIANTS[1:]:
        ours = med[(variant, "/api")]
        ratio = statistics.median(s["rps"] / b["rps"] for s, b in zip(runs[(variant, "/api")], runs[("bare", "/api")]))
        targeted = variant == "segmint"
        label = "SegmintMiddleware" if targeted else "reference: a middleware that only calls the app"
        rows.append(row(f"middleware, JSON passthrough, {label} [{generator}]", ours["rps"], "bare app",
                        base["rps"], ratio, "req/s", f">= {JSON_TARGET:g}x bare" if targeted else "- (info)",
                        ratio >= JSON_TARGET if targeted else True,
                        note=f"median of {json_groups} grouped runs' ratios (req/s columns: medians)"))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["load-child"]:
        print(json.dumps(load_child(sys.argv[2], float(sys.argv[3]))))
    else:
        for r in run("--quick" in sys.argv):
            print(r)
