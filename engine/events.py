"""Events: the facts segmint folds into profiles, and their public JSON form.

Every event is a JSON object with a ``type`` tag, an optional ``at`` (ISO-8601; a time
without an offset is UTC; missing means "now") and a ``visitor_id`` and/or ``customer_id``
(at least one; ``identify`` needs both). Ids are 1-128 characters. Unknown fields are
rejected so that a typo is reported instead of silently ignored.

| type | field | JSON type | notes |
| --- | --- | --- | --- |
| (all) | ``type`` | string | one of the types below (required) |
| (all) | ``at`` | string | ISO-8601 time; default: when received |
| (all) | ``visitor_id``, ``customer_id`` | string | 1-128 chars; at least one |
| page_view | ``path`` | string | default ``"/"``; <= 2048 chars |
| product_view | ``sku`` (required), ``category`` | string | |
| cart_update | ``items`` | list of ``{sku, quantity=1, price=0, category}`` | the new cart, <= 500 lines |
| cart_update | ``value`` | number | default: sum of quantity * price |
| order | ``order_id`` (required) | string | dedupe key |
| order | ``items`` (required) | list of ``{sku, category, quantity=1, price=0, discount=0}`` | 1-500 lines; ``discount`` is money off per unit, <= price |
| order | ``total`` | number | default: sum of quantity * (price - discount) |
| order | ``coupon`` | string | a coupon makes the order "discounted" |
| return | ``order_id`` (required), ``items`` | list of ``{sku, quantity=1}`` | |
| identify | ``visitor_id`` and ``customer_id`` | string | both required: links the two |
| impression, click | ``campaign`` (required), ``variant``, ``slot`` | string | written by the middleware |
| impression, click | ``skus`` | list of string | products shown / clicked, <= 100 |

Money values (``price``, ``discount`` = money off per unit, ``total``, ``value``) and
quantities are non-negative; ``total``/``value`` default to the sum of the lines
(``quantity * (price - discount)``). An order has 1-500 lines, a cart or return 0-500.
An ``order_id`` already stored is a duplicate and is not counted twice (shops retry).

Example::

    [{"type": "order", "customer_id": "42", "order_id": "A-1", "at": "2025-03-01T10:00:00Z",
      "items": [{"sku": "serum-1", "category": "skincare", "quantity": 2, "price": 30.0,
                 "discount": 5.0}], "coupon": "SPRING"}]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Annotated, Any, Union

import msgspec

from .errors import EventError

__all__ = [
    "Event",
    "EVENT_TYPES",
    "PageView",
    "ProductView",
    "CartUpdate",
    "CartLine",
    "Order",
    "OrderItem",
    "Return",
    "ReturnItem",
    "Identify",
    "Impression",
    "Click",
    "decode_events",
    "encode_events",
    "event_to_dict",
    "stamp_events",
    "validate_event",
    "MAX_BATCH_EVENTS",
]

UTC = timezone.utc
MAX_BATCH_EVENTS = 10_000
MAX_LINES = 500

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=256)]
Path = Annotated[str, msgspec.Meta(max_length=2048)]
Money = Annotated[float, msgspec.Meta(ge=0, le=1e12)]
Quantity = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class _Base(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True,
            tag_field="type"):
    at: datetime | None = None
    visitor_id: Id | None = None
    customer_id: Id | None = None


class PageView(_Base, tag="page_view"):
    path: Path = "/"


class ProductView(_Base, tag="product_view"):
    sku: Id
    category: Text | None = None


class CartLine(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    sku: Id
    quantity: Quantity = 1
    price: Money = 0.0
    category: Text | None = None


class CartUpdate(_Base, tag="cart_update"):
    items: Annotated[list[CartLine], msgspec.Meta(max_length=MAX_LINES)] = msgspec.field(
        default_factory=list
    )
    value: Money | None = None


class OrderItem(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    sku: Id
    category: Text | None = None
    quantity: Quantity = 1
    price: Money = 0.0
    #: Money off per unit (0 if none).
    discount: Money = 0.0


class Order(_Base, tag="order"):
    order_id: Id
    items: Annotated[list[OrderItem], msgspec.Meta(min_length=1, max_length=MAX_LINES)]
    total: Money | None = None
    coupon: Text | None = None


class ReturnItem(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    sku: Id
    quantity: Quantity = 1


class Return(_Base, tag="return"):
    order_id: Id
    items: Annotated[list[ReturnItem], msgspec.Meta(max_length=MAX_LINES)] = msgspec.field(
        default_factory=list
    )


class Identify(_Base, tag="identify"):
    pass


class _Exposure(_Base):
    campaign: Id
    variant: Text | None = None
    slot: Text | None = None
    skus: Annotated[list[Id], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)


class Impression(_Exposure, tag="impression"):
    pass


class Click(_Exposure, tag="click"):
    pass


Event = Union[PageView, ProductView, CartUpdate, Order, Return, Identify, Impression, Click]
EVENT_TYPES: dict[str, type] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (PageView, ProductView, CartUpdate, Order, Return, Identify, Impression, Click)
}

_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_event_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()
_ERROR = re.compile(r"^(?P<msg>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.S)
_NAMED = re.compile(r"field `([^`]+)`")


def validate_event(event: Event) -> tuple[str, str] | None:
    """Checks msgspec's schema cannot express; ``(field, message)`` or None when valid."""
    if isinstance(event, Identify):
        if not event.visitor_id:
            return "visitor_id", "identify needs both visitor_id and customer_id"
        if not event.customer_id:
            return "customer_id", "identify needs both visitor_id and customer_id"
    elif not event.visitor_id and not event.customer_id:
        return "visitor_id", "an event needs a visitor_id or a customer_id"
    if isinstance(event, Order):
        for i, item in enumerate(event.items):
            if item.discount > item.price:
                return f"items[{i}].discount", "discount per unit is larger than the price"
    return None


def _error(index: int, exc: msgspec.ValidationError) -> EventError:
    match = _ERROR.match(str(exc))
    assert match is not None  # the pattern matches any string
    message, path = match["msg"], match["path"] or ""
    named = _NAMED.search(message)
    if named and ("missing required field" in message or "unknown field" in message):
        path = f"{path}.{named[1]}" if path else named[1]
    return EventError(message, index=index, field=path or None)


def _normalize(event: Event, now: datetime) -> None:
    at = event.at
    if at is None:
        event.at = now
    elif at.tzinfo is None:
        event.at = at.replace(tzinfo=UTC)
    elif at.utcoffset():
        event.at = at.astimezone(UTC)


def stamp_events(events: Sequence[Event], now: datetime | None = None, *,
                 clock: Callable[[], datetime] | None = None) -> None:
    """Give events without ``at`` the time ``now`` and make every ``at`` aware UTC (in place).

    Without ``now``, the time is read from ``clock`` (default: the system clock), and only
    when an event needs it: events built in process usually carry their time.
    """
    for event in events:
        at = event.at
        if at is None or (at.tzinfo is not UTC and (at.tzinfo is None or at.utcoffset())):
            now = now or (clock() if clock is not None else datetime.now(UTC))
            _normalize(event, now)


def decode_events(
    body: bytes | str | list[Any], *, now: datetime | None = None
) -> tuple[list[Event], list[EventError]]:
    """Decode a batch of events: the valid ones, and an ``EventError`` per invalid one.

    ``body`` is JSON (a list of event objects, or one object) or already-parsed Python
    objects. A malformed body (not JSON, not a list, too many events) raises ``EventError``
    with ``index=None``; a bad event only rejects itself::

        >>> good, bad = decode_events(b'[{"type": "page_view", "visitor_id": "v1"},'
        ...                           b' {"type": "order", "customer_id": "c"}]')
        >>> len(good), bad[0].index, bad[0].field
        (1, 1, 'order_id')
    """
    now = now or datetime.now(UTC)
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        stripped = bytes(body if not isinstance(body, str) else body.encode()).lstrip()
        if stripped.startswith(b"{"):
            stripped = b"[" + stripped + b"]"
        try:
            raws: list[Any] = _decoder.decode(stripped)
        except msgspec.DecodeError as exc:
            raise EventError(f"the body is not a JSON list of events: {exc}") from None
        except RecursionError:  # msgspec refuses very deep nesting this way
            raise EventError("the body is nested too deeply to be a list of events") from None
        convert = _event_decoder.decode
    else:
        raws = [body] if isinstance(body, dict) else list(body)
        convert = _convert
    if len(raws) > MAX_BATCH_EVENTS:
        raise EventError(f"too many events in one batch ({len(raws)} > {MAX_BATCH_EVENTS})")
    events: list[Event] = []
    errors: list[EventError] = []
    for index, raw in enumerate(raws):
        try:
            event = convert(raw)
        except msgspec.ValidationError as exc:
            errors.append(_error(index, exc))
            continue
        problem = validate_event(event)
        if problem:
            errors.append(EventError(problem[1], index=index, field=problem[0]))
            continue
        _normalize(event, now)
        events.append(event)
    return events, errors


def _convert(obj: Any) -> Event:
    return msgspec.convert(obj, Event)  # type: ignore[arg-type]


def event_to_dict(event: Event) -> dict[str, Any]:
    """The public JSON form of an event as a dict (``at`` as an ISO-8601 string)."""
    return msgspec.to_builtins(event)


def encode_events(events: Sequence[Event]) -> bytes:
    """The public JSON form of a batch of events (what ``decode_events`` reads back)."""
    return _encoder.encode(list(events))
