"""Every field of ``Profile``, derived from the struct (no hand-kept list): a merge keeps it, and
the field table describes it (issue #21 part 6).

A merge is an ``identify`` linking a visitor to a customer, after which the store refolds the
customer's profile from both keys' events in event time (``stores/batch.py``). Each side here
gives every field a non-default value, in two orders (the visitor's events before the
customer's, and after): the merged profile must be what folding the union in event time
gives, and every field must show both sides' events. A field added to ``Profile`` that no
event folds into fails here until ``folding.py`` folds it and the events below exercise it.
"""

import sys
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.document import profile_document
from segmint.engine.events import (
    CartLine, CartUpdate, Click, Identify, Impression, Order, OrderItem, PageView, ProductView, Return,
    ReturnItem,
)
from segmint.engine.field_table import default_field_catalog
from segmint.engine.folding import event_order, fold
from segmint.engine.profile import Profile
from segmint.engine.profiles import Profiles
from segmint.engine.stores import CompactingStore, MemoryStore, SQLiteStore
from segmint.engine.stores.redis import RedisStore

fx = sys.modules["segmint_tests_fixtures"]  # tests/fixtures.py, loaded by tests/conftest.py
leaves = fx.load_by_path("segmint_tests_field_table", fx.TESTS / "engine" / "test_field_table.py").leaves

UTC = timezone.utc
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
LATER = timedelta(days=10)
#: After every event: the time the merged profile's document is built at.
NOW = T0 + 3 * LATER

#: Fields that are the profile's identity, not folded from the person's events; what a merge
#: must make of them is asserted on its own in ``test_an_identify_keeps_every_profile_field``.
IDENTITY = {
    "key": "the store key: the merged profile is the customer's, c:<customer_id>",
    "customer_id": "only a customer's key carries it: the visitor's side has none by design",
}
#: Fields no rule reads (none reaches the document), and why.
NOT_IN_DOCUMENT = {
    "key": "the store key",
    "visitor_ids": "the visitor ids the person was seen under (bounded): identity, shown in a "
                   "profile's export, not behaviour a rule segments on",
    "purchased_at": "when each purchased sku was bought: read by strategies (exclude_purchased "
                    "windows), not by rules",
    "newest_at": "the store's bookkeeping: an event not newer than it refolds the profile",
}


def fields(struct_type):
    """The field names of a msgspec struct type, from the struct itself."""
    return [f.name for f in msgspec.structs.fields(struct_type)]


def person(start, tag, units, **ids):
    """One side's events (``ids``: visitor_id and/or customer_id; ``units`` tells the sides'
    amounts apart): every event type, two
    visits on two days, an order with a discount and a coupon, a partial return, a cart
    left after the order, a campaign shown (with a variant) and clicked."""
    def at(minutes):
        return start + timedelta(minutes=minutes)

    return [
        PageView(**ids, at=at(0)),
        ProductView(**ids, sku=f"{tag}-1", category=tag, at=at(1)),
        Impression(**ids, campaign="vip", variant=f"{tag}-variant", at=at(1)),
        Click(**ids, campaign="vip", skus=[f"{tag}-1"], at=at(2)),
        Order(**ids, order_id=f"{tag}-o1", coupon="SAVE", at=at(3),
              items=[OrderItem(sku=f"{tag}-1", category=tag, quantity=units, price=20.0, discount=5.0)]),
        Return(**ids, order_id=f"{tag}-o1", items=[ReturnItem(sku=f"{tag}-1")], amount=15.0, at=at(4)),
        CartUpdate(**ids, items=[CartLine(sku=f"{tag}-2", quantity=units, price=7.0, category=tag)], at=at(5)),
        PageView(**ids, path="/again", at=at(2 * 24 * 60)),
    ]


def scenario(visitor_first):
    """A visitor's events, a customer's (on another device), and the identify that links
    them: ``(visitor id, customer id, visitor events, customer events, identify)``."""
    n = 1 if visitor_first else 2  # ids of their own: both orders run on one store
    visitor_id, customer_id = f"anon-{n}", f"known-{n}"
    visitor_start, customer_start = (T0, T0 + LATER) if visitor_first else (T0 + LATER, T0)
    return (visitor_id, customer_id, person(visitor_start, f"anon{n}", 2, visitor_id=visitor_id),
            person(customer_start, f"known{n}", 3, customer_id=customer_id, visitor_id=f"device-{n}"),
            Identify(visitor_id=visitor_id, customer_id=customer_id, at=T0 + 2 * LATER))


def folded(key, events):
    profile = Profile(key=key)
    for event in sorted(events, key=event_order):
        fold(profile, event)
    return profile


def nested_defaults(value):
    """Each field of the structs inside ``value`` (a struct, or a tuple or dict of them) that
    is left at its default: ``["campaigns.vip.last_variant"]``."""
    items = (value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, tuple)
             else [("", value)])
    found = []
    for name, inner in items:
        if isinstance(inner, msgspec.Struct):
            optional = [f for f in msgspec.structs.fields(inner) if not f.required]
            blank = type(inner)(**{f.name: getattr(inner, f.name) for f in msgspec.structs.fields(inner)
                                   if f.required})
            found += [f"{name}.{f.name}" for f in optional if getattr(inner, f.name) == getattr(blank, f.name)]
    return found


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.server)])
def store(request, tmp_path):
    clock = lambda: NOW  # noqa: E731
    if request.param == "memory":
        s = MemoryStore(clock=clock)
    elif request.param == "sqlite":
        s = SQLiteStore(str(tmp_path / "profiles.db"), clock=clock)
    else:
        s = RedisStore(request.getfixturevalue("redis_server").url, clock=clock)
    yield s
    s.close()


def test_an_identify_keeps_every_profile_field(store):
    blank = Profile(key="c:x")
    merged_by_order = {}
    for visitor_first in (True, False):
        visitor_id, customer_id, visitor, customer, identify = scenario(visitor_first)
        sides = folded(f"v:{visitor_id}", visitor), folded(f"c:{customer_id}", customer)
        union = folded(f"c:{customer_id}", [*visitor, *customer, identify])
        for name in fields(Profile):
            if name in IDENTITY:
                continue
            for side in sides:
                assert getattr(side, name) != getattr(blank, name), (
                    f"Profile.{name} stays at its default after every event type: fold it in "
                    f"engine/folding.py and give it events in person() here")
                assert not nested_defaults(getattr(side, name)), (name, nested_defaults(getattr(side, name)))

        # Through the profile cache, as the runtime records and reads: both sides cached first.
        profiles = Profiles(store, ttl=3600)
        profiles.record(visitor)
        profiles.record(customer)
        assert profiles.get(visitor_id=visitor_id) == sides[0] and profiles.get(customer_id=customer_id) == sides[1]
        profiles.record([identify])
        merged = profiles.get(customer_id=customer_id)
        assert profiles.get(visitor_id=visitor_id) == merged
        if isinstance(store, CompactingStore):  # the compacted row, not only the folded log
            store.catch_up()
        assert store.load(customer_id=customer_id) == merged == store.load(visitor_id=visitor_id)
        assert (merged.key, merged.customer_id) == (f"c:{customer_id}", customer_id)
        for name in fields(Profile):
            assert getattr(merged, name) == getattr(union, name), f"the merge changed Profile.{name}"
        merged_by_order[visitor_first] = merged, sides

    for name in fields(Profile):
        if name in IDENTITY:
            continue
        # Both sides' events show in the field: it differs from each side alone in at least
        # one of the two orders (a "latest wins" field takes the later side's value).
        for side in (0, 1):
            assert any(getattr(merged, name) != getattr(sides[side], name)
                       for merged, sides in merged_by_order.values()), (
                f"Profile.{name} after a merge is always the {('visitor', 'customer')[side]}'s own")


def test_every_profile_field_reaches_a_described_document_key():
    """Blanking one field of a full profile changes the document keys that field makes; each
    must be in the field table (docs/fields.md). Fields that reach no key are listed, with
    the reason, in ``NOT_IN_DOCUMENT``."""
    catalog = default_field_catalog()
    _, customer_id, visitor, customer, identify = scenario(visitor_first=True)
    full = folded(f"c:{customer_id}", [*visitor, *customer, identify])
    blank = Profile(key=full.key)
    document = dict(leaves(profile_document(full, NOW)))
    for name in fields(Profile):
        without = msgspec.structs.replace(full, **{name: getattr(blank, name)})
        other = dict(leaves(profile_document(without, NOW)))
        changed = {path for path in document.keys() | other.keys() if document.get(path) != other.get(path)}
        if name in NOT_IN_DOCUMENT:
            assert not changed, f"Profile.{name} reaches {sorted(changed)}: take it out of NOT_IN_DOCUMENT"
            continue
        assert changed, f"Profile.{name} reaches no document key: add one (document.py, field_table.py) " \
                        "or list it in NOT_IN_DOCUMENT with the reason"
        assert all(path in catalog for path in changed), (name, sorted(p for p in changed if p not in catalog))
