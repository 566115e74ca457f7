"""The built-in widget renderer: an accessible, escaped HTML widget with tracking data.

Every value reaches the HTML through the template language of ``_template.py``, which escapes
everything; product URLs that are not ``http(s)`` or site-relative become ``#`` (the catalog
loader rejects them too: defence in depth). Each product link carries
``?_sgm=<campaign>.<variant>.<slot>`` so the middleware can record the click (and strip the
parameter) without JavaScript; the token's format is the engine's (``segmint.engine.tracking``). A config can point ``[render] template`` at its own template
file (see ``DEFAULT_TEMPLATE`` for the names it may use). Prices reach the template formatted
in the config's ``[render] currency`` (``$1,299.00``), so the page needs no CSS to show them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from cachetools import LRUCache

from segmint.engine.catalog import is_safe_url
from segmint.engine.hooks import hookimpl
from segmint.engine.tracking import CLICK_PARAM, click_token, parse_click_token  # re-exported: the format is the engine's

from ._template import Template, load_template

__all__ = ["CLICK_PARAM", "DEFAULT_TEMPLATE", "WIDGET_SCHEMA", "click_token", "parse_click_token",
           "add_click_param", "compile_widget_template", "widget_context", "render_widget", "format_money"]

_PRODUCT_NAMES = ("sku", "name", "url", "image", "price", "compare_at_price", "discount_pct",
                  "category", "position")
#: The names a widget template may use.
WIDGET_SCHEMA: Mapping[str, Any] = {
    **{name: None for name in ("slot", "campaign", "variant", "segment", "title", "label", "tracking")},
    "coupon": {name: None for name in ("code", "percent", "amount", "text")},
    "products": {name: None for name in _PRODUCT_NAMES},
}

DEFAULT_TEMPLATE = """\
<section class="segmint-widget" data-segmint-slot="{{slot}}" data-segmint-campaign="{{campaign}}" \
data-segmint-variant="{{variant}}" aria-label="{{label}}">
{{#title}}<h2 class="segmint-title">{{title}}</h2>
{{/title}}{{#coupon}}<p class="segmint-coupon">{{text}}</p>
{{/coupon}}<ul class="segmint-products">
{{#products}}<li class="segmint-product" data-segmint-sku="{{sku}}" data-segmint-position="{{position}}">\
<a href="{{url}}">{{#image}}<img src="{{image}}" alt="{{name}}" loading="lazy">{{/image}}\
<span class="segmint-name">{{name}}</span> <span class="segmint-price">\
{{#compare_at_price}}<s class="segmint-compare-at">{{compare_at_price}}</s> {{/compare_at_price}}\
{{price}}</span></a></li>
{{/products}}</ul>
</section>"""


def compile_widget_template(text: str, *, source: str = "<template>") -> Template:
    """Compile a widget template (``ConfigError`` with line and suggestion when it is wrong)."""
    return Template(text, WIDGET_SCHEMA, source=source)


_DEFAULT = compile_widget_template(DEFAULT_TEMPLATE, source="<default widget template>")


def add_click_param(url: str, token: str) -> str:
    """``url`` with ``_sgm=<token>`` added to its query, before any ``#fragment``."""
    base, hash_, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{CLICK_PARAM}={quote(token, safe='')}{hash_}{fragment}"


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


# Symbols and minor-unit digits of common ISO 4217 currencies, as English-language shops
# write them (CLDR "en"); other codes are written before the amount ("CHF 1,299.00").
_SYMBOLS = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "CN¥", "INR": "₹", "KRW": "₩",
    "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "HKD": "HK$", "SGD": "S$", "TWD": "NT$", "MXN": "MX$",
    "BRL": "R$", "ILS": "₪", "PHP": "₱", "VND": "₫", "NGN": "₦", "UAH": "₴", "TRY": "₺",
}
_DECIMALS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "PYG": 0,
             "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3}


def format_money(amount: float, currency: str = "USD") -> str:
    """An amount as a shopper reads it: symbol, thousands grouped, the currency's decimals.

    >>> format_money(1299, "USD"), format_money(1299.5, "eur"), format_money(1299, "JPY")
    ('$1,299.00', '€1,299.50', '¥1,299')
    >>> format_money(1299, "CHF")
    'CHF 1,299.00'
    """
    code = currency.upper()
    symbol = _SYMBOLS.get(code, code + " ")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.{_DECIMALS.get(code, 2)}f}"


def _number(value: float) -> str:
    return f"{value:g}"


def _coupon(coupon: Any, currency: str) -> dict[str, str] | None:
    if not coupon or not _get(coupon, "code"):
        return None
    code, percent, amount = _get(coupon, "code"), _get(coupon, "percent"), _get(coupon, "amount")
    context = {"code": str(code), "percent": "", "amount": "", "text": f"Use code {code}"}
    if percent:
        context["percent"] = _number(percent)
        context["text"] += f" for {_number(percent)}% off"
    elif amount:
        context["amount"] = format_money(amount, currency)
        context["text"] += f" for {context['amount']} off"
    return context


def widget_context(slot_decision: Any, currency: str = "USD") -> dict[str, Any]:
    """The plain values a template sees (strings, lists and dicts only); prices and coupon
    amounts formatted in ``currency`` (an ISO 4217 code)."""
    campaign, variant, slot = (_get(slot_decision, n) for n in ("campaign", "variant", "slot"))
    token = click_token(campaign, variant, slot)
    title = _get(slot_decision, "title")
    products = []
    for position, product in enumerate(_get(slot_decision, "products") or (), start=1):
        url = add_click_param(product.url, token) if is_safe_url(product.url) else "#"
        markdown = product.discount_pct > 0
        products.append({
            "sku": product.sku,
            "name": product.name,
            "url": url,
            "image": product.image if is_safe_url(product.image) else None,
            "price": format_money(product.price, currency),
            "compare_at_price": format_money(product.compare_at_price, currency) if markdown else None,
            "discount_pct": _number(product.discount_pct) if markdown else None,
            "category": product.category,
            "position": str(position),
        })
    return {
        "slot": slot or "", "campaign": campaign or "", "variant": variant or "",
        "segment": _get(slot_decision, "segment") or "",
        "title": title or "", "label": title or "Recommended products", "tracking": token,
        "coupon": _coupon(_get(slot_decision, "coupon"), currency),
        "products": products,
    }


def render_widget(slot_decision: Any, template: Template | str | None = None, *, currency: str = "USD") -> str:
    """The widget HTML for one slot decision; ``""`` for a control variant or no products.

    ``template`` is a compiled template or template text; None uses ``DEFAULT_TEMPLATE``.
    ``currency`` is the ISO 4217 code prices are shown in (``[render] currency``).
    """
    if _get(slot_decision, "control") or not _get(slot_decision, "products"):
        return ""
    if isinstance(template, str):
        template = compile_widget_template(template)
    return (template or _DEFAULT).render(widget_context(slot_decision, currency))


# Compiled config templates by (path, mtime): an edited template is picked up on the next
# render; old versions age out of the bounded LRU.
_templates: LRUCache[tuple[str, int], Template] = LRUCache(maxsize=16)
_templates_lock = threading.Lock()


def config_template(config: Any) -> Template | None:
    """The template named by ``config.render.template`` (relative to the config's directory)."""
    raw = config.render.template
    if not raw:
        return None
    path = config.resolve_path(raw)
    try:
        key = (str(path), os.stat(path).st_mtime_ns)
    except OSError:
        key = (str(path), -1)  # load_template raises the ConfigError naming the file
    with _templates_lock:
        cached = _templates.get(key)
    if cached is None:
        cached = load_template(path, WIDGET_SCHEMA)
        with _templates_lock:
            _templates[key] = cached
    return cached


@hookimpl(trylast=True)
def segmint_render_widget(slot_decision: Any, config: Any) -> str:
    return render_widget(slot_decision, config_template(config), currency=config.render.currency)
