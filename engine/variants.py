"""Deterministic variant assignment: the same visitor always lands in the same arm.

A visitor's bucket is a hash of ``"<seed>:<visitor key>"`` into ``[0, BUCKETS)``; the arms
own consecutive ranges of buckets in proportion to their weights. Nothing is stored, so the
assignment is sticky across processes and restarts, and changing a campaign's ``seed``
reshuffles everyone. Weights may be changed live: only visitors near a boundary move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["BUCKETS", "DEFAULT_VARIANT", "bucket", "assign_variant", "WeightedVariant"]

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
