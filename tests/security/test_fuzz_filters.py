"""Fuzzing the filter compiler: only ``FilterError`` escapes, nothing hangs.

Filters come from config files, the values they test from visitors. Random and mutated
specs must compile or fail with ``FilterError``; a compiled filter must answer True/False for
any document; regexes that could backtrack for minutes are refused at compile time, and an
accepted one matches a 1 MB hostile value in bounded time. "Bounded" is checked with a hard
timeout on a child process (``re`` cannot be interrupted in-process): a guard against hangs,
not a speed goal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.engine import FilterError, compile_filter

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "segmint.toml"
SEED_FILTERS = [
    seg["filter"] if isinstance(seg["filter"], str) else json.dumps(seg["filter"])
    for seg in tomllib.loads(EXAMPLE.read_text())["segments"].values()
]
OPERATORS = ["$and", "$or", "$nor", "$not", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
             "$all", "$size", "$exists", "$type", "$regex", "$options", "$elemMatch", "$mod", "$between",
             "$where", "$expr", "$function", "$gtee", "$"]
FIELDS = ["orders.count", "spend.total", "days_since_last_purchase", "category.bought", "visitor.is_new",
          "customer_segment.outbounds_value_total", "rfm.score", "a", "a.b", "", ".", "x" * 300, "\x00"]
keys = st.sampled_from(OPERATORS + FIELDS) | st.text(max_size=12)
scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True)
           | st.text(max_size=30) | st.sampled_from(["today-14d", "now-1h", "2026-01-01", "(a+)+$", "[", "yyyy-mm-dd"]))
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)
documents = st.dictionaries(st.sampled_from(["orders", "spend", "a", "category", "days_since_last_purchase"]),
                            json_like, max_size=5)

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compile_or_filter_error(spec: Any) -> Any:
    """Compile; a FilterError is a fine answer (with a path and a message), anything else fails."""
    try:
        return compile_filter(spec)
    except FilterError as exc:
        assert exc.path.startswith("$") and exc.message
        return None


@FUZZ
@given(spec=st.dictionaries(keys, json_like, max_size=4), doc=documents)
def test_random_specs_compile_or_raise_filter_error_and_then_match_any_document(spec: Any, doc: Any):
    compiled = compile_or_filter_error(spec)
    if compiled is not None:
        assert compiled.matches(doc) in (True, False)
        assert isinstance(str(compiled.explain(doc)), str)


@FUZZ
@given(spec=json_like)
def test_any_json_value_as_a_spec_only_raises_filter_error(spec: Any):
    compile_or_filter_error(spec)
    compile_or_filter_error(json.dumps(spec, allow_nan=True))


@FUZZ
@given(seed=st.sampled_from(SEED_FILTERS), cuts=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 6),
                                                                     st.text(max_size=4)), max_size=4))
def test_mutated_seed_filter_text_only_raises_filter_error(seed: str, cuts: list[tuple[int, int, str]]):
    text = seed
    for at, drop, insert in cuts:  # delete a few characters and insert others, anywhere
        at %= len(text) + 1
        text = text[:at] + insert + text[at + drop:]
    compile_or_filter_error(text)
    compile_or_filter_error(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_filter_error(data: bytes):
    compile_or_filter_error(data)


# -- limits: deep and huge specs are refused, regex bombs too -----------------------------------
def _nested(depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"a": 1}
    for _ in range(depth):
        spec = {"$or": [spec]}
    return spec


@pytest.mark.parametrize("spec", [
    _nested(5000),                                     # deeper than Python's recursion limit
    "{" * 200_000,                                     # unbalanced text
    '{"$and": [' * 50_000 + "]}" * 50_000,             # balanced but absurdly deep
    {"$or": [{"a": i} for i in range(100_000)]},       # far beyond the clause limit
    {"a": {"$in": list(range(1_000_000))}},            # far beyond the literal limit
    {"a": {"$in": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}},
], ids=["deep-dict", "open-braces", "deep-text", "many-clauses", "many-literals", "deep-literal"])
def test_deep_and_huge_specs_are_refused(spec: Any):
    with pytest.raises(FilterError, match="nested too deeply|too large|not valid JSON"):
        compile_filter(spec)


BOMBS = ["(a+)+$", "(a|aa)*$", "(a|a)*b", "(a*)*b", "(.*a){20}", "(a)\\1", "(?P<x>a+)(?P=x)b", "(x+x+)+y",
         "a*a*a*b", ".*.*.*=", "a{0,64}a{0,64}a{0,64}a{0,64}b", "a?" * 30 + "b", "(\\w+\\s?)+$",
         "^(([a-z])+.)+[A-Z]([a-z])+$",
         # A possessive group still searches inside each iteration: 2 s on 1000 characters.
         # Found by the megabyte probe below.
         "(?:a{0,5}.*?(?:ab){3,}b++\\s{2}\\s*(?:ab)*?(a)?)++[^x]*b{2}"]


@pytest.mark.parametrize("pattern", BOMBS)
def test_regex_bombs_are_refused_at_compile_time(pattern: str):
    with pytest.raises(FilterError, match="refused|too many repeats|nested quantifier|backreference"):
        compile_filter({"a": {"$regex": pattern}})


atoms = st.sampled_from(["a", "b", ".", "\\d", "\\w", "\\s", "[ab]", "[^x]", "(?:ab)", "(a)", "x"])
quantifiers = st.sampled_from(["", "", "*", "+", "?", "{2}", "{0,5}", "{1,64}", "{3,}", "*?", "++"])
regexes = st.lists(st.tuples(atoms, quantifiers), min_size=1, max_size=8).map(
    lambda parts: "".join(a + q for a, q in parts))
grouped = st.tuples(regexes, quantifiers, regexes).map(lambda t: f"(?:{t[0]}){t[1]}{t[2]}")
alternated = st.tuples(regexes, regexes, quantifiers).map(lambda t: f"({t[0]}|{t[1]}){t[2]}$")

PROBE = textwrap.dedent("""
    import sys
    from hypothesis import given, settings, strategies as st, HealthCheck
    from segmint.engine import FilterError, compile_filter
    import importlib.util
    spec = importlib.util.spec_from_file_location("fuzz_filters", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    hostile = ["a" * 1_000_000, "ab" * 500_000, " " * 1_000_000, "a" * 999_999 + "!", "\\u00e9" * 1_000_000]

    @settings(max_examples=int(sys.argv[2]), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mod.regexes | mod.grouped | mod.alternated)
    def probe(pattern):
        try:
            f = compile_filter({"a": {"$regex": pattern}})
        except FilterError:
            return
        for text in hostile:
            assert f.matches({"a": text}) in (True, False)
            assert f.matches({"a": [text, text]}) in (True, False)

    probe()
    for pattern in mod.BOMBS:  # belt and braces: even a refused pattern never reaches re here
        try:
            compile_filter({"a": {"$regex": pattern}})
        except FilterError:
            continue
        raise SystemExit(f"accepted {pattern!r}")
    print("ok")
""")


@pytest.mark.slow
def test_every_accepted_regex_matches_a_megabyte_without_hanging():
    """Random regexes (hypothesis, in a child process with a hard timeout): the accepted ones
    answer on 1 MB hostile values. A hang shows as a timeout instead of a stuck test run."""
    result = subprocess.run([sys.executable, "-c", PROBE, __file__, "150"], capture_output=True,
                            text=True, timeout=150)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.strip().endswith("ok")
