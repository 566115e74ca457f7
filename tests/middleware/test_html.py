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
