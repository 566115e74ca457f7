"""Signed visitor ids: the value of the first-party visitor cookie.

A visitor id is 128 random bits (urlsafe base64, 22 characters). The cookie carries
``<id>.<signature>`` where the signature is HMAC-SHA256 of the id under the configured secret.
A client can therefore never choose an id (and with it another visitor's profile): anything
that does not verify is treated as no cookie at all and the visitor gets a fresh id.

>>> token = sign("AAAAAAAAAAAAAAAAAAAAAA", "s3cret")
>>> verify(token, "s3cret")
'AAAAAAAAAAAAAAAAAAAAAA'
>>> verify(token, "other") is None
True

The same HMAC signs the report page's sign-in sessions (``session_token``): an expiry time
signed under the API token, so changing the token ends every session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

__all__ = ["new_visitor_id", "sign", "verify", "MAX_TOKEN_LENGTH", "session_token", "verify_session"]

#: Longer cookie values are rejected before any hashing (cheap defence against huge cookies).
MAX_TOKEN_LENGTH = 128
_ID_BYTES = 16
# Domain separation: the same secret may sign other things later without confusion.
_CONTEXT = b"segmint.visitor.v1:"
_SESSION_CONTEXT = b"segmint.report-session.v1:"
_SESSION_RE = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_SIG_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_visitor_id() -> str:
    """A fresh random visitor id: 128 bits, urlsafe base64 without padding."""
    return secrets.token_urlsafe(_ID_BYTES)


def _signature(visitor_id: str, secret: str | bytes, context: bytes = _CONTEXT) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, context + visitor_id.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(visitor_id: str, secret: str | bytes) -> str:
    """The cookie value for ``visitor_id``: ``<id>.<signature>``.

    Raises ``ValueError`` for an empty secret or an id that ``new_visitor_id`` cannot produce:
    signing with no secret would make every id forgeable.
    """
    if not secret:
        raise ValueError("a non-empty secret is required to sign visitor ids")
    if not _ID_RE.fullmatch(visitor_id):
        raise ValueError(f"not a visitor id: {visitor_id!r}")
    return f"{visitor_id}.{_signature(visitor_id, secret)}"


def verify(token: str | None, secret: str | bytes) -> str | None:
    """The visitor id inside a signed ``token``, or None when it is missing, garbled or forged.

    The signature is compared in constant time (``hmac.compare_digest``).
    """
    if not token or not secret or len(token) > MAX_TOKEN_LENGTH:
        return None
    visitor_id, dot, signature = token.partition(".")
    if not dot or not _ID_RE.fullmatch(visitor_id) or not _SIG_RE.fullmatch(signature):
        return None
    expected = _signature(visitor_id, secret)
    if hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        return visitor_id
    return None


def session_token(expires_at: int, secret: str | bytes) -> str:
    """A session cookie value valid until ``expires_at`` (Unix seconds): ``<expiry>.<signature>``.

    >>> token = session_token(2_000_000_000, "api-token")
    >>> verify_session(token, "api-token", now=1_999_999_999.0), verify_session(token, "api-token", now=2e9)
    (True, False)
    """
    if not secret:
        raise ValueError("a non-empty secret is required to sign sessions")
    stamp = str(int(expires_at))
    return f"{stamp}.{_signature(stamp, secret, _SESSION_CONTEXT)}"


def verify_session(token: str | None, secret: str | bytes | None, *, now: float) -> bool:
    """True when ``token`` was signed under ``secret`` and has not expired at ``now``."""
    if not token or not secret or len(token) > MAX_TOKEN_LENGTH:
        return False
    match = _SESSION_RE.fullmatch(token)
    if match is None or int(match[1]) <= now:
        return False
    expected = _signature(match[1], secret, _SESSION_CONTEXT)
    return hmac.compare_digest(expected.encode("ascii"), match[2].encode("ascii"))
