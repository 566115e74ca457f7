"""``suggest``: the one "did you mean" of segmint (config keys, filters, strategies, templates, CLI)."""

import ast
import itertools
from pathlib import Path

import pytest

from segmint.engine.errors import suggest

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ["bestsellers", "markdowns", "new_arrivals", "recently_viewed", "user_based"]


@pytest.mark.parametrize(("typo", "meant"), [
    ("bestseller", "bestsellers"),
    ("new_arivals", "new_arrivals"),
    ("recent_viewed", "recently_viewed"),
    ("markdowns", "markdowns"),
])
def test_a_close_name_is_suggested(typo, meant):
    assert suggest(typo, STRATEGIES) == meant


@pytest.mark.parametrize("far", ["cheapest", "x", "", "BESTSELLERS"])
def test_nothing_is_suggested_for_a_far_name(far):
    assert suggest(far, STRATEGIES) is None


def test_nothing_is_suggested_from_nothing():
    assert suggest("bestseller", []) is None


def test_any_iterable_of_names_will_do():
    assert suggest("bestseller", {name: 1 for name in STRATEGIES}) == "bestsellers"
    assert suggest("bestseller", (name for name in STRATEGIES)) == "bestsellers"


def test_the_answer_does_not_depend_on_the_order_of_the_names():
    # "abd" and "abe" are equally close to "abc": the same one wins in any order.
    answers = {suggest("abc", order) for order in itertools.permutations(["abd", "abe", "xyz"])}
    assert answers == {"abe"}


def test_no_other_module_computes_a_suggestion():
    users = sorted(str(path.relative_to(ROOT)) for folder in ("engine", "plugins", "middleware")
                   for path in (ROOT / folder).rglob("*.py")
                   if any(isinstance(node, (ast.Import, ast.ImportFrom))
                          and "difflib" in ([a.name for a in node.names] if isinstance(node, ast.Import)
                                            else [node.module])
                          for node in ast.walk(ast.parse(path.read_text()))))
    assert users == ["engine/errors.py"]
