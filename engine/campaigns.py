"""Compiled campaigns: a config campaign with everything resolved for the request path, and
the variant (arm) each visitor gets.

Compiling (in ``config/compile.py``) happens once per config load: filters are compiled,
page patterns turned into regexes, strategy params decoded into their ``Params`` structs and
the variants made explicit. ``decide`` then only reads these immutable objects.

Order: a higher ``priority`` is asked first; equal priorities keep the order of the file.

Variant assignment is deterministic: the same visitor always lands in the same arm. A
visitor's bucket is a hash of ``"<seed>:<visitor key>"`` into ``[0, BUCKETS)``; the arms own
consecutive ranges of buckets in proportion to their weights. Nothing is stored, so the
assignment is sticky across processes and restarts, and changing a campaign's ``seed``
reshuffles everyone. Weights may be changed live: only visitors near a boundary move.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .config.schema import Campaign, Coupon, Schedule, Variant

if TYPE_CHECKING:
    from .profile import Profile

__all__ = ["CompiledVariant", "CompiledCampaign", "compile_pages", "default_variants", "sort_campaigns",
           "BUCKETS", "DEFAULT_VARIANT", "bucket", "assign_variant", "WeightedVariant"]

BUCKETS = 10_000
#: The one implicit arm of a campaign that declares no variants.
DEFAULT_VARIANT = "default"


class WeightedVariant(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> float: ...


V = TypeVar("V", bound=WeightedVariant)


def bucket(seed: str, visitor_key: str) -> int:
    """The visitor's bucket in ``[0, BUCKETS)`` for this seed.

    blake2b rather than ``hash()``: stable across processes (no hash randomization) and
    uniform enough that 10,000 buckets split to the weights.
    """
    digest = hashlib.blake2b(f"{seed}:{visitor_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def assign_variant(seed: str, visitor_key: str, variants: Sequence[V]) -> V:
    """The variant of ``visitor_key``: arm ``i`` owns ``weight_i / total`` of the buckets.

    >>> from collections import namedtuple
    >>> Arm = namedtuple("Arm", "name weight")
    >>> arms = [Arm("A", 50), Arm("B", 50)]
    >>> assign_variant("winback", "visitor-1", arms) == assign_variant("winback", "visitor-1", arms)
    True
    """
    if not variants:
        raise ValueError("assign_variant needs at least one variant")
    if len(variants) == 1 and variants[0].weight > 0:  # one arm (most campaigns): no hashing
        return variants[0]
    total = sum(v.weight for v in variants)
    if total <= 0:
        raise ValueError("variant weights sum to 0")
    point = bucket(seed, visitor_key) * total  # compare b / BUCKETS < cumulative / total
    cumulative = 0.0
    for variant in variants:
        cumulative += variant.weight
        if point < cumulative * BUCKETS:
            return variant
    # Float rounding at the very top: the last arm that has any weight.
    return next(v for v in reversed(variants) if v.weight > 0)


@dataclass(frozen=True, slots=True)
class CompiledVariant:
    """One arm with the campaign's settings filled in where the variant left them unset."""

    name: str
    weight: float
    control: bool
    strategy: str
    #: The strategy's decoded ``Params`` struct (or a mapping when it could not be checked).
    params: Any
    title: str | None
    coupon: Coupon | None


@dataclass(frozen=True, slots=True)
class CompiledCampaign:
    id: str
    #: Position in the file: the tie-break between equal priorities.
    index: int
    priority: int
    slots: frozenset[str]
    #: Compiled ``pages`` patterns; empty means every page.
    pages: tuple[re.Pattern[str], ...]
    #: The named segment, or None (inline ``filter`` or everyone).
    segment: str | None
    #: The compiled inline filter, if the campaign has one.
    filter: Any
    schedule: Schedule | None
    #: ``(impressions, period in seconds)`` or None.
    frequency_cap: tuple[int, float] | None
    seed: str
    min_items: int
    variants: tuple[CompiledVariant, ...]
    source: Campaign

    @property
    def sort_key(self) -> tuple[int, int]:
        return (-self.priority, self.index)

    def page_matches(self, path: str) -> bool:
        return not self.pages or any(p.match(path) for p in self.pages)

    def targets(self, slot: str, path: str) -> bool:
        return slot in self.slots and self.page_matches(path)

    def is_live(self, now: datetime) -> bool:
        return self.schedule is None or self.schedule.admits(now)

    def recent_impressions(self, profile: Profile, now: datetime) -> int:
        """Impressions of this campaign within the cap's period (0 without a cap)."""
        if self.frequency_cap is None:
            return 0
        stats = profile.campaigns.get(self.id)
        if stats is None:
            return 0
        since = now.timestamp() - self.frequency_cap[1]
        return sum(1 for at in stats.recent if at > since)

    def is_capped(self, profile: Profile, now: datetime) -> bool:
        return self.frequency_cap is not None and self.recent_impressions(profile, now) >= self.frequency_cap[0]


def compile_pages(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Glob patterns (``/products/*``, ``/cart``) as anchored regexes; ``*`` spans ``/`` too."""
    return tuple(re.compile(fnmatch.translate(p)) for p in patterns)


def default_variants(campaign: Campaign) -> Sequence[Any]:
    """The campaign's variants, or the one implicit ``default`` arm."""
    if campaign.variants:
        return campaign.variants
    return (Variant(name=DEFAULT_VARIANT, weight=1.0),)


def sort_campaigns(campaigns: Iterable[CompiledCampaign]) -> tuple[CompiledCampaign, ...]:
    return tuple(sorted(campaigns, key=lambda c: c.sort_key))
