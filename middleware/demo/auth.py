"""Demo login: a signed cookie naming the customer, and a tiny ASGI middleware for it.

A real shop has its own authentication; segmint only needs ``scope["user"]`` with
``is_authenticated`` and ``identity`` (the shape Starlette's ``AuthenticationMiddleware``
sets). The demo fakes "logging in as a persona" with an HMAC-signed cookie so that it needs
no session library, and a tampered cookie is simply "not logged in".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from segmint.plugins.identify_default import read_cookie

__all__ = ["DemoUser", "AnonymousUser", "DemoAuthMiddleware", "sign_login", "verify_login", "LOGIN_COOKIE"]

LOGIN_COOKIE = "demo_login"
_CONTEXT = b"segmint.demo.login.v1:"
_MAX_COOKIE = 200


@dataclass(frozen=True)
class DemoUser:
    """A logged-in demo customer (duck-types Starlette's ``BaseUser``)."""

    identity: str
    display_name: str = ""
    is_authenticated: bool = True


@dataclass(frozen=True)
class AnonymousUser:
    identity: str = ""
    display_name: str = ""
    is_authenticated: bool = False


def _mac(value: str, secret: bytes) -> str:
    digest = hmac.new(secret, _CONTEXT + value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def sign_login(customer_id: str, secret: bytes) -> str:
    """The login cookie value for ``customer_id`` (ids are plain: ``[A-Za-z0-9_-]``)."""
    return f"{customer_id}.{_mac(customer_id, secret)}"


def verify_login(token: str | None, secret: bytes) -> str | None:
    """The customer id inside a login cookie, or None when missing or tampered with."""
    if not token or len(token) > _MAX_COOKIE:
        return None
    customer_id, dot, mac = token.rpartition(".")
    if not dot or not customer_id:
        return None
    if hmac.compare_digest(_mac(customer_id, secret).encode(), mac.encode()):
        return customer_id
    return None


class DemoAuthMiddleware:
    """Sets ``scope["user"]`` from the demo login cookie, before segmint identifies the visitor."""

    def __init__(self, app: ASGIApp, *, secret: bytes, names: dict[str, str] | None = None) -> None:
        self.app = app
        self.secret = secret
        self.names = dict(names or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            customer_id = verify_login(read_cookie(scope, LOGIN_COOKIE), self.secret)
            user: Any = (DemoUser(customer_id, self.names.get(customer_id, customer_id))
                         if customer_id else AnonymousUser())
            scope["user"] = user
        await self.app(scope, receive, send)
