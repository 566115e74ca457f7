"""Events: the facts segmint folds into profiles, and their public JSON form.

Every event is a JSON object with a ``type`` tag; what each field means, its type and
default are given here (``Meta(description=...)`` and each struct's docstring), and
``docs/events.md`` is generated from them (``make docs``; a test keeps it in sync).
Unknown fields are rejected so that a typo is reported instead of silently ignored.
``validate_event`` adds the checks one field cannot express: an event needs a
``visitor_id`` or a ``customer_id`` (``identify`` needs both), and an order line's
``discount`` is at most its ``price``.

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

from .dates import InstantError, read_instant_fields
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
    "decode_event",
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


def _doc(text: str) -> msgspec.Meta:
    """The meaning of a field, for ``docs/events.md`` and the JSON Schema (no constraint)."""
    return msgspec.Meta(description=text)


class _Base(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True,
            tag_field="type"):
    at: Annotated[datetime | None, _doc(
        "When it happened: 2026-03-01T10:00:00Z, another offset or none (UTC), or a date "
        "alone (midnight UTC); every form config.md#dates lists. Left out: the time the "
        "intake receives the event (imported orders must have it). A profile folds its "
        "events in this time order, whatever order they arrive in; events of one instant in "
        "a fixed order (by type, then content), so send milliseconds when a cart can change "
        "twice in a second.")] = None
    visitor_id: Annotated[Id | None, _doc(
        "The browser's visitor id (the middleware's cookie). An event needs a visitor_id "
        "or a customer_id.")] = None
    customer_id: Annotated[Id | None, _doc(
        "The shop's customer id: events of one customer on several devices fold into one "
        "profile.")] = None


class PageView(_Base, tag="page_view"):
    """A page of the shop was shown (the middleware records one per HTML page itself)."""

    path: Annotated[Path, _doc("The page's path.")] = "/"


class ProductView(_Base, tag="product_view"):
    """A product page was shown (the middleware records these on product pages itself)."""

    sku: Annotated[Id, _doc("The product, as in the catalog.")]
    category: Annotated[Text | None, _doc(
        "The product's category: counted in the visitor's category views.")] = None


class CartLine(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One line of a cart."""

    sku: Annotated[Id, _doc("The product in the cart.")]
    quantity: Annotated[Quantity, _doc("Units of it.")] = 1
    price: Annotated[Money, _doc("Price per unit.")] = 0.0
    category: Annotated[Text | None, _doc("The product's category.")] = None


class CartUpdate(_Base, tag="cart_update"):
    """The visitor's cart changed; the event carries the whole new cart."""

    items: Annotated[list[CartLine], msgspec.Meta(max_length=MAX_LINES, description=(
        "Every line of the cart after the change, not the difference; an empty list empties "
        "the cart."))] = msgspec.field(default_factory=list)
    value: Annotated[Money | None, _doc(
        "The cart's value. Left out: the sum of quantity * price.")] = None


class OrderItem(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One line of an order."""

    sku: Annotated[Id, _doc("The product bought.")]
    category: Annotated[Text | None, _doc(
        "The product's category: counted in the customer's category items and spend.")] = None
    quantity: Annotated[Quantity, _doc("Units bought.")] = 1
    price: Annotated[Money, _doc("Price per unit, before the discount.")] = 0.0
    discount: Annotated[Money, _doc(
        "Money off per unit (0 if none), at most the price. A discounted line makes the "
        "order count as discounted.")] = 0.0


class Order(_Base, tag="order"):
    """An order was placed: sent by the shop's backend, or imported from order history."""

    order_id: Annotated[Id, _doc(
        "The shop's order number. An order_id already stored is a duplicate and is not "
        "counted again (shops retry).")]
    items: Annotated[list[OrderItem], msgspec.Meta(
        min_length=1, max_length=MAX_LINES, description="The order's lines.")]
    total: Annotated[Money | None, _doc(
        "What the customer paid. Left out: the sum of quantity * (price - discount).")] = None
    coupon: Annotated[Text | None, _doc(
        "The coupon code used; a coupon makes the order count as discounted.")] = None


class ReturnItem(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One returned line."""

    sku: Annotated[Id, _doc("The product returned.")]
    quantity: Annotated[Quantity, _doc("Units returned.")] = 1


class Return(_Base, tag="return"):
    """Products of an order came back."""

    order_id: Annotated[Id, _doc("The order the products were bought in.")]
    items: Annotated[list[ReturnItem], msgspec.Meta(max_length=MAX_LINES, description=(
        "The returned lines: their quantities count as returned items."))] = msgspec.field(
        default_factory=list
    )
    amount: Annotated[Money | None, _doc(
        "Money refunded for this return, when the shop knows it: summed in spend.refunded and "
        "subtracted in spend.net. Left out: nothing counts as refunded.")] = None


class Identify(_Base, tag="identify"):
    """A visitor logged in or was recognized: links ``visitor_id`` to ``customer_id``
    (both required). The visitor's events join the customer's: one profile, their events
    folded together in time (a visit spanning the login counts once)."""


class _Exposure(_Base):
    campaign: Annotated[Id, _doc("The campaign whose widget it was.")]
    variant: Annotated[Text | None, _doc("The campaign's variant the visitor is in.")] = None
    slot: Annotated[Text | None, _doc("The slot the widget filled.")] = None
    skus: Annotated[list[Id], msgspec.Meta(max_length=100, description=(
        "The products shown (impression) or clicked (click)."))] = msgspec.field(default_factory=list)


class Impression(_Exposure, tag="impression"):
    """A campaign's widget was shown, or its holdout applied (the middleware writes these)."""


class Click(_Exposure, tag="click"):
    """A product in a widget was clicked (the middleware writes these)."""


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


def _error(index: int | None, exc: msgspec.ValidationError) -> EventError:
    match = _ERROR.match(str(exc))
    assert match is not None  # the pattern matches any string
    message, path = match["msg"], match["path"] or ""
    named = _NAMED.search(message)
    if named and ("missing required field" in message or "unknown field" in message):
        path = f"{path}.{named[1]}" if path else named[1]
    if path == "type":  # a misspelt, missing or non-string tag: say which types exist
        if message.startswith("Invalid value "):
            message = "unknown event type " + message[len("Invalid value "):]
        message += "; valid types: " + ", ".join(EVENT_TYPES)
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
            event = _decode_one(raw, convert, text=convert is not _convert)
        except msgspec.ValidationError as exc:
            errors.append(_error(index, exc))
            continue
        except InstantError as exc:
            errors.append(EventError(exc.reason, index=index, field=exc.field))
            continue
        problem = validate_event(event)
        if problem:
            errors.append(EventError(problem[1], index=index, field=problem[0]))
            continue
        _normalize(event, now)
        events.append(event)
    return events, errors


def _decode_one(raw: Any, convert: Callable[[Any], Any], kind: Any = Event, *, text: bool = True) -> Any:
    """One event. msgspec reads an RFC 3339 ``at`` itself (the fast path); an event it
    rejects is read again with ``at`` parsed by ``segmint.engine.dates`` (a date alone, no
    seconds, ...), which also explains an ``at`` that is no date at all (``InstantError``).
    ``text``: ``raw`` is JSON text, else already Python objects."""
    try:
        return convert(raw)
    except msgspec.ValidationError:
        data = msgspec.json.decode(raw) if text else raw
        read = read_instant_fields(data, ("at",))
        if read is data:  # no `at`: msgspec's error stands
            raise
    return msgspec.convert(read, kind)


_decoders: dict[Any, msgspec.json.Decoder] = {Event: _event_decoder}


def decode_event(raw: bytes | str, kind: Any = Event) -> Event:
    """One event from its JSON text (a JSONL line), as ``kind`` (``Order``: ``type`` may be
    left out). Raises ``EventError`` (with ``field``) when it is not a valid event."""
    decoder = _decoders.get(kind) or _decoders.setdefault(kind, msgspec.json.Decoder(kind))
    try:
        event = _decode_one(raw, decoder.decode, kind)
    except msgspec.ValidationError as exc:
        raise _error(None, exc) from None
    except InstantError as exc:
        raise EventError(exc.reason, field=exc.field) from None
    problem = validate_event(event)
    if problem:
        raise EventError(problem[1], field=problem[0])
    return event


def _convert(obj: Any) -> Event:
    return msgspec.convert(obj, Event)  # type: ignore[arg-type]


def event_to_dict(event: Event) -> dict[str, Any]:
    """The public JSON form of an event as a dict (``at`` as an ISO-8601 string)."""
    return msgspec.to_builtins(event)


def encode_events(events: Sequence[Event]) -> bytes:
    """The public JSON form of a batch of events (what ``decode_events`` reads back)."""
    return _encoder.encode(list(events))
