"""Signing in to the report page from a browser: the API token, posted once, becomes a cookie.

A person opens ``{prefix}/report`` and gets a sign-in form (401). The form posts the token to
``{prefix}/report/login``; the answer sets a session cookie and redirects to the page. The
cookie holds only an expiry time signed under the API token (``engine.signing``), so changing
``[api] token`` ends every session, and the token itself never travels again nor appears in a
URL. The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends
it), Secure on https, scoped to the prefix and valid for ``SESSION_SECONDS``.
``{prefix}/report/logout`` clears it. Scripts keep sending ``Authorization: Bearer <token>``.

Cross-site request forgery: both posts need an ``Origin`` (or, without one, a ``Referer``)
whose host is the request's ``Host``; SameSite=Strict covers the cookie's other uses. Only
hosts are compared, because a TLS-terminating proxy makes the app see ``http`` for a page the
browser loaded over ``https``.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from segmint.engine.signing import session_token, verify_session

from .asgi_types import Scope

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "MAX_FORM_BYTES", "signed_in", "same_origin",
           "session_cookie", "clear_session_cookie", "sign_in_page", "report_prefix"]

SESSION_COOKIE = "segmint_report"
#: How long a sign-in lasts (a working day).
SESSION_SECONDS = 8 * 3600
#: The sign-in form's body bound (a token and a field name).
MAX_FORM_BYTES = 4096


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw or len(raw) > 8192:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip()
    return None


def signed_in(scope: Scope, token: str | None, now: float) -> bool:
    """True when the request carries an unexpired session cookie signed under ``token``."""
    return bool(token) and verify_session(_cookie(scope, SESSION_COOKIE), token, now=now)


def same_origin(scope: Scope) -> bool:
    """The post came from a page of this host (``Origin``, else ``Referer``, against ``Host``)."""
    host = _header(scope, b"host")
    source = _header(scope, b"origin") or _header(scope, b"referer")
    if not host or not source or source == b"null":
        return False
    try:
        netloc = urlsplit(source.decode("latin-1")).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.decode("latin-1").lower()


def report_prefix(path: str) -> str:
    """The API prefix of a request to ``{prefix}/report[/...]`` (the cookie's Path)."""
    return path.rsplit("/report", 1)[0] or "/"


def _attributes(prefix: str, secure: bool) -> str:
    return f"; Path={prefix}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def session_cookie(token: str, *, prefix: str, now: float, secure: bool) -> bytes:
    """The ``Set-Cookie`` value of a new session, valid for ``SESSION_SECONDS`` from ``now``."""
    value = session_token(int(now) + SESSION_SECONDS, token)
    return (f"{SESSION_COOKIE}={value}; Max-Age={SESSION_SECONDS}" + _attributes(prefix, secure)).encode("latin-1")


def clear_session_cookie(*, prefix: str, secure: bool) -> bytes:
    return (f"{SESSION_COOKIE}=; Max-Age=0" + _attributes(prefix, secure)).encode("latin-1")


def sign_in_page(prefix: str, message: str = "") -> str:
    """The sign-in form (no script; the token field is a password field, never autocompleted)."""
    note = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>segmint report: sign in</title>'
            "<style>body{font:15px/1.5 system-ui,sans-serif;margin:48px auto;max-width:420px;color:#212529}"
            "input{font:inherit;padding:6px 8px;width:100%;box-sizing:border-box;margin:4px 0 12px}"
            "button{font:inherit;padding:6px 16px}.error{color:#c92a2a;font-weight:600}</style></head><body>"
            "<h1>segmint campaign report</h1>" + note +
            f'<form method="post" action="{escape(prefix.rstrip("/"))}/report/login">'
            '<label for="token">API token (<code>[api] token</code> of the config)</label>'
            '<input id="token" name="token" type="password" autocomplete="off" required autofocus>'
            '<button type="submit">Sign in</button></form>'
            f'<p>Signing in sets a cookie for {SESSION_SECONDS // 3600} hours. Scripts send '
            "<code>Authorization: Bearer &lt;token&gt;</code> instead.</p></body></html>")
