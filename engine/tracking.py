"""What a page view records, and the click token widget links carry.

The events the request path records about one visitor (page view, product view, widget
impression, click, identify) are built here from the request's ``Identity``, so the
middleware, the API endpoints and the personalization step record them alike.

A widget's product links carry ``?_sgm=<campaign>.<variant>.<slot>`` (``CLICK_PARAM``,
``click_token``): renderers (replaceable plugins) write it, the middleware reads it back with
``parse_click``, records the click and strips the parameter before the app sees the URL. The
format lives here, in the engine, so a renderer and the middleware cannot disagree on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from .config.schema import CONTROL_VARIANT
from .events import Click, Identify, Impression, PageView, ProductView
from .identity import Identity

__all__ = [
    "CLICK_PARAM",
    "ClickInfo",
    "click_token",
    "parse_click_token",
    "parse_click",
    "page_view_event",
    "product_view_event",
    "impression_event",
    "click_event",
    "identify_event",
]

#: Query parameter carrying the click-tracking token on product links.
CLICK_PARAM = "_sgm"
#: Longest click parameter value read (a longer one is not a token segmint wrote).
MAX_CLICK_VALUE = 1024


def _part(value: str | None) -> str:
    # "." separates the parts, so it is escaped inside them too.
    return quote(value or "", safe="").replace(".", "%2E")


def click_token(campaign: str | None, variant: str | None, slot: str | None) -> str:
    """``campaign.variant.slot`` with each part percent-encoded (dots included)."""
    return ".".join(_part(value) for value in (campaign, variant, slot))


def parse_click_token(token: str) -> tuple[str, str, str] | None:
    """The inverse of ``click_token`` (after the query string was decoded); None if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    campaign, variant, slot = (unquote(part) for part in parts)
    return campaign, variant, slot


@dataclass(frozen=True, slots=True)
class ClickInfo:
    """A widget click read from a link's click parameter."""

    campaign: str
    variant: str | None = None
    slot: str | None = None
    #: The product the link led to, when it is a product page.
    sku: str | None = None


def _clean(value: str, limit: int) -> str | None:
    if not value or len(value) > limit or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    return value


def parse_click(value: str, sku: str | None = None) -> ClickInfo | None:
    """Read a click parameter value (``click_token``'s format); None for anything that is not
    a well-formed token (the value comes from the request: never trusted, never raises).

    ``sku`` is the product the link led to, when the page is a product page.
    """
    if not value or len(value) > MAX_CLICK_VALUE:
        return None
    parsed = parse_click_token(value)
    if parsed is None:
        return None
    campaign = _clean(parsed[0], 128)
    if campaign is None:
        return None
    return ClickInfo(campaign, _clean(parsed[1], 256), _clean(parsed[2], 256), sku)


def page_view_event(identity: Identity, path: str, now: datetime) -> PageView:
    return PageView(path=path[:2048], at=now, visitor_id=identity.visitor_id, customer_id=identity.customer_id)


def product_view_event(identity: Identity, sku: str, now: datetime) -> ProductView:
    return ProductView(sku=sku[:128], at=now, visitor_id=identity.visitor_id, customer_id=identity.customer_id)


def impression_event(identity: Identity, slot_decision: Any, now: datetime) -> Impression:
    """An impression of one slot's decision; a control-group decision records ``control``."""
    variant = CONTROL_VARIANT if slot_decision.control else slot_decision.variant
    skus = [p.sku for p in slot_decision.products[:100]] if slot_decision.products else []
    return Impression(
        campaign=slot_decision.campaign, variant=variant, slot=slot_decision.slot, skus=skus,
        at=now, visitor_id=identity.visitor_id, customer_id=identity.customer_id,
    )


def click_event(identity: Identity, click: ClickInfo, now: datetime) -> Click:
    return Click(
        campaign=click.campaign, variant=click.variant, slot=click.slot,
        skus=[click.sku] if click.sku else [], at=now,
        visitor_id=identity.visitor_id, customer_id=identity.customer_id,
    )


def identify_event(identity: Identity, now: datetime) -> Identify:
    return Identify(at=now, visitor_id=identity.visitor_id, customer_id=identity.customer_id)
