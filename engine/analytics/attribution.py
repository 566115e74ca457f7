"""Attribution: credit each order to the campaign variants its buyer saw, in one streamed pass.

Events are read oldest first (impressions, clicks, orders, identify links). An order is
attributed to every (campaign, variant) the buyer was exposed to at most ``window`` before it
(an impression, the control group's "nothing shown" impression included, or a click); it is a
*click-through* when a click on that campaign came within the window too. Revenue from the
order lines whose sku the widget showed within the window is counted apart from the order
total. A visitor who logs in (``identify``, or any event carrying both ids) is merged into
the customer, so what they saw anonymously counts for the customer's later orders.

The unit of the conversion rate is a *visitor run*: one person's exposures to one variant
that are no more than ``window`` apart. Memory only holds people seen within the last
``window`` (plus a bounded table of visitor -> customer links), so it does not grow with the
number of events; someone who returns after a silence longer than the window is a new run.
Both tables are capped (``max_people``, ``max_links``); what the caps drop is counted.

Per variant the pass also sums what the statistics need beyond counts: the squares of each
run's revenue and orders and their product (revenue per visitor with its sample variance,
average order value as a ratio metric), and for CUPED each run's *pre-exposure* spend and
orders: what the person had spent and ordered, in the events read so far, before the run
began, with their squares and their products with the run's revenue and conversion. That
history is one small entry per buyer (``max_history``, least recently active dropped first).
A person exposed to more than one variant of a campaign (usually one human on two devices,
merged by a login) is counted once per campaign (``multi_arm``).

The pass reads rows ``(at, kind, event)`` (``feed_rows``): ``at`` in seconds since the epoch,
``kind`` one of ``IMPRESSION``, ``CLICK``, ``ORDER``, ``IDENTIFY`` or ``EXPOSURES``, and an
event with the fields attribution reads (an ``Event``, or the narrower records a fast reader
decodes: ``eventlog.py``). ``EXPOSURES`` is several impressions folded ahead by a columnar
reader (``Exposures``). The figures depend only on the events, never on how they were
batched or when memory was swept: a person silent for longer than the window is someone new
when met again, whether or not the sweep had dropped them yet.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from datetime import datetime, timezone
from typing import Any, Final

import msgspec

from ..events import Click, Event, Identify, Impression, Order

__all__ = ["DEFAULT_WINDOW_DAYS", "ATTRIBUTION_EVENT_TYPES", "VariantTotals", "Attribution",
           "Attributor", "AttributorState", "Exposures", "RestingPart", "attribute", "IMPRESSION", "CLICK", "ORDER",
           "IDENTIFY", "EXPOSURES", "feed_kind"]

DEFAULT_WINDOW_DAYS = 7.0
#: The event types attribution reads; pass them to ``store.iter_events(types=...)``.
ATTRIBUTION_EVENT_TYPES = ("impression", "click", "order", "identify")
#: The kinds of the rows ``Attributor.feed_rows`` reads (``-1``: another event, counted only).
ORDER: Final = 0
IDENTIFY: Final = 1
IMPRESSION: Final = 2
CLICK: Final = 3
EXPOSURES: Final = 4
_KINDS = {Impression: IMPRESSION, Click: CLICK, Order: ORDER, Identify: IDENTIFY}


def feed_kind(event: Event) -> int:
    """The row kind of ``event`` (``-1`` for the events attribution does not read)."""
    return _KINDS.get(type(event), -1)
#: Skus remembered per visitor run (the most recently shown win).
MAX_SKUS = 200
_DAY = 86_400.0
#: Expired people are swept every this many events (only the oldest are looked at).
_SWEEP_EVERY = 1024

#: The ``VariantTotals`` sums beyond the counts, in the order a saved state lists them.
_MOMENTS = ("revenue_squares", "order_squares", "revenue_orders", "pre_spend", "pre_spend_squares", "pre_orders",
            "pre_order_squares", "spend_revenue", "orders_converted")


@dataclass(slots=True)
class VariantTotals:
    """Running totals of one (campaign, variant). ``daily`` maps a UTC day (days since epoch)
    to ``[visitor runs that started that day, of those converted]`` (a cohort by first exposure)."""

    exposures: int = 0
    clicks: int = 0
    visitors: int = 0
    converted: int = 0
    orders: int = 0
    click_orders: int = 0
    revenue: float = 0.0
    click_revenue: float = 0.0
    recommended_revenue: float = 0.0
    daily: dict[int, list[int]] = field(default_factory=dict)
    #: Sums over visitor runs of revenue^2, orders^2 and revenue x orders.
    revenue_squares: float = 0.0
    order_squares: float = 0.0
    revenue_orders: float = 0.0
    #: CUPED: sums over runs of the pre-exposure spend and orders, their squares, and their
    #: products with the run's revenue and with its conversion (0 or 1).
    pre_spend: float = 0.0
    pre_spend_squares: float = 0.0
    pre_orders: float = 0.0
    pre_order_squares: float = 0.0
    spend_revenue: float = 0.0
    orders_converted: float = 0.0


@dataclass(slots=True)
class Attribution:
    """The result of one pass: totals per ``(campaign, variant)`` and what was read."""

    window_days: float
    totals: dict[tuple[str, str], VariantTotals]
    events: int = 0
    orders: int = 0
    revenue: float = 0.0
    attributed_orders: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    #: The most people held in memory at once (bounded by ``window`` activity and the cap).
    peak_people: int = 0
    #: People dropped by the ``max_people`` cap while still inside the window (0 normally).
    evicted_people: int = 0
    #: Per campaign: people exposed to more than one of its variants (after identity merges).
    multi_arm: dict[str, int] = field(default_factory=dict)


class _Run:
    """One person's current run of exposures to one variant (``totals``: that variant's);
    ``skus``: each sku shown, with when it was last shown (at least the ``MAX_SKUS`` most recent)."""

    __slots__ = ("totals", "first_day", "last_seen", "last_click", "skus", "converted", "revenue", "orders",
                 "pre_spend", "pre_orders")

    def __init__(self, totals: VariantTotals, first_day: int, at: float, pre_spend: float = 0.0,
                 pre_orders: int = 0) -> None:
        self.totals = totals
        self.first_day = first_day
        self.last_seen = at
        self.last_click = -1e300
        self.skus: dict[str, float] = {}
        self.converted = False
        self.revenue = 0.0
        self.orders = 0
        self.pre_spend, self.pre_orders = pre_spend, pre_orders


class _Person:
    __slots__ = ("runs", "last_seen", "multi_arm")

    def __init__(self, at: float) -> None:
        self.runs: dict[tuple[str, str], _Run] = {}
        self.last_seen = at
        self.multi_arm: set[str] | None = None  # campaigns this person was counted in (several arms)


class RestingPart:
    """People of a resumed state not met again, as a saved part held them (``checkpoint.py``):
    ``keys`` in activity order, ``people`` their encodings (one ``msgspec.Raw`` list, decoded
    when one of them is first needed), ``tag`` what the saver knows the part by. ``gone``: the
    positions that left since (met again, swept, evicted); ``first``: the first one not swept.
    Resuming builds no entry per person beyond the key index: a refresh meets a few percent
    of them, and the part of one it does not meet is saved again as it was."""

    __slots__ = ("keys", "raw", "_people", "tag", "gone", "first", "_positions")

    def __init__(self, keys: list[str], people: msgspec.Raw | list[bytes], tag: Any = None) -> None:
        self.keys, self.tag = keys, tag
        self.raw, self._people = (people, None) if isinstance(people, msgspec.Raw) else (None, people)
        self.gone: set[int] = set()
        self.first = 0
        self._positions: dict[str, int] | None = None

    @property
    def people(self) -> list[bytes]:
        if self._people is None:
            self._people = _decode_people(self.raw)  # type: ignore[arg-type]
            if len(self._people) != len(self.keys):
                raise ValueError("a resting part's keys and people differ in length")
        return self._people

    @property
    def untouched(self) -> bool:
        return not self.gone and not self.first

    def position(self, key: str) -> int:
        if self._positions is None:
            self._positions = {k: i for i, k in enumerate(self.keys)}
        return self._positions[key]

    def alive(self) -> tuple[list[str], list[bytes]]:
        """The keys and encodings of the people still resting here, in order."""
        keys, people, gone = self.keys, self.people, self.gone
        wanted = [i for i in range(self.first, len(keys)) if i not in gone]
        return [keys[i] for i in wanted], [people[i] for i in wanted]


_decode_people = msgspec.msgpack.Decoder(list[bytes]).decode


class Exposures(msgspec.Struct, gc=False):
    """Consecutive impressions and clicks of one visitor on one variant, folded ahead by a
    columnar reader (the row of kind ``EXPOSURES``): ``count`` impressions and ``clicks`` clicks
    (the last at ``last_click``) from the row's ``at`` to ``last_at``, none more than the window
    after the one before, with no other event of the same person between them: the visitor's,
    or when events link the visitor to a customer (to one only, whose devices link to no other
    customer), the customer's and all its devices' (so nothing else touches that person meanwhile);
    ``shown``: each sku shown or clicked, with when it last was. Fed at the first one's place
    in the log, it leaves the pass as those events one by one would.

    A Struct (made in C, untracked by the collector) because a reader makes one per row, a
    million for a first report over 10M events, from column lists (``map(Exposures, ...)``).
    """

    visitor_id: str
    campaign: str
    variant: str
    count: int
    last_at: float
    shown: dict[str, float]
    clicks: int = 0
    last_click: float | None = None
    customer_id: None = None  # never a customer's: those events are not folded


# -- saved state (``Attributor.state`` / ``Attributor.from_state``; see ``checkpoint.py``) --------

class _RunState(msgspec.Struct, array_like=True):
    campaign: str
    variant: str
    first_day: int
    last_seen: float
    last_click: float
    converted: bool
    skus: dict[str, float]
    revenue: float = 0.0
    orders: int = 0
    pre_spend: float = 0.0
    pre_orders: int = 0


class _PersonState(msgspec.Struct, array_like=True):
    last_seen: float
    runs: list[_RunState]
    multi_arm: list[str] = []


_encode_person = msgspec.msgpack.Encoder().encode
_decode_person = msgspec.msgpack.Decoder(_PersonState).decode


class _TotalsState(msgspec.Struct, array_like=True):
    campaign: str
    variant: str
    exposures: int
    clicks: int
    visitors: int
    converted: int
    orders: int
    click_orders: int
    revenue: float
    click_revenue: float
    recommended_revenue: float
    daily: list[tuple[int, int, int]]
    moments: list[float] = []  # the VariantTotals sums after ``daily``, in field order


class AttributorState(msgspec.Struct, array_like=True):
    """Everything an ``Attributor`` holds, as plain data (msgpack-encodable), so a pass can be
    continued later from where it stopped: the totals, the people active within the window
    (in activity order) and the visitor -> customer links (oldest first).

    Each person is encoded on its own (``people[i]`` is ``people_keys[i]``'s msgpack): a
    resumed pass decodes only the people it meets again, and saving it again re-encodes only
    those, so resuming and saving cost what changed, not the size of the whole state.
    """

    window_days: float
    campaign: str | None
    events: int
    orders: int
    revenue: float
    attributed_orders: int
    first_at: datetime | None
    last_at: datetime | None
    peak_people: int
    evicted_people: int
    totals: list[_TotalsState]
    people_keys: list[str]
    people: list[bytes]
    links: list[tuple[str, str]]
    #: Spend and orders so far per buyer key (oldest first): the pre-exposure values of CUPED.
    history: list[tuple[str, float, int]] = []
    multi_arm: dict[str, int] = {}

    def entries_of(self, keys: Collection[str]) -> dict[str, Any]:
        """What this state holds about the person with these profile keys (``c:``/``v:``), as
        plain data for a privacy export: ``people`` (key -> last seen and runs: campaign,
        variant, first day, last seen, last click, converted, skus shown) and ``links``
        (visitor id -> customer key) and ``history`` (key -> spend and orders seen)."""
        wanted = set(keys)
        people = {}
        for key, raw in zip(self.people_keys, self.people):
            if key in wanted:
                person = _decode_person(raw)
                people[key] = {"last_seen": person.last_seen,
                               "runs": [msgspec.structs.asdict(run) for run in person.runs]}
        visitors = {key[2:] for key in wanted if key.startswith("v:")}
        links = {v: c for v, c in self.links if v in visitors or c in wanted}
        history = {key: {"spend": spend, "orders": orders} for key, spend, orders in self.history if key in wanted}
        return {"people": people, "links": links, "history": history}


def _order_lines(order: Order) -> tuple[float, list[tuple[str, float]]]:
    lines = [(item.sku, item.quantity * (item.price - item.discount)) for item in order.items]
    total = order.total if order.total is not None else sum(value for _, value in lines)
    return total, lines


class Attributor:
    """Feed events oldest first with ``feed``/``feed_all``; read the totals with ``result()``.

    ``campaign``: only this campaign's exposures are tracked. ``max_people``/``max_links``/
    ``max_history``: the memory caps (about 200 bytes a person with one run; a link is two short
    strings; a buyer's spend and orders about 100 bytes).
    """

    def __init__(self, *, window_days: float = DEFAULT_WINDOW_DAYS, campaign: str | None = None,
                 max_people: int = 2_000_000, max_links: int = 2_000_000, max_history: int = 2_000_000) -> None:
        if window_days <= 0:
            raise ValueError(f"window_days must be positive, got {window_days!r}")
        self.window = window_days * _DAY
        self.campaign = campaign
        self.max_people, self.max_links, self.max_history = max_people, max_links, max_history
        # Least recently active first. A value is ``bytes`` while a resumed person has not been
        # met again (``_thaw`` decodes it on first use; see ``AttributorState``).
        self._people: OrderedDict[str, _Person | bytes] = OrderedDict()
        # People of a resumed state's parts not met again: all older than ``_people``'s.
        self._resting: list[RestingPart] = []
        self._resting_at: dict[str, int] = {}  # key -> its part in ``_resting``
        self._resting_head = 0  # the first part with anyone left
        self._links: OrderedDict[str, str] = OrderedDict()      # visitor id -> customer key
        self._history: OrderedDict[str, list[float]] = OrderedDict()  # key -> [spend, orders] so far
        self._result = Attribution(window_days=window_days, totals={})

    # -- people --------------------------------------------------------------------------------
    def _key(self, event: Event, at: float) -> str:
        """The person an event belongs to; an event with both ids links them first."""
        visitor, customer = event.visitor_id, event.customer_id
        if customer is not None:
            key = "c:" + customer
            if visitor is not None and self._links.get(visitor) != key:
                self._link(visitor, key, at)
            return key
        return self._links.get(visitor) or "v:" + visitor  # type: ignore[operator]

    def _link(self, visitor: str, key: str, at: float) -> None:
        self._links[visitor] = key
        if len(self._links) > self.max_links:
            self._links.popitem(last=False)  # the oldest link goes first
        spent = self._history.pop("v:" + visitor, None)
        if spent is not None:  # what the visitor bought anonymously is the customer's history too
            self._add_history(key, spent[0], spent[1])
        anonymous = self._people.pop("v:" + visitor, None)
        if anonymous is None and self._resting_at:
            anonymous = self._wake("v:" + visitor)
        if type(anonymous) is bytes:
            anonymous = self._thaw(None, anonymous)
        if anonymous is not None and at - anonymous.last_seen <= self.window:  # type: ignore[union-attr]
            self._merge(anonymous, self._person(key, at, create=True), at)  # type: ignore[arg-type]

    def _person(self, key: str, at: float, *, create: bool) -> _Person | None:
        """The person ``key`` is, seen at ``at``; one silent for longer than the window is
        dropped (someone new: what the sweep does, whenever it runs)."""
        people = self._people
        person = people.get(key)
        if person is None and key in self._resting_at:
            person = people[key] = self._thaw(None, self._wake(key))  # type: ignore[arg-type]  # at the end: met now
        if type(person) is bytes:
            person = self._thaw(key, person)
        if person is not None and at - person.last_seen > self.window:
            del people[key]
            person = None
        if person is not None:
            people.move_to_end(key)
            person.last_seen = at
        elif create:
            person = people[key] = _Person(at)
            held = len(people) + len(self._resting_at)
            if held > self.max_people:
                self._evict_oldest()
                self._result.evicted_people += 1
                held -= 1
            if held > self._result.peak_people:
                self._result.peak_people = held
        return person

    def _wake(self, key: str) -> bytes | None:
        """The encoding of ``key``'s person if it rests in a resumed part, taken out of it."""
        number = self._resting_at.pop(key, None)
        if number is None:
            return None
        part = self._resting[number]
        position = part.position(key)
        part.gone.add(position)
        return part.people[position]

    def _resting_oldest(self) -> tuple[RestingPart, int] | None:
        """The part and position of the oldest person still resting, or None."""
        if not self._resting_at:
            return None
        parts = self._resting
        while True:
            part = parts[self._resting_head]
            while part.first < len(part.keys) and part.first in part.gone:
                part.first += 1
            if part.first < len(part.keys):
                return part, part.first
            self._resting_head += 1

    def _evict_oldest(self) -> None:
        oldest = self._resting_oldest()
        if oldest is None:
            self._people.popitem(last=False)
            return
        part, position = oldest
        del self._resting_at[part.keys[position]]
        part.first += 1

    def _sweep(self, at: float) -> None:
        """Forget people whose last activity is older than the window (oldest first: O(expired))."""
        cutoff, people = at - self.window, self._people
        while (oldest := self._resting_oldest()) is not None:  # older than anyone in ``people``
            part, position = oldest
            if _decode_person(part.people[position]).last_seen >= cutoff:
                return
            del self._resting_at[part.keys[position]]
            part.first += 1
        while people:
            key = next(iter(people))
            person = people[key]
            if (person.last_seen if type(person) is not bytes else _decode_person(person).last_seen) >= cutoff:
                return
            del people[key]

    def _merge(self, source: _Person, into: _Person, at: float) -> None:
        """The same human was two people (anonymous visitor, customer): merge, count once."""
        cutoff = at - self.window
        for variant_key, run in source.runs.items():
            if run.last_seen < cutoff:
                continue
            kept = into.runs.get(variant_key)
            if kept is None or kept.last_seen < cutoff:
                into.runs[variant_key] = run
                continue
            early, late = (kept, run) if kept.first_day <= run.first_day else (run, kept)
            totals = early.totals
            totals.visitors -= 1
            _merge_moments(totals, early, late)
            totals.daily[late.first_day][0] -= 1
            if late.converted:
                totals.converted -= 1
                totals.daily[late.first_day][1] -= 1
                if not early.converted:
                    early.converted = True
                    totals.converted += 1
                    totals.daily[early.first_day][1] += 1
            early.last_seen = max(early.last_seen, late.last_seen)
            early.last_click = max(early.last_click, late.last_click)
            skus = early.skus
            for sku, shown in late.skus.items():
                if shown > skus.get(sku, -1e300):
                    skus[sku] = shown
            if len(skus) > 2 * MAX_SKUS:
                _trim(skus)
            into.runs[variant_key] = early
        self._merge_multi_arm(source, into)

    def _merge_multi_arm(self, source: _Person, into: _Person) -> None:
        counts = self._result.multi_arm
        if source.multi_arm:
            for campaign in source.multi_arm & (into.multi_arm or set()):
                counts[campaign] -= 1  # one human was counted twice, as two people
            into.multi_arm = (into.multi_arm or set()) | source.multi_arm
        arms: dict[str, set[str]] = {}
        for campaign, variant in into.runs:
            if variant != "unknown":
                arms.setdefault(campaign, set()).add(variant)
        for campaign, variants in arms.items():
            if len(variants) > 1:
                self._count_multi_arm(into, campaign)

    def _count_multi_arm(self, person: _Person, campaign: str) -> None:
        if person.multi_arm is None:
            person.multi_arm = set()
        if campaign not in person.multi_arm:
            person.multi_arm.add(campaign)
            self._result.multi_arm[campaign] = self._result.multi_arm.get(campaign, 0) + 1

    def _add_history(self, key: str, spend: float, orders: float) -> None:
        history = self._history
        entry = history.get(key)
        if entry is None:
            history[key] = [spend, orders]
            if len(history) > self.max_history:
                history.popitem(last=False)  # the least recently active buyer goes first
        else:
            entry[0] += spend
            entry[1] += orders
            history.move_to_end(key)

    # -- events --------------------------------------------------------------------------------
    def feed(self, event: Event) -> None:
        """Take the next event (time order is the caller's promise; the store gives it)."""
        self.feed_all((event,))

    def feed_all(self, events: Iterable[Event], until: datetime | None = None) -> None:
        """Take a time-ordered stream of events; stop at the first at or after ``until``."""
        kinds = _KINDS.get
        self.feed_rows(((event.at.timestamp(), kinds(type(event), -1), event)  # type: ignore[union-attr]
                        for event in events), until.timestamp() if until is not None else None)

    def feed_rows(self, rows: Iterable[tuple[float, int, Any]], until: float | None = None) -> None:
        """Take time-ordered rows ``(at, kind, event)`` (see the module docstring); stop at the
        first row at or after ``until`` (seconds since the epoch).

        This is the hot loop of a report (millions of events): the common cases are inlined
        and attributes bound to locals, which is why it reads flatter than the rest.
        """
        result, people = self._result, self._people
        person_of, touch, linked = people.get, people.move_to_end, self._links.get
        campaign_filter, window = self.campaign, self.window
        limit = until if until is not None else float("inf")
        count, first, last, folded_last = result.events, None, None, -1e300
        sweep_at = count - count % _SWEEP_EVERY + _SWEEP_EVERY
        for at, kind, event in rows:
            if at >= limit:
                break
            if first is None:
                first = at
            last = at
            count += 1
            if count >= sweep_at:
                sweep_at += _SWEEP_EVERY
                self._sweep(at)
            if kind >= IMPRESSION:  # IMPRESSION, CLICK, EXPOSURES
                if kind == EXPOSURES:
                    count += event.count + event.clicks - 1
                if campaign_filter is not None and event.campaign != campaign_filter:
                    continue
                if event.customer_id is None:
                    key = linked(event.visitor_id) or "v:" + event.visitor_id
                else:
                    key = self._key(event, at)
                person = person_of(key)
                if person is None or type(person) is bytes or at - person.last_seen > window:
                    person = self._person(key, at, create=True)  # new, resting, resumed or silent too long
                else:
                    touch(key)
                    person.last_seen = at
                variant = event.variant
                run = person.runs.get((event.campaign, variant)) if variant is not None else None
                if run is None or at - run.last_seen > window:
                    run = self._start_run(key, person, event, at)
                if kind == EXPOSURES:  # impressions and clicks up to last_at
                    run.totals.exposures += event.count
                    if event.clicks:
                        run.totals.clicks += event.clicks
                        run.last_click = event.last_click
                    run.last_seen = person.last_seen = event.last_at
                    if event.last_at > folded_last:
                        folded_last = event.last_at
                    skus = run.skus
                    if not skus:  # a new run (the common case): what the fold showed, as is
                        skus.update(event.shown)
                    else:
                        for sku, shown_at in event.shown.items():
                            if skus.get(sku, -1e300) < shown_at:
                                skus[sku] = shown_at
                    if len(skus) > 2 * MAX_SKUS:
                        _trim(skus)
                    continue
                run.last_seen = at
                if kind == IMPRESSION:
                    run.totals.exposures += 1
                else:
                    run.totals.clicks += 1
                    run.last_click = at
                shown = event.skus
                if shown:
                    skus = run.skus
                    skus.update(dict.fromkeys(shown, at))
                    if len(skus) > 2 * MAX_SKUS:
                        _trim(skus)
            elif kind == ORDER:
                self._order(event, at)
            elif kind == IDENTIFY:
                self._key(event, at)
        if first is not None:
            result.events = count
            if result.first_at is None:
                result.first_at = datetime.fromtimestamp(first, timezone.utc)
            result.last_at = datetime.fromtimestamp(max(last, folded_last), timezone.utc)  # type: ignore[type-var]

    def _start_run(self, key: str, person: _Person, event: Impression | Click, at: float) -> _Run:
        """A new (or the first) run of exposures: one more visitor for the variant, with what
        the person had spent and ordered before it (CUPED's covariates)."""
        campaign, variant = event.campaign, event.variant
        if variant is None:  # a click whose token lost the variant: the live run it belongs to
            for (c, v), live in person.runs.items():
                if c == campaign and at - live.last_seen <= self.window:
                    return live
            variant = "unknown"
        variant_key = (campaign, variant)
        totals = self._result.totals.get(variant_key)
        if totals is None:
            totals = self._result.totals[variant_key] = VariantTotals()
        day = int(at // _DAY)
        spend, orders = self._history.get(key) or (0.0, 0)
        run = person.runs[variant_key] = _Run(totals, day, at, spend, int(orders))
        totals.visitors += 1
        totals.pre_spend += spend
        totals.pre_spend_squares += spend * spend
        totals.pre_orders += orders
        totals.pre_order_squares += orders * orders
        if len(person.runs) > 1 and variant != "unknown" and not (person.multi_arm and campaign in person.multi_arm):
            for c, v in person.runs:
                if c == campaign and v != variant and v != "unknown":
                    self._count_multi_arm(person, campaign)
                    break
        cohort = totals.daily.get(day)
        if cohort is None:
            totals.daily[day] = [1, 0]
        else:
            cohort[0] += 1
        return run

    def _order(self, order: Order, at: float) -> None:
        result = self._result
        total, lines = _order_lines(order)
        result.orders += 1
        result.revenue += total
        key = self._key(order, at)
        person = self._person(key, at, create=False)
        if person is None:
            self._add_history(key, total, 1)
            return
        cutoff, attributed = at - self.window, False
        for run in person.runs.values():
            if run.last_seen < cutoff:
                continue
            attributed = True
            totals = run.totals
            totals.orders += 1
            totals.revenue += total
            revenue, orders = run.revenue, run.orders
            # The run's revenue and orders grow by (total, 1): their squares and product by the
            # difference, so the sums stay per run, not per order.
            totals.revenue_squares += (2.0 * revenue + total) * total
            totals.order_squares += 2 * orders + 1
            totals.revenue_orders += revenue + total * (orders + 1)
            totals.spend_revenue += run.pre_spend * total
            run.revenue, run.orders = revenue + total, orders + 1
            if not run.converted:
                run.converted = True
                totals.converted += 1
                totals.orders_converted += run.pre_orders
                totals.daily[run.first_day][1] += 1
            if run.last_click >= cutoff:
                totals.click_orders += 1
                totals.click_revenue += total
            if run.skus:
                skus = run.skus
                if len(skus) > MAX_SKUS:
                    _trim(skus)  # only the most recent count (see ``_trim``)
                totals.recommended_revenue += sum(
                    value for sku, value in lines if skus.get(sku, -1e300) >= cutoff)
        result.attributed_orders += attributed
        # After attributing: this order is not its own run's pre-exposure value.
        entry = self._history.get(key)
        if entry is None:
            self._add_history(key, total, 1)
        else:  # the common case, inline (once per order)
            entry[0] += total
            entry[1] += 1
            self._history.move_to_end(key)

    def result(self) -> Attribution:
        return self._result

    # -- saving and resuming -------------------------------------------------------------------
    def state(self, *, people: bool = True) -> AttributorState:
        """A snapshot of this attributor: feed more events, and the snapshot stays as it was.
        ``people=False``: without the people (``people_segments`` gives them in parts)."""
        r = self._result
        totals = [_TotalsState(c, v, t.exposures, t.clicks, t.visitors, t.converted, t.orders, t.click_orders,
                               t.revenue, t.click_revenue, t.recommended_revenue,
                               [(day, n, k) for day, (n, k) in t.daily.items()],
                               [getattr(t, name) for name in _MOMENTS])
                  for (c, v), t in r.totals.items()]
        keys: list[str] = []
        encoded: list[bytes] = []
        for part in self.people_segments() if people else ():
            more_keys, more_people = part.alive()
            keys += more_keys
            encoded += more_people
        return AttributorState(
            window_days=r.window_days, campaign=self.campaign, events=r.events, orders=r.orders,
            revenue=r.revenue, attributed_orders=r.attributed_orders, first_at=r.first_at,
            last_at=r.last_at, peak_people=r.peak_people, evicted_people=r.evicted_people,
            totals=totals, people_keys=keys, people=encoded, links=list(self._links.items()),
            history=[(key, spend, int(orders)) for key, (spend, orders) in self._history.items()],
            multi_arm=dict(r.multi_arm))

    def people_segments(self) -> list[RestingPart]:
        """Everyone held, in activity order, as parts: each resumed part no one left as it was
        loaded (with its tag), what is left of the others and then everyone met since as
        tagless parts (encoded now). What ``state()`` lists, without listing it."""
        segments = []
        for part in self._resting[self._resting_head:]:
            if part.untouched:
                segments.append(part)
            elif part.first < len(part.keys):
                keys, people = part.alive()
                if keys:
                    segments.append(RestingPart(keys, people))
        segments.append(RestingPart(list(self._people), [
            person if type(person) is bytes else _encode_person(_freeze(person)) for person in self._people.values()]))
        return segments

    @classmethod
    def from_state(cls, state: AttributorState, *, resting: Sequence[RestingPart] = (), max_people: int = 2_000_000,
                   max_links: int = 2_000_000, max_history: int = 2_000_000) -> Attributor:
        """An attributor that continues the pass ``state`` was taken from; ``resting``: its
        people in parts (older than ``state.people``, which then lists the rest, if any)."""
        if len(state.people_keys) != len(state.people):
            raise ValueError("people_keys and people differ in length")
        self = cls(window_days=state.window_days, campaign=state.campaign,
                   max_people=max_people, max_links=max_links, max_history=max_history)
        r = self._result
        r.events, r.orders, r.revenue = state.events, state.orders, state.revenue
        r.attributed_orders, r.first_at, r.last_at = state.attributed_orders, state.first_at, state.last_at
        r.peak_people, r.evicted_people = state.peak_people, state.evicted_people
        for t in state.totals:
            r.totals[(t.campaign, t.variant)] = VariantTotals(
                t.exposures, t.clicks, t.visitors, t.converted, t.orders, t.click_orders, t.revenue,
                t.click_revenue, t.recommended_revenue, {day: [n, k] for day, n, k in t.daily},
                *t.moments)
        self._history.update((key, [spend, orders]) for key, spend, orders in state.history)
        r.multi_arm = dict(state.multi_arm)
        self._people.update(zip(state.people_keys, state.people))  # decoded when met (``_thaw``)
        self._resting = [part for part in resting if part.keys]
        self._resting_at = dict(zip(chain.from_iterable(part.keys for part in self._resting),  # C-level maps
                                    chain.from_iterable(repeat(number, len(part.keys))
                                                        for number, part in enumerate(self._resting))))
        if len(self._resting_at) != sum(len(part.keys) for part in self._resting) or (
                self._people and not self._people.keys().isdisjoint(self._resting_at)):
            raise ValueError("a person is in the saved state twice")
        self._links.update(state.links)
        return self

    def _thaw(self, key: str | None, data: bytes) -> _Person:
        """The person a resumed state kept encoded, decoded (and kept under ``key``, if given)."""
        saved = _decode_person(data)
        person = _Person(saved.last_seen)
        person.multi_arm = set(saved.multi_arm) or None
        totals = self._result.totals
        for s in saved.runs:
            variant_key = (s.campaign, s.variant)
            run = person.runs[variant_key] = _Run(totals[variant_key], s.first_day, s.last_seen,
                                                  s.pre_spend, s.pre_orders)
            run.last_click, run.converted, run.skus = s.last_click, s.converted, s.skus
            run.revenue, run.orders = s.revenue, s.orders
        if key is not None:
            self._people[key] = person  # replaces the value in place: the order is kept
        return person


def _freeze(person: _Person) -> tuple[Any, ...]:
    """``person`` as its ``_PersonState``, in tuples: both structs are array-like, so the tuples
    encode to the very same bytes, without making a struct per run (a first report over 10M
    events saves 800,000 people)."""
    return (person.last_seen, [
        (c, v, run.first_day, run.last_seen, run.last_click, run.converted, run.skus, run.revenue, run.orders,
         run.pre_spend, run.pre_orders)
        for (c, v), run in person.runs.items()], sorted(person.multi_arm) if person.multi_arm else [])


def _merge_moments(totals: VariantTotals, early: _Run, late: _Run) -> None:
    """Two runs of one variant become ``early`` (one visitor): its covariates stay, the late
    run's leave the sums, and the squares and products are of the summed revenue and orders."""
    totals.pre_spend -= late.pre_spend
    totals.pre_spend_squares -= late.pre_spend * late.pre_spend
    totals.pre_orders -= late.pre_orders
    totals.pre_order_squares -= late.pre_orders * late.pre_orders
    totals.revenue_squares += 2.0 * early.revenue * late.revenue
    totals.order_squares += 2 * early.orders * late.orders
    totals.revenue_orders += early.revenue * late.orders + late.revenue * early.orders
    totals.spend_revenue += (early.pre_spend - late.pre_spend) * late.revenue
    converted = early.converted or late.converted
    totals.orders_converted += (early.pre_orders * converted - early.pre_orders * early.converted
                                - late.pre_orders * late.converted)
    early.revenue += late.revenue
    early.orders += late.orders


def _trim(skus: dict[str, float]) -> None:
    """Keep the ``MAX_SKUS`` most recently shown skus (ties by name). Exposures trim when there
    are twice as many (amortized), an order before it counts any: what is kept always holds
    the ``MAX_SKUS`` most recent of all the run showed, so the figures do not depend on when
    a trim ran (a columnar reader's folded impressions trim at other moments)."""
    if len(skus) > MAX_SKUS:
        recent = sorted(skus.items(), key=lambda item: (item[1], item[0]))[-MAX_SKUS:]
        skus.clear()
        skus.update(recent)


def attribute(events: Iterable[Event], *, window_days: float = DEFAULT_WINDOW_DAYS,
              campaign: str | None = None, until: datetime | None = None) -> Attribution:
    """Attribute a time-ordered stream of events (events at or after ``until`` end it).

    >>> from segmint.engine.events import Impression, Order, OrderItem
    >>> from datetime import datetime, timedelta, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> result = attribute([
    ...     Impression(campaign="c", variant="B", skus=["s1"], visitor_id="v", at=t),
    ...     Order(order_id="o", visitor_id="v", at=t + timedelta(days=1),
    ...           items=[OrderItem(sku="s1", price=10.0), OrderItem(sku="s2", price=5.0)])])
    >>> totals = result.totals[("c", "B")]
    >>> totals.converted, totals.revenue, totals.recommended_revenue
    (1, 15.0, 10.0)
    """
    attributor = Attributor(window_days=window_days, campaign=campaign)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=timezone.utc)
    attributor.feed_all(events, until)
    return attributor.result()
