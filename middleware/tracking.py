"""Events the middleware records about page views, widgets and clicks.

All of them go through ``runtime.track`` (queued, written in batches off the request path).
Widget links carry a click parameter (``_sgm``, ``CLICK_PARAM``, written by the renderer)
naming the campaign, variant and slot; the middleware records the click (with the product of
the page the link leads to) and strips the parameter from the query string before the app
sees it, so the app's own URL handling and caches are unaffected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from segmint.engine.config.schema import CONTROL_VARIANT
from segmint.engine.events import Click, Identify, Impression, PageView, ProductView
from segmint.engine.identity import Identity
from segmint.plugins.render_html import CLICK_PARAM, parse_click_token

__all__ = [
    "CLICK_PARAM",
    "ClickInfo",
    "click_event",
    "identify_event",
    "impression_event",
    "page_view_event",
    "parse_click",
    "product_path_pattern",
    "product_view_event",
    "split_click_param",
]

_CLICK_KEY = CLICK_PARAM.encode()
_MAX_VALUE = 1024


@dataclass(frozen=True, slots=True)
class ClickInfo:
    campaign: str
    variant: str | None = None
    slot: str | None = None
    sku: str | None = None


def _clean(value: str, limit: int) -> str | None:
    if not value or len(value) > limit or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    return value


def parse_click(value: str, sku: str | None = None) -> ClickInfo | None:
    """Read a click parameter value (``campaign.variant.slot``, as the renderer writes it).

    ``sku`` is the product the link led to, when the page is a product page. Returns None
    for anything that is not a well-formed token; never raises.
    """
    if not value or len(value) > _MAX_VALUE:
        return None
    parsed = parse_click_token(value)
    if parsed is None:
        return None
    campaign = _clean(parsed[0], 128)
    if campaign is None:
        return None
    return ClickInfo(campaign, _clean(parsed[1], 256), _clean(parsed[2], 256), sku)


def split_click_param(query: bytes) -> tuple[bytes, str | None]:
    """``query`` without the click parameter, and the parameter's decoded value (or None).

    Other parameters are kept byte for byte, in order.
    """
    kept: list[bytes] = []
    value: str | None = None
    for pair in query.split(b"&"):
        key, _, raw = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == _CLICK_KEY:
            if value is None:
                value = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")
            continue
        kept.append(pair)
    return b"&".join(kept), value


def product_path_pattern(template: str) -> re.Pattern[str] | None:
    """``/products/{sku}`` -> a regex whose ``sku`` group matches one path segment."""
    if not template or "{sku}" not in template:
        return None
    before, _, after = template.partition("{sku}")
    return re.compile(f"^{re.escape(before)}(?P<sku>[^/]{{1,128}}){re.escape(after)}/?$")


def _ids(identity: Identity) -> dict[str, Any]:
    return {"visitor_id": identity.visitor_id, "customer_id": identity.customer_id}


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
        skus=[click.sku] if click.sku else [], at=now, **_ids(identity),
    )


def identify_event(identity: Identity, now: datetime) -> Identify:
    return Identify(at=now, **_ids(identity))
