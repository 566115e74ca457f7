"""Compiled campaigns: a config campaign with everything resolved for the request path.

Compiling (in ``config/compile.py``) happens once per config load: filters are compiled,
page patterns turned into regexes, strategy params decoded into their ``Params`` structs and
the variants made explicit. ``decide`` then only reads these immutable objects.

Order: a higher ``priority`` is asked first; equal priorities keep the order of the file.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .config.schema import Campaign, Coupon, Schedule, Variant
from .variants import DEFAULT_VARIANT

if TYPE_CHECKING:
    from .profile import Profile

__all__ = ["CompiledVariant", "CompiledCampaign", "compile_pages", "default_variants", "sort_campaigns"]


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
