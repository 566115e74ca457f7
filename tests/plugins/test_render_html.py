import html
import re
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

from segmint.engine.catalog import Product
from segmint.engine.config import Config, RenderConfig
from segmint.engine.errors import ConfigError
from segmint.engine.hooks import get_plugin_manager
from segmint.plugins.render_html import (
    CLICK_PARAM,
    add_click_param,
    click_token,
    parse_click_token,
    render_widget,
)

SERUM = Product(sku="S2", name="Vitamin C Serum", url="https://shop.example/p/s2?ref=home#reviews",
                price=52, category="skincare", image="https://cdn.example/s2.jpg")
SCARF = Product(sku="F4", name="Silk Scarf", url="/p/f4", price=35, compare_at_price=70, category="fashion")


def decision(products=(SERUM, SCARF), **kw):
    fields = {"slot": "home", "campaign": "winback-vip", "variant": "b", "control": False,
              "products": list(products), "title": "We Miss You - Curated Picks Just for You",
              "coupon": {"code": "MISSYOU15", "percent": 15}, "segment": "lapsed_vip"} | kw
    return SimpleNamespace(**fields)


class Parsed(HTMLParser):
    """Collects start tags with attributes, and text, to check structure without regexes."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag):
        return [attrs for t, attrs in self.tags if t == tag]


def test_widget_structure_and_tracking_attributes():
    page = Parsed(render_widget(decision()))
    (section,) = page.find("section")
    assert section["class"] == "segmint-widget"
    assert section["data-segmint-slot"] == "home"
    assert section["data-segmint-campaign"] == "winback-vip"
    assert section["data-segmint-variant"] == "b"
    assert section["aria-label"] == "We Miss You - Curated Picks Just for You"
    assert [li["data-segmint-sku"] for li in page.find("li")] == ["S2", "F4"]
    assert [img["alt"] for img in page.find("img")] == ["Vitamin C Serum"]  # the scarf has no image
    text = "".join(page.text)
    assert "We Miss You" in text and "Use code MISSYOU15 for 15% off" in text
    assert "$52.00" in text and "$35.00" in text


def test_markdown_shows_the_compare_at_price_struck_through():
    out = render_widget(decision())
    assert re.search(r"<s[^>]*>\$70\.00</s> \$35\.00", out)
    assert len(Parsed(out).find("s")) == 1  # the serum is not marked down


def test_links_carry_the_click_token():
    links = [a["href"] for a in Parsed(render_widget(decision())).find("a")]
    serum, scarf = (urlsplit(link) for link in links)
    assert serum.fragment == "reviews"
    assert parse_qs(serum.query) == {"ref": ["home"], CLICK_PARAM: ["winback-vip.b.home"]}
    assert scarf.path == "/p/f4" and parse_qs(scarf.query) == {CLICK_PARAM: ["winback-vip.b.home"]}


def test_click_token_round_trips_any_names():
    token = click_token("spring.sale 2024", "a/b&c", "pdp")
    assert token.count(".") == 2
    query = urlsplit(add_click_param("/p/1?x=1", token)).query
    assert parse_click_token(parse_qs(query)[CLICK_PARAM][0]) == ("spring.sale 2024", "a/b&c", "pdp")
    assert click_token(None, None, "home") == "..home"
    assert parse_click_token("no-dots") is None


def test_control_and_empty_decisions_render_nothing():
    assert render_widget(decision(control=True)) == ""
    assert render_widget(decision(products=[])) == ""


def test_every_text_and_attribute_is_escaped():
    evil = Product(sku='x"><script>alert(1)</script>', name='<script>alert("name")</script> & \'quotes\'',
                   url="/p/x?a=1&b=2", price=5, category="<b>cat</b>")
    out = render_widget(decision([evil], title='"><img src=x onerror=alert(1)>', slot='s"1', variant="<v>",
                                 campaign="c'1", coupon={"code": "<CODE>", "amount": 5}))
    assert "<script" not in out and "<img src=x" not in out
    page = Parsed(out)
    (section,) = page.find("section")
    assert section["data-segmint-slot"] == 's"1' and section["data-segmint-campaign"] == "c'1"
    assert section["aria-label"] == '"><img src=x onerror=alert(1)>'
    assert page.find("li")[0]["data-segmint-sku"] == 'x"><script>alert(1)</script>'
    assert page.find("a")[0]["href"].startswith("/p/x?a=1&b=2&_sgm=")
    assert "&amp;b=2" in out
    assert '<script>alert("name")</script>' in html.unescape(out)
    assert "Use code <CODE> for $5.00 off" in "".join(page.text)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "java\nscript:x"])
def test_unsafe_urls_become_hash(url):
    product = Product(sku="z", name="Z", url="/p/z", price=1, category="x", image="/z.jpg")
    # The catalog refuses such URLs; force one in to prove the renderer does not trust its input.
    msgspec.structs.force_setattr(product, "url", url)
    msgspec.structs.force_setattr(product, "image", url)
    page = Parsed(render_widget(decision([product])))
    assert page.find("a")[0]["href"] == "#"
    assert page.find("img") == []


def test_no_title_still_has_an_accessible_name():
    page = Parsed(render_widget(decision(title=None, coupon=None)))
    assert page.find("section")[0]["aria-label"] == "Recommended products"
    assert page.find("h2") == [] and page.find("p") == []


def test_coupon_as_an_object():
    coupon = SimpleNamespace(code="SAVE10", percent=None, amount=10)
    assert "Use code SAVE10 for $10.00 off" in render_widget(decision(coupon=coupon))


LAMP = Product(sku="L1", name="Floor Lamp", url="/p/l1", price=1299, compare_at_price=1499.5, category="home")


@pytest.mark.parametrize("currency,price,was,coupon", [
    ("USD", "$1,299.00", "$1,499.50", "$10.00"),
    ("eur", "€1,299.00", "€1,499.50", "€10.00"),
    ("JPY", "¥1,299", "¥1,500", "¥10"),
    ("KWD", "KWD 1,299.000", "KWD 1,499.500", "KWD 10.000"),
])
def test_prices_are_written_in_the_configs_currency(currency, price, was, coupon):
    """The widget's own text carries the symbol and grouping (no page CSS adds a "$")."""
    config = msgspec.convert({"render": {"currency": currency}}, Config)
    pm = get_plugin_manager()
    coupon_ = {"code": "TEN", "amount": 10}
    out = pm.hook.segmint_render_widget(slot_decision=decision([LAMP], coupon=coupon_), config=config)
    text = html.unescape("".join(Parsed(out).text))
    assert f"{was} {price}" in text
    assert f"Use code TEN for {coupon} off" in text


@pytest.mark.parametrize("bad", ["US$", "dollar", "", "12"])
def test_a_currency_that_is_not_an_iso_code_is_a_config_error(tmp_path, bad):
    from segmint.engine.config import load_config

    path = tmp_path / "segmint.toml"
    path.write_text(f'[render]\ncurrency = "{bad}"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    problem = (error.value.problems or [error.value])[0]
    assert problem.path == "$.render" and problem.line == 1 and str(path) in str(problem.file)
    assert "ISO 4217 code such as 'USD'" in problem.message and repr(bad) in problem.message


def test_template_override_is_escaped_too():
    template = "<div data-c='{{campaign}}'>{{#products}}<b>{{name}}</b>{{/products}}{{^coupon}}none{{/coupon}}</div>"
    out = render_widget(decision([Product(sku="a", name="<i>A</i>", url="/a", price=1, category="x")],
                                 campaign="o'brien", coupon=None), template)
    assert out == "<div data-c='o&#x27;brien'><b>&lt;i&gt;A&lt;/i&gt;</b>none</div>"


def config(tmp_path, template):
    return Config(render=RenderConfig(template=template), source_path=str(tmp_path / "segmint.toml"))


def test_hook_uses_the_config_template_relative_to_the_config_dir(tmp_path):
    (tmp_path / "widget.html").write_text("<p>{{title}}: {{#products}}{{sku}} {{/products}}</p>")
    pm = get_plugin_manager(builtins=["segmint.plugins.render_html"], load_entrypoints=False)
    out = pm.hook.segmint_render_widget(slot_decision=decision(title="<Hi>"), config=config(tmp_path, "widget.html"))
    assert out == "<p>&lt;Hi&gt;: S2 F4 </p>"
    # Without a template setting: the built-in one.
    default = pm.hook.segmint_render_widget(slot_decision=decision(), config=Config())
    assert default == render_widget(decision())
    # Control: an empty string (not None), so no later renderer fills the slot.
    assert pm.hook.segmint_render_widget(slot_decision=decision(control=True), config=Config()) == ""


def test_an_edited_template_file_is_picked_up(tmp_path):
    import os

    path = tmp_path / "w.html"
    path.write_text("one {{slot}}")
    pm = get_plugin_manager(builtins=["segmint.plugins.render_html"], load_entrypoints=False)
    assert pm.hook.segmint_render_widget(slot_decision=decision(), config=config(tmp_path, "w.html")) == "one home"
    path.write_text("two {{slot}}")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert pm.hook.segmint_render_widget(slot_decision=decision(), config=config(tmp_path, "w.html")) == "two home"


def test_a_bad_config_template_is_a_config_error(tmp_path):
    (tmp_path / "bad.html").write_text("<p>\n{{#products}}{{nmae}}{{/products}}</p>")
    pm = get_plugin_manager(builtins=["segmint.plugins.render_html"], load_entrypoints=False)
    with pytest.raises(ConfigError) as info:
        pm.hook.segmint_render_widget(slot_decision=decision(), config=config(tmp_path, "bad.html"))
    assert info.value.line == 2 and info.value.suggestion == "name"
    with pytest.raises(ConfigError, match="cannot read"):
        pm.hook.segmint_render_widget(slot_decision=decision(), config=config(tmp_path, "missing.html"))
