"""A sample third-party plugin: a strategy, a filter operator, a field and an enrichment.

Tests load it from a config (``plugins = ["segmint_fixture_sample"]``) with this folder on
``sys.path``, as a shop would load its own plugin module.
"""

from __future__ import annotations

from segmint.engine import hookimpl
from segmint.engine.fields import FieldDef, FieldType
from segmint.engine.strategy import StrategyParams


class CheapestParams(StrategyParams, kw_only=True, frozen=True, forbid_unknown_fields=True):
    under: float | None = None


class Cheapest:
    """The cheapest products first."""

    name = "cheapest"
    Params = CheapestParams

    def recommend(self, ctx, params):
        products = sorted(ctx.catalog, key=lambda p: (p.price, p.sku))
        return [p for p in products if params.under is None or p.price < params.under]


def risk_band(operand, path):
    """``{"$risk_band": [low, high]}``: a score within the band, low <= value <= high."""
    if not (isinstance(operand, list) and len(operand) == 2 and all(isinstance(x, (int, float)) for x in operand)):
        raise ValueError("$risk_band needs [low, high]")
    low, high = operand
    return lambda value: isinstance(value, (int, float)) and low <= value <= high


@hookimpl
def segmint_register_strategies():
    return [Cheapest()]


@hookimpl
def segmint_filter_operators():
    return {"$risk_band": risk_band}


@hookimpl
def segmint_field_catalog():
    return [FieldDef("extra.churn_score", FieldType.NUMBER, "Churn risk 0-1 from the shop's model.")]


@hookimpl
def segmint_enrich_document(profile, document, now):
    # A stand-in for a predictive model: more days since the last order, more churn risk.
    days = document.get("days_since_last_purchase")
    document.setdefault("extra", {})["churn_score"] = min(1.0, days / 100) if days is not None else 0.0
