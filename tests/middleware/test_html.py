"""Finding and filling widget slots in raw HTML bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.middleware.html import MAX_SLOTS, fill_slots, find_product, find_slots


@pytest.mark.parametrize("markup", [
    b'<div data-segmint-slot="cart"></div>',
    b"<div data-segmint-slot='cart'></div>",
    b"<div data-segmint-slot=cart></div>",
    b'<div class="w" id="x" data-segmint-slot="cart" hidden></div>',
    b'<div\n  data-segmint-slot = "cart"\n></div >',
    b'<div data-segmint-slot="cart">  loading...  </div>',
    b'<DIV data-segmint-slot="cart"></div>',
    b'<section data-segmint-slot="cart"></section>',
])
def test_element_slots_are_found_and_filled_inside(markup: bytes):
    body = b"<p>before</p>" + markup + b"<p>after</p>"
    slots = find_slots(body)
    assert [s.name for s in slots] == ["cart"]
    filled = fill_slots(body, slots, {"cart": b"<b>W</b>"})
    assert filled.startswith(b"<p>before</p><") and filled.endswith(b"<p>after</p>")
    assert b"<b>W</b></" in filled and b"loading" not in filled
    assert b"data-segmint-slot" in filled  # the page keeps its container


@pytest.mark.parametrize("markup", [b'<div data-segmint-slot="cart"/>', b"<div data-segmint-slot='cart' />"])
def test_self_closing_slot_becomes_an_element(markup: bytes):
    body = b"<main>" + markup + b"</main>"
    filled = fill_slots(body, find_slots(body), {"cart": b"W"})
    assert filled.replace(b"'", b'"') in (b'<main><div data-segmint-slot="cart">W</div></main>',
                                          b'<main><div data-segmint-slot="cart" >W</div></main>')


@pytest.mark.parametrize("markup", [b"<!-- segmint:slot cart -->", b"<!--segmint:slot   cart-->"])
def test_comment_slots_are_replaced(markup: bytes):
    body = b"<p>a</p>" + markup + b"<p>b</p>"
    assert fill_slots(body, find_slots(body), {"cart": b"W"}) == b"<p>a</p>W<p>b</p>"


@pytest.mark.parametrize("markup", [
    b'<div data-segmint-slot="<script>"></div>',
    b'<div data-segmint-slot="a b"></div>',
    b'<div data-segmint-slot=""></div>',
    b"<!-- segmint:slot <img> -->",
    b'<div data-segmint-slot="cart"><p>nested markup</p></div>',
    b'<div data-other="data-segmint-slot=cart"></div>',
])
def test_invalid_or_nested_slots_are_left_alone(markup: bytes):
    assert find_slots(markup) == []


def test_slots_in_page_order_first_name_wins_and_bounded():
    body = b'<!-- segmint:slot b --><div data-segmint-slot="a"></div><div data-segmint-slot="b"></div>'
    slots = find_slots(body)
    assert [s.name for s in slots] == ["b", "a"]
    assert fill_slots(body, slots, {"b": b"B"}) == b'B<div data-segmint-slot="a"></div><div data-segmint-slot="b"></div>'
    many = b"".join(b'<div data-segmint-slot="s%d"></div>' % i for i in range(MAX_SLOTS + 10))
    assert len(find_slots(many)) == MAX_SLOTS


def test_product_marker():
    assert find_product(b'<main data-segmint-product="serum-1">') == "serum-1"
    assert find_product(b"<main data-segmint-product='x'>") == "x"
    assert find_product(b"<main>no marker</main>") is None


def test_no_widget_no_change():
    body = b'<div data-segmint-slot="cart"></div>'
    assert fill_slots(body, find_slots(body), {}) is body


@settings(max_examples=200)
@given(st.lists(st.sampled_from([b"<div ", b"data-segmint-slot=", b'"x"', b"'", b">", b"</div>", b"<!--",
                                  b"segmint:slot ", b"-->", b" ", b"a", b"<", b"/>", b"\n"]), max_size=60))
def test_fuzzed_markup_never_raises_and_fill_keeps_the_rest(parts: list[bytes]):
    body = b"".join(parts)
    slots = find_slots(body)
    filled = fill_slots(body, slots, {s.name: b"\x00W\x00" for s in slots})
    assert filled.count(b"\x00W\x00") == len(slots)
    assert fill_slots(body, slots, {}) == body


def test_hostile_page_is_fast_enough_to_finish():
    # Many unterminated tags: each match attempt is bounded, so this completes promptly.
    body = b"<div data-segmint-slot=x " * 20_000
    assert find_slots(body) == []


_SNIPPETS = [
    b'<div data-segmint-slot="cart"></div>', b"<DIV data-segmint-slot='home'>loading</div >",
    b'<section class="w" data-segmint-slot=side/>', b'<div data-segmint-slot="cart" data-segmint-slot="x"></div>',
    b'<div data-segmint-slot="bad name"></div>', b'<div data-segmint-slot="n"><p>nested</p></div>',
    b'<span data-segmint-product="sku-1"></span>', b"<!-- segmint:slot cmt -->",
    b'<div data-segmint-slot="cart">', b"<div ", b"data-segmint-slot=", b'"x"', b">", b"</div>", b"</p>",
    b"<", b"text ", b"<p>", b"\n",
]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_SNIPPETS), max_size=12), st.integers(min_value=0, max_value=3))
def test_memoized_slot_elements_match_a_fresh_scan(parts: list[bytes], pad: int):
    # The same slot markup seen again (at another offset, after other markup) answers from the
    # memo; it must give exactly what matching the page afresh gives.
    from segmint.middleware import html

    body = b"".join(parts)
    pages = [body, b"<p>" * pad + body, b"<b>x</b>" + body + body]
    remembered = [html.scan_page(page) for page in pages for _ in range(2)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(html, "_element_slot", _unmemoized_element_slot)
        fresh = [html.scan_page(page) for page in pages for _ in range(2)]
    assert remembered == fresh


def _unmemoized_element_slot(body: bytes, pos: int):  # the matcher as it was before the memo
    from segmint.middleware import html

    start = body.rfind(b"<", max(0, pos - html._MAX_TAG), pos)
    m = html._ELEMENT_SLOT.match(body, start) if start != -1 else None
    if m is None or not m.start("before") <= pos <= m.end("after"):
        return None, pos + 1
    name = html._decode_name(html._attr(m))
    if name is None:
        return None, m.end()
    tag = m["tag"]
    end_of_open = m.start("selfclose") if m["selfclose"] else m.start("inner") - 1
    open_tag = b"<" + tag + body[m.end("tag"):end_of_open].rstrip() + b">"
    return html.SlotMatch(name, m.start(), m.end(), open_tag, b"</" + tag + b">"), m.end()


def test_the_slot_memo_stays_bounded():
    from segmint.middleware import html

    for i in range(html._MEMO_SIZE * 3):
        body = f'<p>{i}</p><div data-segmint-slot="s{i}"></div>'.encode()
        assert [s.name for s in find_slots(body)] == [f"s{i}"]
        assert len(html._memo) <= html._MEMO_SIZE
