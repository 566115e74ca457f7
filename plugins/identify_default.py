"""Built-in visitor identification: the app's authenticated user, else the signed cookie.

``trylast`` so a shop's own plugin (a JWT, a header from a trusted proxy, other consent rules)
is asked first and wins. The rules here:

- a known bot (user agent contains one of ``[middleware] bot_user_agents``) or, when
  ``[middleware] require_consent`` is on, a request without the consent cookie: no id, no
  cookie, no tracking, a non-personalized default;
- ``scope["user"]`` with ``is_authenticated`` (Starlette's ``AuthenticationMiddleware``):
  the customer id is ``user.identity``; the cookie visitor is kept so the middleware can
  link the two with one ``identify`` event;
- otherwise the signed visitor cookie; a missing, forged, garbled or oversized value gets a
  fresh random id and a new cookie, so a client can never pick another visitor's profile.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, MutableMapping
from typing import Any

from segmint.engine.hooks import hookimpl
from segmint.engine.identity import Identity
from segmint.engine.signing import MAX_TOKEN_LENGTH, new_visitor_id, sign, verify

__all__ = ["segmint_identify_visitor", "read_cookie", "consent_given", "is_bot"]

#: Values of the consent cookie that mean "no".
_REFUSED = frozenset({"", "0", "false", "no", "denied", "none", "reject", "rejected"})
_MAX_CUSTOMER_ID = 128


@functools.lru_cache(maxsize=16)
def _bot_needles(needles: tuple[str, ...]) -> tuple[bytes, ...]:
    """The configured bot substrings, lowercased bytes (computed once per list)."""
    return tuple(n.lower().encode("latin-1", "replace") for n in needles if n)


# Verified cookie values -> visitor id. Verifying is an HMAC per request; a returning visitor
# sends the same value each time. Keyed by (secret, value): only values that verified are
# stored, so a forged value can never be answered from here, nor push good ones out. A plain
# dict (reads and writes are atomic under the GIL: no lock on the request path), bounded by
# dropping the oldest entry.
_VERIFIED_MAX = 20_000
_verified: dict[tuple[str, str], str] = {}


def _verify(token: str, secret: str) -> str | None:
    key = (secret, token)
    visitor_id = _verified.get(key)
    if visitor_id is None:
        visitor_id = verify(token, secret)
        if visitor_id is not None:
            _verified[key] = visitor_id
            if len(_verified) > _VERIFIED_MAX:
                with contextlib.suppress(KeyError, RuntimeError, StopIteration):  # raced another thread
                    del _verified[next(iter(_verified))]
    return visitor_id


def _header(scope: MutableMapping[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value
    return None


@functools.lru_cache(maxsize=16)
def _cookie_pattern(name: str) -> re.Pattern[bytes]:
    """``name=value`` as the first cookie of that exact name in a Cookie header."""
    return re.compile(rb"(?:^|;)[ \t]*" + re.escape(name.encode("latin-1")) + rb"[ \t]*=([^;]*)")


def read_cookie(scope: MutableMapping[str, Any], name: str) -> str | None:
    """The value of cookie ``name`` in the request, or None (first occurrence wins)."""
    pattern = None
    for key, value in scope.get("headers") or ():
        if key != b"cookie":
            continue
        pattern = pattern or _cookie_pattern(name)
        match = pattern.search(value)
        if match is not None:
            return match[1].strip().strip(b'"').decode("latin-1")
    return None


def consent_given(scope: MutableMapping[str, Any], cookie: str) -> bool:
    value = read_cookie(scope, cookie)
    return value is not None and value.strip().lower() not in _REFUSED


def is_bot(scope: MutableMapping[str, Any], needles: Iterable[str]) -> bool:
    """True when the user agent contains one of ``needles`` (case-insensitive)."""
    agent = _header(scope, b"user-agent")
    if not agent:
        return False
    agent = agent.lower()
    return any(needle in agent for needle in _bot_needles(tuple(needles)))


def _customer_id(scope: MutableMapping[str, Any]) -> str | None:
    user = scope.get("user")
    if user is None:
        return None
    try:
        if not user.is_authenticated:
            return None
        identity = user.identity
    except Exception:  # noqa: BLE001 - a user object without identity is just anonymous
        return None
    if identity is None:
        return None
    identity = str(identity)
    return identity if 0 < len(identity) <= _MAX_CUSTOMER_ID else None


@hookimpl(trylast=True)
def segmint_identify_visitor(scope: MutableMapping[str, Any], config: Any) -> Identity:
    middleware, ident = config.middleware, config.identity
    if is_bot(scope, middleware.bot_user_agents):
        return Identity(personalize=False, track=False, reason="bot")
    if middleware.require_consent and not consent_given(scope, middleware.consent_cookie):
        return Identity(personalize=False, track=False, reason="no consent")
    if not ident.secret:  # cannot sign ids: behave as for an anonymous visitor, no cookie
        return Identity(personalize=False, track=False, reason="no [identity] secret configured")
    token = read_cookie(scope, ident.cookie)
    visitor_id = _verify(token, ident.secret) if token and len(token) <= MAX_TOKEN_LENGTH else None
    customer_id = _customer_id(scope)
    if visitor_id is not None:
        return Identity(visitor_id=visitor_id, customer_id=customer_id)
    fresh = new_visitor_id()
    return Identity(
        visitor_id=fresh,
        customer_id=customer_id,
        is_new=True,
        cookie_value=sign(fresh, ident.secret),
        reason="forged or garbled cookie" if token else None,
    )
