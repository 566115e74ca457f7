"""HTML of the demo shop: small functions that return escaped strings.

Plain Python instead of a template engine keeps the demo free of dependencies; every value
that comes from the catalog, the config or the request goes through ``esc`` (``html.escape``
with quotes), so a product named ``<script>`` stays text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from segmint.engine.catalog import Product

from .departments import category_label, department

__all__ = [
    "esc", "money", "PersonaButton", "CartLineView",
    "layout", "product_card", "product_grid", "home_body", "PANEL_MARK", "category_body", "product_body",
    "cart_body", "thanks_body", "not_found_body",
]

SHOP_NAME = "Mintmarket"
_ACTIVE = ' class="is-active"'


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def money(amount: float) -> str:
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class PersonaButton:
    key: str
    label: str
    active: bool = False


@dataclass(frozen=True)
class CartLineView:
    product: Product
    quantity: int

    @property
    def total(self) -> float:
        return self.product.price * self.quantity


def image_url(product: Product) -> str:
    return product.image or f"/images/{product.sku}.svg"


def _persona_bar(personas: Sequence[PersonaButton], who: str, about: str) -> str:
    buttons = "".join(
        f'<form method="post" action="/personas/{esc(p.key)}">'
        f'<button class="persona{" is-active" if p.active else ""}" type="submit">{esc(p.label)}</button></form>'
        for p in personas
    )
    about_html = f' <span class="persona-bar__about">{esc(about)}</span>' if about else ""
    return (
        '<div class="persona-bar" role="region" aria-label="Demo persona switcher"><div class="container">'
        f'<span class="persona-bar__label">View the shop as</span>{buttons}'
        '<form method="post" action="/logout"><button class="persona persona--logout" type="submit">Log out</button></form>'
        f'<p class="persona-bar__who">Now: <strong>{esc(who)}</strong>{about_html}</p></div></div>'
    )


#: Where a page wants the "why this widget?" panel (right under its slot); else at the end.
PANEL_MARK = "<!--segmint-demo-panel-->"


def layout(
    title: str,
    body: str,
    *,
    departments: Sequence[str],
    personas: Sequence[PersonaButton],
    who: str,
    about: str = "",
    cart_count: int = 0,
    active_department: str | None = None,
    panel: str = "",
) -> str:
    """A whole page: persona bar, header with departments and cart, body with the panel, footer."""
    nav = "".join(
        f'<a href="/category/{esc(d)}"{_ACTIVE if d == active_department else ""}>{esc(d.title())}</a>'
        for d in departments
    )
    count = f'<span class="cart-count">{cart_count}</span>' if cart_count else ""
    body = body.replace(PANEL_MARK, panel, 1) if PANEL_MARK in body else body + panel
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)} · {SHOP_NAME}</title>'
        '<link rel="stylesheet" href="/static/shop.css"></head><body>'
        f'{_persona_bar(personas, who, about)}'
        '<header class="site-header"><div class="container">'
        f'<a class="logo" href="/">{SHOP_NAME}<span>.</span></a>'
        f'<nav class="main-nav" aria-label="Departments">{nav}</nav>'
        f'<a class="cart-link" href="/cart">Cart {count}</a></div></header>'
        f'<main class="container">{body}</main>'
        '<footer><div class="container">A demo shop for <strong>segmint</strong>: server-side '
        'segments and recommendation widgets. Synthetic products and customers; no network.'
        '</div></footer></body></html>'
    )


def _price(product: Product) -> str:
    if product.discount_pct:
        return (f'<div class="price price--sale"><span class="price__now">{money(product.price)}</span>'
                f'<s class="price__was">{money(product.compare_at_price or 0)}</s></div>')
    return f'<div class="price"><span class="price__now">{money(product.price)}</span></div>'


def _badges(product: Product) -> str:
    dept = department(product.category)
    return (f'<div class="badges"><span class="badge badge--{esc(dept)}">{esc(category_label(product.category))}</span>'
            '</div>')


def product_card(product: Product) -> str:
    sale = f'<span class="badge badge--sale">-{product.discount_pct:.0f}%</span>' if product.discount_pct else ""
    return (
        f'<a class="card" href="/products/{esc(product.sku)}" data-sku="{esc(product.sku)}">{sale}'
        f'<div class="card__img"><img src="{esc(image_url(product))}" alt="" loading="lazy" width="200" height="200"></div>'
        f'<div class="card__body">{_badges(product)}<span class="card__name">{esc(product.name)}</span>'
        f'{_price(product)}</div></a>'
    )


def product_grid(products: Iterable[Product]) -> str:
    return f'<div class="grid">{"".join(product_card(p) for p in products)}</div>'


def slot(name: str) -> str:
    """The placeholder the segmint middleware fills (and removes nothing else)."""
    return f'<div data-segmint-slot="{esc(name)}"></div>{PANEL_MARK}'


def home_body(hero: Sequence[Product], departments: dict[str, int], fresh: Sequence[Product],
              deals: Sequence[Product]) -> str:
    art = "".join(f'<img src="{esc(image_url(p))}" alt="" width="200" height="200">' for p in hero[:6])
    tiles = "".join(
        f'<a class="tile" href="/category/{esc(d)}"><div><strong>{esc(d.title())}</strong><br>'
        f'<span>{n} products</span></div><span aria-hidden="true">→</span></a>'
        for d, n in departments.items()
    )
    return (
        '<section class="hero"><div><h1>Good things, picked for you.</h1>'
        '<p>Fashion, skincare, makeup and electronics. Switch persona in the dark bar above: the '
        'same page shows each visitor a different widget, chosen on the server by segmint.</p>'
        '<a class="btn btn--mint" href="#for-you">See your picks</a></div>'
        f'<div class="hero__art" aria-hidden="true">{art}</div></section>'
        f'<div id="for-you">{slot("home")}</div>'
        f'<h2>Shop by department</h2><div class="tiles">{tiles}</div>'
        f'<h2>Deals of the week</h2>{product_grid(deals)}'
        f'<h2>New in</h2>{product_grid(fresh)}'
    )


def _trail(trail: Sequence[tuple[str, str | None]]) -> str:
    parts = [f'<a href="{esc(href)}">{esc(label)}</a>' if href else esc(label) for label, href in trail]
    return f'<div class="crumbs"><a href="/">Home</a> / {" / ".join(parts)}</div>'


def category_body(title: str, products: Sequence[Product], *, trail: Sequence[tuple[str, str | None]],
                  chips: Sequence[tuple[str, int]] = (), active: str | None = None) -> str:
    """A listing: a department (with chips for its categories) or one category."""
    chip_html = "".join(
        f'<a class="chip{" is-active" if c == active else ""}" href="/category/{esc(c)}">'
        f'{esc(category_label(c))} <span>{n}</span></a>'
        for c, n in chips
    )
    chips_nav = f'<nav class="chips" aria-label="Categories">{chip_html}</nav>' if chip_html else ""
    return (f'{_trail(trail)}<h1>{esc(title)}</h1><p class="lead">{len(products)} products</p>'
            f'{chips_nav}{product_grid(products)}')


def product_body(product: Product, related: Sequence[Product]) -> str:
    save = ""
    if product.discount_pct and product.compare_at_price:
        save = (f'<span class="pdp__save">You save {money(product.compare_at_price - product.price)} '
                f'({product.discount_pct:.0f}% off)</span>')
    stock = "In stock" if product.in_stock else "Out of stock"
    button = ('<button class="btn btn--mint" type="submit">Add to cart</button>' if product.in_stock
              else '<button class="btn" type="submit" disabled>Sold out</button>')
    tags = ", ".join(esc(t) for t in product.tags)
    dept = department(product.category)
    trail = _trail([(dept.title(), f"/category/{dept}"),
                    (category_label(product.category), f"/category/{product.category}")])
    return (
        f'{trail}'
        f'<article class="pdp" data-segmint-product="{esc(product.sku)}">'
        f'<div class="pdp__img"><img src="{esc(image_url(product))}" alt="{esc(product.name)}" width="600" height="600"></div>'
        f'<div class="pdp__info">{_badges(product)}<h1>{esc(product.name)}</h1>{_price(product)}{save}'
        f'<form method="post" action="/cart/add" class="qty-row"><input type="hidden" name="sku" value="{esc(product.sku)}">'
        '<label class="visually-hidden" for="qty">Quantity</label>'
        f'<input id="qty" type="number" name="quantity" value="1" min="1" max="20">{button}</form>'
        f'<ul class="facts"><li>{stock}</li><li>SKU {esc(product.sku)}</li>'
        f'{f"<li>{tags}</li>" if tags else ""}<li>Free returns within 30 days</li></ul></div></article>'
        f'{slot("pdp")}<h2>More in {esc(category_label(product.category))}</h2>{product_grid(related)}'
    )


def cart_body(lines: Sequence[CartLineView], notice: str = "") -> str:
    note = f'<div class="notice">{esc(notice)}</div>' if notice else ""
    if not lines:
        return (f'{note}<h1>Your cart</h1><div class="empty"><p>Your cart is empty.</p>'
                f'<a class="btn" href="/">Keep shopping</a></div>{slot("cart")}')
    rows = "".join(
        f'<div class="cart-line"><img src="{esc(image_url(line.product))}" alt="">'
        f'<div><a href="/products/{esc(line.product.sku)}"><strong>{esc(line.product.name)}</strong></a><br>'
        f'<span class="price__was">{line.quantity} × {money(line.product.price)}</span></div>'
        f'<strong class="cart-line__total">{money(line.total)}</strong>'
        f'<form method="post" action="/cart/remove"><input type="hidden" name="sku" value="{esc(line.product.sku)}">'
        '<button class="link-btn" type="submit">Remove</button></form></div>'
        for line in lines
    )
    total = sum(line.total for line in lines)
    count = sum(line.quantity for line in lines)
    return (
        f'{note}<h1>Your cart</h1><p class="lead">{count} item{"s" if count != 1 else ""}</p>'
        f'<div class="cart"><div class="cart-lines">{rows}</div>'
        f'<div class="summary"><div class="summary__row"><span>Subtotal</span><span>{money(total)}</span></div>'
        '<div class="summary__row"><span>Shipping</span><span>Free</span></div>'
        f'<div class="summary__row summary__total"><span>Total</span><span>{money(total)}</span></div>'
        '<form method="post" action="/checkout"><button class="btn btn--mint btn--block" type="submit">'
        'Place order</button></form></div></div>'
        f'{slot("cart")}'
    )


def thanks_body(order_id: str, total: float, who: str) -> str:
    return (
        f'<div class="notice">Order <strong>{esc(order_id)}</strong> placed: {money(total)}. '
        f'It was sent to segmint as an <code>order</code> event for {esc(who)}; the next page '
        'view is decided on the updated profile.</div>'
        '<h1>Thank you!</h1><p class="lead">Your picks may have changed: have a look.</p>'
        f'{slot("home")}<a class="btn" href="/">Back to the shop</a>'
    )


def not_found_body(what: str) -> str:
    return f'<h1>Not found</h1><p class="lead">{esc(what)}</p><a class="btn" href="/">Back to the shop</a>'
