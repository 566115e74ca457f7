"""``docs/events.md``: every event type and field, an example each, and the intake's answers."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from segmint.engine import events as ev

from . import _shop
from ._tables import FieldDoc, docstring, json_block, struct_fields, table

__all__ = ["EXAMPLES", "events_markdown"]

#: One example per event type, as a shop would send it (the test decodes each).
EXAMPLES: dict[str, dict[str, Any]] = {
    "page_view": {"type": "page_view", "visitor_id": "v-7f3a", "at": "2026-03-01T10:00:00Z",
                  "path": "/collections/skincare"},
    "product_view": {"type": "product_view", "visitor_id": "v-7f3a", "at": "2026-03-01T10:01:00Z",
                     "sku": "serum-1", "category": "skincare"},
    "cart_update": {"type": "cart_update", "visitor_id": "v-7f3a", "at": "2026-03-01T10:02:00Z",
                    "items": [{"sku": "serum-1", "quantity": 2, "price": 30.0, "category": "skincare"}]},
    "identify": {"type": "identify", "visitor_id": "v-7f3a", "customer_id": "c-42",
                 "at": "2026-03-01T10:03:00Z"},
    "order": {"type": "order", "customer_id": "c-42", "order_id": "A-1001", "at": "2026-03-01T10:05:00+01:00",
              "items": [{"sku": "serum-1", "category": "skincare", "quantity": 2, "price": 30.0,
                         "discount": 3.0}],
              "coupon": "SPRING"},
    "return": {"type": "return", "customer_id": "c-42", "order_id": "A-1001", "at": "2026-03-09T16:00:00Z",
               "items": [{"sku": "serum-1", "quantity": 1}], "amount": 27.0},
    "impression": {"type": "impression", "visitor_id": "v-7f3a", "at": "2026-03-01T10:00:00Z",
                   "campaign": "welcome", "variant": "default", "slot": "home", "skus": ["serum-1", "cream-1"]},
    "click": {"type": "click", "visitor_id": "v-7f3a", "at": "2026-03-01T10:00:09Z", "campaign": "welcome",
              "variant": "default", "slot": "home", "skus": ["serum-1"]},
}

_AUTH = ("Authorization", f"Bearer {_shop.TOKEN}")
_JSON = ("Content-Type", "application/json")
_NO_ORDER_ID = {"type": "order", "customer_id": "c-43", "items": [{"sku": "cream-1", "price": 45.0}]}
_BAD_PATH = {"type": "page_view", "visitor_id": "v-9", "path": 5}


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


#: The intake's answers shown on the page: (heading, request).
_INTAKE = [
    ("every event valid: all stored", _shop.request(
        "POST", "/_segmint/events", headers=[_AUTH, _JSON],
        body=_body([EXAMPLES["product_view"], EXAMPLES["order"]]))),
    ("an order sent again: counted once", _shop.request(
        "POST", "/_segmint/events", headers=[_AUTH, _JSON], body=_body([EXAMPLES["order"]]))),
    ("some events invalid: the valid ones are stored", _shop.request(
        "POST", "/_segmint/events", headers=[_AUTH, _JSON],
        body=_body([EXAMPLES["page_view"], _NO_ORDER_ID, _BAD_PATH]))),
    ("every event invalid: nothing stored", _shop.request(
        "POST", "/_segmint/events", headers=[_AUTH, _JSON], body=_body([_NO_ORDER_ID]))),
    ("an unknown type: the valid types are listed", _shop.request(
        "POST", "/_segmint/events", headers=[_AUTH, _JSON],
        body=_body([{"type": "pageview", "visitor_id": "v-7f3a"}]))),
    ("not a list of events", _shop.request(
        "POST", "/_segmint/events", headers=[_AUTH, _JSON], body=b'[{"type": "page_view",')),
    ("no token, or a wrong one", _shop.request(
        "POST", "/_segmint/events", headers=[_JSON], body=_body([EXAMPLES["page_view"]]))),
]


#: Erasing one person (privacy requests): (heading, request), sent to a fresh shop in this order.
_ERASE = [
    ("a visitor logs in and orders (the person to erase)", _shop.request(
        "POST", "/_segmint/events", headers=[_AUTH, _JSON],
        body=_body([EXAMPLES["page_view"], EXAMPLES["identify"], EXAMPLES["order"]]))),
    ("erase the customer: its linked visitors, links and events go too", _shop.request(
        "DELETE", "/_segmint/profiles?customer=c-42", headers=[_AUTH])),
    ("the visitor afterwards: nothing is stored", _shop.request(
        "DELETE", "/_segmint/profiles?visitor=v-7f3a", headers=[_AUTH])),
    ("not exactly one id", _shop.request(
        "DELETE", "/_segmint/profiles?customer=c-42&visitor=v-7f3a", headers=[_AUTH])),
]


def _check_examples() -> None:
    if set(EXAMPLES) != set(ev.EVENT_TYPES):
        raise ValueError(f"EXAMPLES must have one example per event type: {sorted(ev.EVENT_TYPES)}")
    for name, example in EXAMPLES.items():
        events, errors = ev.decode_events(json.dumps(example))
        if errors or type(events[0]) is not ev.EVENT_TYPES[name]:
            raise ValueError(f"the {name} example does not decode: {errors}")


def _rows(fields: list[FieldDoc]) -> list[list[str]]:
    return [[f"`{f.name}`", f.type, f.default, f.meaning] for f in fields]


def _common_fields() -> set[str]:
    """The fields every event type has (documented once, at the top)."""
    return set.intersection(*({f.name for f in msgspec.structs.fields(cls)} for cls in ev.EVENT_TYPES.values()))


def _event_section(name: str, cls: type) -> list[str]:
    own = [f for f in struct_fields(cls) if f.name not in _common_fields()]
    lines = [f"## `{name}`", "", docstring(cls), ""]
    if own:
        lines += [*table(["field", "type", "default", "meaning"], _rows(own)), ""]
    else:
        lines += ["No fields beyond those of every event.", ""]
    for f in own:
        if f.nested is not None:
            lines += [f"Each of `{f.name}`:", "",
                      *table(["field", "type", "default", "meaning"], _rows(struct_fields(f.nested))), ""]
    return [*lines, "Example:", "", *json_block(EXAMPLES[name]), ""]


def _exchange(heading: str, exchange: _shop.Exchange) -> list[str]:
    try:
        body = json.dumps(json.loads(exchange.body), indent=2)
    except ValueError:
        body = exchange.body.decode()
    lines = [f"### {heading}", "", "```http", f"{exchange.method} {exchange.target}",
             *(f"{k}: {v}" for k, v in exchange.headers), *(["", body] if body else []), "```", "",
             f"Answer: `{exchange.status}`", ""]
    return [*lines, *json_block(exchange.answer), ""]


def events_markdown() -> str:
    """The content of ``docs/events.md``."""
    _check_examples()
    types = ", ".join(f"`{name}`" for name in ev.EVENT_TYPES)
    first = next(iter(ev.EVENT_TYPES.values()))
    common = [FieldDoc("type", "string", "required", f"The event's type: one of {types}."),
              *(f for f in struct_fields(first) if f.name in _common_fields())]
    lines = [
        "# Events",
        "",
        "Generated by `make docs` from the event structs in `engine/events.py`; do not edit by hand.",
        "",
        "Events are the facts segmint folds into visitor profiles. The shop's backend sends them to",
        "the intake (`POST /_segmint/events`, below); the middleware itself records page views,",
        "product views, impressions and clicks for the pages it serves, and `segmint import` loads",
        "order history ([imports.md](imports.md)). An event is a JSON object; unknown fields are",
        "rejected, so a typo is reported instead of silently ignored.",
        "",
        "## Fields of every event",
        "",
        *table(["field", "type", "default", "meaning"], _rows(common)),
        "",
    ]
    for name, cls in ev.EVENT_TYPES.items():
        lines += _event_section(name, cls)
    lines += [
        "## The intake: `POST /_segmint/events`",
        "",
        "The shop's backend posts a JSON list of events (a single object is taken as a list of one),",
        f"at most {ev.MAX_BATCH_EVENTS:,} per request, with the `[api] token` as a Bearer token. Valid",
        "events are stored before the answer. Each invalid event is rejected on its own, named by its",
        "`index` in the list, the `field` at fault and the reason (`error`); an unknown, missing or",
        "non-string `type` lists the valid types. A batch with some events rejected answers `200`",
        "(the valid ones are stored: resend only the rejected ones); a batch with every event",
        "rejected answers `400` (nothing is stored; resending it unchanged is refused again).",
        "Below, the answers of the real intake (an example shop with the token",
        "`" + _shop.TOKEN + "`) to a few requests, in this order.",
        "",
        "Other answers: a body larger than `[middleware] max_body_bytes` is `413`; too many wrong",
        "tokens from one address is `429` (retry after the `Retry-After` seconds); a store that",
        "cannot write is `503` with `Retry-After` (nothing was stored: send the batch again), and",
        "so is every batch while segmint has not started (see",
        "[operations.md](operations.md#start-up-failures)).",
        "",
    ]
    for (heading, _), exchange in zip(_INTAKE, _shop.exchanges([req for _, req in _INTAKE]), strict=True):
        lines += _exchange(heading, exchange)
    lines += [
        "## Erasing one person: `DELETE /_segmint/profiles`",
        "",
        "For a privacy request, `DELETE /_segmint/profiles?customer=ID` (or `?visitor=ID`), with the",
        "same Bearer token, erases one person: the customer's profile, every visitor linked to it",
        "(with their events from before the login), the identity links, their events in the log, the",
        "saved report states and the cached copies (on every server, with Redis). A visitor linked",
        "to a customer names that customer's whole person. The answer counts what was removed;",
        "erasing someone unknown (or already erased) answers `200` with zeros. Order ids stay in",
        "the duplicate check, naming nobody, so an order sent again does not bring the person back.",
        "A store that cannot erase answers `503` with `Retry-After` (send it again). `segmint forget`",
        "does the same from the command line and `segmint export` prints what is stored about the",
        "person (see [operations.md](operations.md#privacy-erase-and-export-one-person)).",
        "",
    ]
    for (heading, _), exchange in zip(_ERASE, _shop.exchanges([req for _, req in _ERASE]), strict=True):
        lines += _exchange(heading, exchange)
    return "\n".join(lines).rstrip("\n") + "\n"
