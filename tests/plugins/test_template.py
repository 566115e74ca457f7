import pytest

from segmint.engine.errors import ConfigError
from segmint.plugins._template import Template, load_template

SCHEMA = {"title": None, "items": {"name": None, "tags": None}, "coupon": {"code": None}}


def render(text, **context):
    return Template(text, SCHEMA).render(context)


def test_values_are_escaped_and_missing_ones_are_empty():
    assert render("<h2>{{ title }}</h2>", title="<b>&\"'") == "<h2>&lt;b&gt;&amp;&quot;&#x27;</h2>"
    assert render("[{{title}}]") == "[]"
    assert render("[{{title}}]", title=None) == "[]"


def test_sections_iterate_lists_and_see_outer_names():
    out = render("{{#items}}<li>{{name}} ({{title}})</li>{{/items}}", title="T",
                 items=[{"name": "a"}, {"name": "<b>"}])
    assert out == "<li>a (T)</li><li>&lt;b&gt; (T)</li>"


def test_truthy_falsy_and_inverted_sections():
    text = "{{#coupon}}code {{code}} / {{coupon.code}}{{/coupon}}{{^coupon}}no coupon{{/coupon}}"
    assert render(text, coupon={"code": "X1"}) == "code X1 / X1"
    assert render(text, coupon=None) == "no coupon"
    assert render(text, coupon={}) == "no coupon"
    assert render("{{#title}}yes{{/title}}{{^items}}, empty{{/items}}", title="t", items=[]) == "yes, empty"


def test_comments_are_dropped():
    assert render("a{{! a note }}b") == "ab"


@pytest.mark.parametrize(("text", "message", "line", "suggestion"), [
    ("{{titel}}", "unknown name 'titel'", 1, "title"),
    ("x\n{{#items}}{{nmae}}{{/items}}", "unknown name 'nmae'", 2, "name"),
    ("{{name}}", "unknown name 'name'", 1, None),          # only inside {{#items}}
    ("{{coupon.cod}}", "unknown name 'coupon.cod'", 1, "coupon.code"),
    ("{{title.x}}", "unknown name 'title.x'", 1, None),
    ("{{{title}}}", "unescaped output", 1, None),
    ("{{#items}}\n\n{{/coupon}}", "unexpected {{/coupon}}", 3, None),
    ("a\n{{#items}}x", "never closed", 2, None),
    ("{{/items}}", "unexpected", 1, None),
    ("{{ title() }}", "bad template tag", 1, None),
    ("{{__class__.__mro__}}", "unknown name", 1, None),
])
def test_template_errors(text, message, line, suggestion):
    with pytest.raises(ConfigError) as info:
        Template(text, SCHEMA, source="w.html")
    err = info.value
    assert message in err.message
    assert (err.file, err.line, err.suggestion) == ("w.html", line, suggestion)


def test_no_attribute_access_on_objects():
    class Secret:
        code = "leaked"

    assert render("{{coupon.code}}", coupon=Secret()) == ""


def test_load_template(tmp_path):
    path = tmp_path / "t.html"
    path.write_text("<p>{{title}}</p>", encoding="utf-8")
    assert load_template(path, SCHEMA).render({"title": "é"}) == "<p>é</p>"
    with pytest.raises(ConfigError) as info:
        load_template(tmp_path / "nope.html", SCHEMA)
    assert info.value.file.endswith("nope.html")
