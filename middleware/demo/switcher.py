"""Switching persona: the cookies that make the next request "be" someone else.

- a customer persona gets the signed demo login cookie (the app then authenticates it and
  segmint's default identification uses ``scope["user"].identity``);
- the returning browser gets segmint's own visitor cookie, signed with the config's secret,
  for its seeded visitor id;
- everyone else (new visitor, log out) loses both, so the middleware mints a fresh visitor.

Every switch drops the current visitor cookie: otherwise logging in would link (and merge)
the previous persona's anonymous visits into the next persona's profile.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse

from segmint.engine.catalog import Catalog
from segmint.engine.signing import sign

from .auth import LOGIN_COOKIE, sign_login
from .personas import Persona

__all__ = ["PERSONA_COOKIE", "switch_persona", "landing_page"]

#: Which persona button is highlighted (a label only; identity comes from the other cookies).
PERSONA_COOKIE = "demo_persona"
_MAX_AGE = 30 * 86400


def landing_page(persona: Persona, catalog: Catalog) -> str:
    """The page that shows the persona's widget (a product page picks a stable product)."""
    if "{sku}" not in persona.page:
        return persona.page
    in_stock = sorted((p for p in catalog if p.in_stock), key=lambda p: (p.price, p.sku))
    if not in_stock:
        return "/"
    return persona.page.replace("{sku}", in_stock[len(in_stock) // 2].sku)


def switch_persona(persona: Persona | None, runtime: Any, login_secret: bytes) -> RedirectResponse:
    """A redirect to the persona's page carrying its cookies (``None``: log out)."""
    target = landing_page(persona, runtime.catalog) if persona is not None else "/"
    response = RedirectResponse(target, status_code=303)
    ident = runtime.config.identity
    if persona is not None and persona.visitor_id and ident.secret:
        response.set_cookie(ident.cookie, sign(persona.visitor_id, ident.secret),
                            max_age=ident.max_age_days * 86400, httponly=True, samesite="lax")
    else:
        response.delete_cookie(ident.cookie)
    if persona is not None and persona.customer_id:
        response.set_cookie(LOGIN_COOKIE, sign_login(persona.customer_id, login_secret),
                            max_age=_MAX_AGE, httponly=True, samesite="lax")
    else:
        response.delete_cookie(LOGIN_COOKIE)
    if persona is not None:
        response.set_cookie(PERSONA_COOKIE, persona.key, max_age=_MAX_AGE, samesite="lax")
    else:
        response.delete_cookie(PERSONA_COOKIE)
    return response
