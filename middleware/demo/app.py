"""The demo shop: a small Starlette app with ``SegmintMiddleware`` mounted in front of it.

The shop itself knows nothing about segments or campaigns. Its pages only mark where a widget
may go (``<div data-segmint-slot="home">``) and which product a page shows
(``data-segmint-product``); the middleware fills the slots. The one segmint-aware part is the
"why this widget?" panel, which asks ``request.state.segmint`` for the decision, the way a
shop's own template could render widgets itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from segmint.engine.identity import Identity

from .auth import DemoAuthMiddleware
from .cart import Buyer, CartBackend
from .images import product_svg
from .panel import panel_for
from .pages import Pages
from .personas import PERSONAS, Persona, persona_by_key
from .switcher import PERSONA_COOKIE, switch_persona

__all__ = ["DemoShop", "wrap_shop"]

STATIC_DIR = Path(__file__).parent / "static"
_MAX_FORM = 4096


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (no python-multipart needed): first value of each field."""
    body = await request.body()
    if len(body) > _MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    return {key: values[0] for key, values in parsed.items() if values}


class DemoShop:
    """Routes of the shop over one segmint runtime."""

    def __init__(self, runtime: Any, *, login_secret: bytes) -> None:
        self.runtime = runtime
        self.cart = CartBackend(runtime)
        self.pages = Pages(runtime)
        self.login_secret = login_secret

    # -- who is this -----------------------------------------------------------------------
    def identity(self, request: Request) -> Identity:
        """segmint's identity of the request (set by the middleware on GET pages)."""
        state = request.scope.get("state", {}).get("segmint")
        if state is not None:
            return state.identity
        # POSTs pass the middleware untouched: ask the same identification hook it uses.
        return self.runtime.pm.hook.segmint_identify_visitor(scope=request.scope, config=self.runtime.config)

    def active_persona(self, request: Request) -> Persona | None:
        return persona_by_key(request.cookies.get(PERSONA_COOKIE, ""))

    def _with_cookie(self, response: Response, identity: Identity) -> Response:
        # A first POST from a visitor without a cookie: keep the id the cart was stored under.
        if identity.is_new and identity.cookie_value:
            ident = self.runtime.config.identity
            response.set_cookie(ident.cookie, identity.cookie_value, max_age=ident.max_age_days * 86400,
                                httponly=True, samesite="lax")
        return response

    # -- pages -------------------------------------------------------------------------------
    async def _page(self, request: Request, title: str, body: str, slots: Sequence[str], *,
                    status: int = 200, active_category: str | None = None) -> HTMLResponse:
        identity = self.identity(request)
        buyer = Buyer.from_identity(identity)
        lines = await run_in_threadpool(self.cart.lines, buyer)
        panel = await panel_for(request, slots)
        html = self.pages.layout(title, body, persona=self.active_persona(request), identity=identity,
                                 cart_count=sum(line.quantity for line in lines),
                                 active_category=active_category, panel=panel)
        return HTMLResponse(html, status_code=status)

    async def home(self, request: Request) -> Response:
        return await self._page(request, "Home", self.pages.home(), ["home"])

    async def category(self, request: Request) -> Response:
        name = request.path_params["category"]
        body = self.pages.listing(name)
        if body is None:
            return await self._page(request, "Not found", self.pages.not_found(f"No category {name!r}."), [],
                                    status=404)
        return await self._page(request, name.replace("_", " ").title(), body, [], active_category=name)

    async def product(self, request: Request) -> Response:
        product = self.runtime.catalog.get(request.path_params["sku"])
        if product is None:
            return await self._page(request, "Not found", self.pages.not_found("No such product."), [],
                                    status=404)
        return await self._page(request, product.name, self.pages.product(product), ["pdp"],
                                active_category=product.category)

    async def cart_page(self, request: Request) -> Response:
        buyer = Buyer.from_identity(self.identity(request))
        lines = await run_in_threadpool(self.cart.lines, buyer)
        return await self._page(request, "Cart", self.pages.cart(lines), ["cart"])

    async def thanks(self, request: Request) -> Response:
        order_id = request.query_params.get("order", "")[:40]
        total = _float(request.query_params.get("total"))
        who = self.identity(request).customer_id or "this visitor"
        return await self._page(request, "Thank you", self.pages.thanks(order_id, total, who), ["home"])

    # -- actions (POST, then redirect: the next GET is personalized) --------------------------
    async def add_to_cart(self, request: Request) -> Response:
        form = await _form(request)
        identity = self.identity(request)
        sku = form.get("sku", "")
        quantity = int(_float(form.get("quantity")) or 1)
        added = await run_in_threadpool(self.cart.add, Buyer.from_identity(identity), sku, quantity)
        target = "/cart" if added else f"/products/{sku}" if sku in self.runtime.catalog else "/"
        return self._with_cookie(RedirectResponse(target, status_code=303), identity)

    async def remove_from_cart(self, request: Request) -> Response:
        form = await _form(request)
        identity = self.identity(request)
        await run_in_threadpool(self.cart.remove, Buyer.from_identity(identity), form.get("sku", ""))
        return self._with_cookie(RedirectResponse("/cart", status_code=303), identity)

    async def checkout(self, request: Request) -> Response:
        identity = self.identity(request)
        placed = await run_in_threadpool(self.cart.checkout, Buyer.from_identity(identity))
        if placed is None:
            return RedirectResponse("/cart", status_code=303)
        order_id, total = placed
        return self._with_cookie(RedirectResponse(f"/thanks?order={order_id}&total={total:.2f}", status_code=303),
                                 identity)

    async def persona(self, request: Request) -> Response:
        persona = persona_by_key(request.path_params["key"])
        if persona is None:
            return RedirectResponse("/", status_code=303)
        return switch_persona(persona, self.runtime, self.login_secret)

    async def logout(self, request: Request) -> Response:
        return switch_persona(None, self.runtime, self.login_secret)

    async def image(self, request: Request) -> Response:
        product = self.runtime.catalog.get(request.path_params["sku"])
        if product is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(product_svg(product), media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=3600"})

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.home),
            Route("/category/{category}", self.category),
            Route("/products/{sku}", self.product),
            Route("/cart", self.cart_page),
            Route("/thanks", self.thanks),
            Route("/cart/add", self.add_to_cart, methods=["POST"]),
            Route("/cart/remove", self.remove_from_cart, methods=["POST"]),
            Route("/checkout", self.checkout, methods=["POST"]),
            Route("/personas/{key}", self.persona, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/images/{sku}.svg", self.image),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]


def _float(text: str | None) -> float:
    try:
        value = float(text or 0)
    except ValueError:
        return 0.0
    return value if 0 <= value < 1e9 else 0.0


def wrap_shop(runtime: Any, *, login_secret: bytes | None = None) -> Any:
    """The whole demo: auth (sets ``scope["user"]``) -> segmint middleware -> the shop."""
    from ..asgi import SegmintMiddleware

    secret = login_secret or secrets.token_bytes(32)
    shop = DemoShop(runtime, login_secret=secret)
    app = Starlette(routes=shop.routes())
    names = {p.customer_id: p.label for p in PERSONAS if p.customer_id}
    return DemoAuthMiddleware(SegmintMiddleware(app, runtime=runtime), secret=secret, names=names)

