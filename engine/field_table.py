"""The default field catalog: every field of the profile document, with type and meaning.

``docs/fields.md`` is generated from this table: ``python -m segmint.engine.field_table``
prints it (a test keeps the file in sync). Windows (``_7d``, ``_30d``, ``_90d``) count whole
UTC days, today included. A field marked *absent when ...* is missing from the document in
that case (so ``$exists: false`` matches and comparisons do not).
"""

from __future__ import annotations

from collections.abc import Iterable

from .fields import FieldCatalog, FieldDef, FieldType
from .predict import MIN_CUSTOMERS, MIN_REPEAT
from .rfm import RFM_SEGMENTS

__all__ = ["DEFAULT_FIELDS", "default_field_catalog", "fields_markdown"]

N, I, S, B, T, L, O = (FieldType.NUMBER, FieldType.INTEGER, FieldType.STRING, FieldType.BOOLEAN,
                       FieldType.DATETIME, FieldType.LIST, FieldType.OBJECT)


def _f(name: str, type_: FieldType, doc: str, alias_of: str | None = None,
       choices: tuple[str, ...] | None = None) -> FieldDef:
    return FieldDef(name, type_, doc, alias_of=alias_of, choices=choices)


DEFAULT_FIELDS: tuple[FieldDef, ...] = (
    # visitor
    _f("visitor.visits", I, "Visits (sessions: a page view after 30 minutes without activity starts one)."),
    _f("visitor.page_views", I, "Page views."),
    _f("visitor.product_views", I, "Product page views."),
    _f("visitor.is_new", B, "True during the first visit of someone who never ordered (visits <= 1, no order)."),
    _f("visitor.is_returning", B, "True from the second visit on, or once the visitor has ordered (visits > 1 or orders > 0)."),
    _f("visitor.is_customer", B, "True when the visitor is a known customer (logged in or identified)."),
    _f("visitor.visits_7d", I, "Visits started in the last 7 days."),
    _f("visitor.visits_30d", I, "Visits started in the last 30 days."),
    _f("visitor.visits_90d", I, "Visits started in the last 90 days."),
    _f("visitor.first_seen", T, "First activity of this visitor or customer (a view, cart, order or "
       "return; not segmint's impressions, clicks or identify links); absent when none."),
    _f("visitor.last_seen", T, "Latest activity of this visitor or customer; absent when none."),
    _f("days_since_last_visit", N, "Days (fractional) since the latest activity; absent when none."),
    # orders and spend
    _f("orders.count", I, "Orders placed."),
    _f("orders.items", I, "Items bought (sum of line quantities)."),
    _f("orders.count_7d", I, "Orders in the last 7 days."),
    _f("orders.count_30d", I, "Orders in the last 30 days."),
    _f("orders.count_90d", I, "Orders in the last 90 days."),
    _f("orders.first_at", T, "Time of the first order; absent without orders."),
    _f("orders.last_at", T, "Time of the latest order; absent without orders."),
    _f("orders.avg_days_between", N, "Average days between orders; absent with fewer than 2 orders."),
    _f("orders.avg_basket_size", N, "Average items per order; absent without orders."),
    _f("orders.avg_value", N, "Average order value (spend / orders); absent without orders."),
    _f("spend.total", N, "Total spend (order totals, after discounts)."),
    _f("spend.refunded", N, "Money refunded: the sum of the optional `amount` of return events (a "
       "return without one adds nothing)."),
    _f("spend.net", N, "Spend minus refunds (spend.total - spend.refunded)."),
    _f("spend.avg_order_value", N, "Average order value; absent without orders.", alias_of="orders.avg_value"),
    _f("days_since_last_purchase", N, "Days (fractional) since the latest order; absent without orders."),
    # returns and discounts
    _f("returns.count", I, "Return events."),
    _f("returns.items", I, "Items returned."),
    _f("returns.ratio", N, "Returned items / items bought, percent 0-100; absent without items bought."),
    _f("discount.orders", I, "Orders with a discount on any line or a coupon."),
    _f("discount.total", N, "Money saved through line discounts."),
    _f("discount.coupon_orders", I, "Orders with a coupon."),
    _f("discount.share", N, "Share of orders that were discounted, 0-1; absent without orders."),
    _f("discount.band", S, "Discount affinity band: high (share >= 0.5), mid (>= 0.2), low; absent "
       "without orders.", choices=("high", "mid", "low")),
    _f("affinity.discount", N, "Discount affinity, 0-1.", alias_of="discount.share"),
    # categories
    _f("category.items.*", I, "Items bought in a category (category.items.skincare)."),
    _f("category.spend.*", N, "Spend in a category."),
    _f("category.views.*", I, "Product views in a category."),
    _f("category.affinity.*", N, "Share of items bought that were in a category, 0-1."),
    _f("category.bought", L, "Categories bought from at least once."),
    _f("category.top", S, "Category with the most items bought; absent without orders."),
    # cart and recent products
    _f("cart.items", I, "Items in the cart."),
    _f("cart.value", N, "Value of the cart."),
    _f("cart.skus", L, "Skus in the cart."),
    _f("cart.idle_minutes", N, "Minutes since the cart last changed; absent when the cart is empty "
       "(an order empties it)."),
    _f("viewed.skus", L, "Recently viewed skus, most recent first (at most 30)."),
    _f("purchased.skus", L, "Recently bought skus, most recent first (at most 100)."),
    # campaign history
    _f("campaign.*.impressions", I, "Times a campaign's widget was shown (campaign.<id>.impressions)."),
    _f("campaign.*.clicks", I, "Clicks on a campaign's widget."),
    _f("campaign.*.last_at", T, "Latest impression of a campaign; absent when only clicks are known."),
    # RFM (customers with orders, once thresholds are computed)
    _f("rfm.recency", I, "Recency score 1-5 (5 = bought most recently)."),
    _f("rfm.frequency", I, "Frequency score 1-5 (5 = most orders)."),
    _f("rfm.monetary", I, "Monetary score 1-5 (5 = highest spend)."),
    _f("rfm.score", I, "recency + frequency + monetary, 3-15."),
    _f("rfm.segment", S, "Named RFM segment from the R/F grid (see engine/rfm.py).",
       choices=RFM_SEGMENTS),
    # predictions (customers with orders, once a model is fitted: see engine/predict.py)
    _f("predict.p_alive", N, "Probability, 0-1, that the customer is still active (BG/NBD model "
       "fitted over all customers); 1 after a single order (BG/NBD lets a customer drop out only "
       "after a repeat purchase). Absent without orders or until a model is fitted (needs "
       f"`pip install \"segmint[predict]\"`, {MIN_CUSTOMERS} customers, {MIN_REPEAT} of them with repeat "
       "orders)."),
    _f("predict.purchases_30d", N, "Expected purchases in the next 30 days (BG/NBD, fitted in days; "
       "every order counts as a purchase). Absent as predict.p_alive is."),
    _f("predict.value_90d", N, "Expected spend in the next 90 days: expected purchases in 90 days x "
       "the Gamma-Gamma expected average order value (the customer's average order value shrunk "
       "toward the population's). Absent as predict.p_alive is."),
    # aliases in the names other tools use
    _f("customer_segment.outbounds_avg_time_delta", N, "Average days between orders.",
       alias_of="orders.avg_days_between"),
    _f("customer_segment.returns_articles_ratio", N, "Return ratio, percent 0-100.",
       alias_of="returns.ratio"),
    _f("customer_segment.last_purchase_date", T, "Time of the latest order.", alias_of="orders.last_at"),
    _f("customer_segment.outbounds_value_total", N, "Total spend.", alias_of="spend.total"),
    _f("customer_segment.outbounds_count", I, "Orders placed.", alias_of="orders.count"),
    _f("customer_segment.basket_size_avg", N, "Average items per order.", alias_of="orders.avg_basket_size"),
    # plugins
    _f("extra", O, "Values set by plugins (segmint_enrich_document); each plugin declares its "
       "extra.<name> fields through segmint_field_catalog."),
)


def default_field_catalog(extra: Iterable[FieldDef] = ()) -> FieldCatalog:
    """The catalog of ``DEFAULT_FIELDS`` plus ``extra`` (fields from plugins)."""
    return FieldCatalog([*DEFAULT_FIELDS, *extra])


def fields_markdown(fields: Iterable[FieldDef] = DEFAULT_FIELDS) -> str:
    """The field reference as a markdown page (the content of ``docs/fields.md``)."""
    lines = [
        "# Profile fields",
        "",
        "Every field a segment rule may test. Generated by `python -m segmint.engine.field_table`;",
        "do not edit by hand. `*` stands for any key (a category or campaign id). Windows",
        "(`_7d`, `_30d`, `_90d`) count whole UTC days, today included. An *absent* field is",
        "missing from the document, so `$exists: false` matches it and comparisons do not.",
        "",
        "| field | type | meaning |",
        "| --- | --- | --- |",
    ]
    for f in fields:
        meaning = f.doc
        if f.alias_of:
            meaning += f" Alias of `{f.alias_of}`."
        if f.choices:
            meaning += " One of: " + ", ".join(f"`{c}`" for c in f.choices) + "."
        meaning = meaning.replace("|", "\\|")
        lines.append(f"| `{f.name}` | {f.type.value} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(fields_markdown(), end="")
