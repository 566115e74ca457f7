"""The API token: required on every non-public endpoint, compared in constant time, failures
rate-limited per client, and never echoed in a response or a log line."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

import pytest

from segmint.middleware import SegmintMiddleware

PUBLIC = {"/recommendations", "/click"}  # what browsers call: no token, no secrets behind them
#: The report page's sign-in takes the token in its form (and sign-out only clears a cookie):
#: checked below, not by the Bearer header.
SIGN_IN = {"/report/login", "/report/logout"}


def middleware(shop: Any, runtime: Any) -> SegmintMiddleware:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    return SegmintMiddleware(app, runtime=runtime)


def call(asgi: Any, path: str, *, method: str = "GET", token: str | None = None, client: str = "10.0.0.1",
         body: bytes = b"[]", extra: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """One raw ASGI request from ``client``; (status, body, headers)."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token is not None else []
    headers += extra
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": (client, 5000), "server": ("shop", 80)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asgi(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), sent[0].get("headers", [])


def protected_routes(asgi: SegmintMiddleware) -> list[tuple[str, str]]:
    routes = [(path, method) for path, (method, _) in asgi.endpoints._routes.items()
              if path not in PUBLIC | SIGN_IN]
    assert ("/events", "POST") in routes and ("/health", "GET") in routes
    return routes


def test_every_non_public_endpoint_needs_the_token(shop: Any):
    asgi = middleware(shop, shop.runtime())
    for path, method in protected_routes(asgi):
        for token in (None, "", "wrong-token-123", shop.TOKEN + "x", shop.TOKEN[:-1], shop.TOKEN.upper()):
            status, body, headers = call(asgi, f"/_segmint{path}", method=method, token=token,
                                         client=f"10.1.{len(path)}.{len(token or '')}")
            assert status == 401, (path, token)
            assert (b"www-authenticate", b'Bearer realm="segmint"') in headers
            assert shop.TOKEN.encode() not in body and shop.SECRET.encode() not in body


def call_form(asgi: Any, path: str, body: bytes, *, client: str = "10.0.0.2",
              origin: bytes = b"http://shop") -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """A browser's form post from a page of ``origin`` (the shop's own by default)."""
    return call(asgi, path, method="POST", client=client, body=body, extra=(
        (b"host", b"shop"), (b"origin", origin), (b"content-type", b"application/x-www-form-urlencoded")))


def test_the_report_sign_in_sets_a_session_only_for_the_token(shop: Any):
    asgi = middleware(shop, shop.runtime())
    for token in ("", "wrong-token-123", shop.TOKEN + "x", shop.TOKEN[:-1], shop.TOKEN.upper()):
        status, body, headers = call_form(asgi, "/_segmint/report/login", f"token={token}".encode(),
                                          client=f"10.2.0.{len(token)}")
        assert status == 401 and not [v for k, v in headers if k == b"set-cookie"]
        assert shop.TOKEN.encode() not in body
    status, _, headers = call_form(asgi, "/_segmint/report/login", f"token={shop.TOKEN}".encode(), origin=b"http://evil")
    assert status == 403 and not [v for k, v in headers if k == b"set-cookie"]  # another site's form
    status, _, headers = call_form(asgi, "/_segmint/report/login", f"token={shop.TOKEN}".encode())
    (cookie,) = [v for k, v in headers if k == b"set-cookie"]
    assert status == 303 and shop.TOKEN.encode() not in cookie
    status, _, headers = call_form(asgi, "/_segmint/report/logout", b"")
    assert status == 303 and [v for k, v in headers if k == b"set-cookie"][0].startswith(b"segmint_report=;")


def test_the_token_is_compared_with_hmac_compare_digest(shop: Any, monkeypatch: Any):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("segmint.middleware.endpoints.hmac.compare_digest", spy)
    asgi = middleware(shop, shop.runtime())
    assert call(asgi, "/_segmint/health", token=shop.TOKEN)[0] == 200
    # A wrong token of another length is compared the same way (no early exit on length).
    assert call(asgi, "/_segmint/health", token="short-wrong")[0] == 401
    assert calls[0] == (shop.TOKEN.encode(), shop.TOKEN.encode())
    assert calls[1] == (b"short-wrong", shop.TOKEN.encode())


def test_failed_attempts_are_limited_per_client_address(shop: Any):
    asgi = middleware(shop, shop.runtime())
    attacker, shop_backend = "203.0.113.9", "10.0.0.2"
    statuses = [call(asgi, "/_segmint/events", method="POST", token=f"guess-{i:04d}", client=attacker)[0]
                for i in range(15)]
    assert statuses == [401] * 10 + [429] * 5
    # Even the right token is refused to the attacker's address for now ...
    assert call(asgi, "/_segmint/events", method="POST", token=shop.TOKEN, client=attacker)[0] == 429
    # ... while the shop's backend, from its own address, is not locked out.
    assert call(asgi, "/_segmint/events", method="POST", token=shop.TOKEN, client=shop_backend)[0] == 200
    assert asgi.counters.get("api.unauthorized") == 10 and asgi.counters.get("api.rate_limited") == 6


def test_secrets_never_reach_responses_or_logs(shop: Any, caplog: Any, monkeypatch: Any):
    runtime = shop.runtime()
    asgi = middleware(shop, runtime)

    def broken_record(events: Any) -> Any:
        raise OSError(f"disk trouble under {shop.tmp_path}")

    with caplog.at_level(logging.DEBUG):
        bodies = [call(asgi, "/_segmint/events", method="POST", token=t, client="198.51.100.7")[1]
                  for t in ("wrong-but-close-" + shop.TOKEN[-8:], "", shop.TOKEN)]
        bodies.append(call(asgi, "/_segmint/health", token=shop.TOKEN, client="198.51.100.8")[1])
        monkeypatch.setattr(runtime, "record", broken_record)
        order = b'[{"type": "order", "customer_id": "c", "order_id": "o", "items": [{"sku": "tv-1"}]}]'
        status, body, _ = call(asgi, "/_segmint/events", method="POST", token=shop.TOKEN, body=order,
                               client="198.51.100.9")
        bodies.append(body)
    assert status == 503
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "failed open (intake)" in logged  # the failure itself is logged ...
    for secret in (shop.TOKEN, shop.SECRET, shop.TOKEN[-8:]):  # ... without any secret
        assert secret not in logged
        assert all(secret.encode() not in body for body in bodies)


@pytest.mark.parametrize("header", [b"Bearer", b"bearer  " + b"x" * 10_000, b"Basic Zm9vOmJhcg==", b"Bearer \xff\xfe"])
def test_malformed_authorization_headers_are_just_401(shop: Any, header: bytes):
    asgi = middleware(shop, shop.runtime())
    scope_headers = [(b"authorization", header)]

    async def run() -> int:
        sent: list[dict[str, Any]] = []
        scope = {"type": "http", "method": "GET", "path": "/_segmint/health", "query_string": b"",
                 "headers": scope_headers, "client": ("192.0.2.1", 1)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await asgi(scope, receive, send)
        return sent[0]["status"]

    assert asyncio.run(run()) == 401
