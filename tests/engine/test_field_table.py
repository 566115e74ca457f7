"""The field catalog covers every key the document produces, with the right type, and no more."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from segmint.engine.document import profile_document
from segmint.engine.events import (
    CartLine, CartUpdate, Click, Impression, Order, OrderItem, PageView, ProductView, Return, ReturnItem,
)
from segmint.engine.field_table import DEFAULT_FIELDS, default_field_catalog, fields_markdown
from segmint.engine.fields import FieldDef, FieldType
from segmint.engine.folding import fold
from segmint.engine.profile import Profile
from segmint.engine.predict import BgNbdParams, GammaGammaParams, PredictModel
from segmint.engine.rfm import RfmThresholds

UTC = timezone.utc
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "fields.md"
RFM = RfmThresholds(recency_days=(5, 10, 20, 40), frequency=(1, 2, 3, 4), monetary=(10, 20, 40, 80),
                    computed_at=NOW.timestamp(), customers=10, sample_size=10)
PREDICT = PredictModel(bgnbd=BgNbdParams(r=0.24, alpha=31.0, a=0.79, b=2.43, log_likelihood=0.0),
                       gamma_gamma=GammaGammaParams(p=6.25, q=3.74, gamma=15.44, log_likelihood=0.0),
                       computed_at=NOW.timestamp(), customers=10, sample_size=10)


def rich_profiles():
    def ago(d):
        return NOW - timedelta(days=d)

    buyer = Profile(key="c:1", customer_id="1")
    events = [
        PageView(customer_id="1", at=ago(40)), PageView(customer_id="1", at=ago(2)),
        ProductView(customer_id="1", sku="a", category="skincare", at=ago(3)),
        Order(customer_id="1", order_id="o1", at=ago(30), coupon="X",
              items=[OrderItem(sku="a", category="skincare", quantity=2, price=10.0, discount=1.0)]),
        Order(customer_id="1", order_id="o2", at=ago(5),
              items=[OrderItem(sku="b", category="makeup", quantity=1, price=20.0)]),
        Return(customer_id="1", order_id="o1", at=ago(4), items=[ReturnItem(sku="a")], amount=9.0),
        CartUpdate(customer_id="1", at=ago(1), items=[CartLine(sku="c", price=3.0)]),
        Impression(customer_id="1", campaign="winback", at=ago(1)),
        Click(customer_id="1", campaign="winback", at=ago(1)),
        Click(customer_id="1", campaign="clicked_only", at=ago(1)),
    ]
    for e in events:
        fold(buyer, e)
    visitor = Profile(key="v:x")
    fold(visitor, PageView(visitor_id="x", at=ago(0.1)))
    return [buyer, visitor, Profile(key="v:empty")]


def leaves(value, prefix=""):
    """(path, value) for every leaf of a document; ``extra`` is one opaque object."""
    for key, inner in value.items():
        path = f"{prefix}{key}"
        if isinstance(inner, dict) and path != "extra":
            yield from leaves(inner, path + ".")
        else:
            yield path, inner


def type_ok(field_type, value):
    checks = {
        FieldType.INTEGER: lambda v: isinstance(v, int) and not isinstance(v, bool),
        FieldType.NUMBER: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        FieldType.STRING: lambda v: isinstance(v, str),
        FieldType.BOOLEAN: lambda v: isinstance(v, bool),
        FieldType.DATETIME: lambda v: isinstance(v, datetime) and v.tzinfo is not None,
        FieldType.LIST: lambda v: isinstance(v, list),
        FieldType.OBJECT: lambda v: isinstance(v, dict),
    }
    return checks[field_type](value)


def test_every_document_path_is_in_the_catalog_with_the_right_type():
    catalog = default_field_catalog()
    for profile in rich_profiles():
        for rfm, predict in ((None, None), (RFM, PREDICT)):
            for path, value in leaves(profile_document(profile, NOW, rfm=rfm, predict=predict)):
                field = catalog.lookup(path)
                assert field is not None, f"{path} is not in the field catalog"
                assert type_ok(field.type, value), (path, field.type, value)
                if field.choices:
                    assert value in field.choices, (path, value)


def test_the_catalog_has_no_field_the_document_never_produces():
    produced = set()
    for profile in rich_profiles():
        for rfm, predict in ((None, None), (RFM, PREDICT)):
            produced |= {path for path, _ in leaves(profile_document(profile, NOW, rfm=rfm, predict=predict))}
    catalog_names = {f.name for f in DEFAULT_FIELDS}
    for name in catalog_names:
        parts = name.split(".")
        assert any(
            len(p.split(".")) == len(parts) and all(a == "*" or a == b for a, b in zip(parts, p.split(".")))
            for p in produced
        ), f"{name} is never produced by profile_document"


def test_aliases_point_at_fields_with_the_same_value():
    catalog = default_field_catalog()
    doc = profile_document(rich_profiles()[0], NOW, rfm=RFM)

    def get(path):
        value = doc
        for part in path.split("."):
            value = value[part]
        return value

    for field in DEFAULT_FIELDS:
        if field.alias_of:
            assert catalog.lookup(field.alias_of).type == field.type
            assert get(field.name) == get(field.alias_of), field.name


def test_the_issue_names_are_present():
    catalog = default_field_catalog()
    for name in ("visitor.visits", "visitor.is_returning", "orders.count", "orders.last_at", "spend.total", "spend.net", "spend.refunded",
                 "customer_segment.outbounds_avg_time_delta", "customer_segment.returns_articles_ratio",
                 "customer_segment.last_purchase_date", "customer_segment.outbounds_value_total",
                 "customer_segment.basket_size_avg", "customer_segment.outbounds_count",
                 "category.items.skincare", "campaign.winback.impressions", "rfm.segment"):
        assert name in catalog, name
    assert catalog.canonical("customer_segment.outbounds_value_total") == "spend.total"


def test_plugins_extend_the_default_catalog():
    catalog = default_field_catalog([FieldDef("extra.churn", FieldType.NUMBER, "Churn risk")])
    assert catalog.lookup("extra.churn").type is FieldType.NUMBER
    assert len(catalog) == len(DEFAULT_FIELDS) + 1


def test_docs_fields_md_is_generated_from_the_catalog():
    assert DOCS.read_text(encoding="utf-8") == fields_markdown(), (
        "docs/fields.md is stale: run python -m segmint.engine.field_table > docs/fields.md")
    out = subprocess.run([sys.executable, "-m", "segmint.engine.field_table"], capture_output=True,
                         text=True, check=True).stdout
    assert out == fields_markdown()
