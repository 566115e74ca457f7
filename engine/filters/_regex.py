"""Safe regular expressions for ``$regex``: patterns come from config files, texts from visitors.

Python's ``re`` backtracks, so a pattern like ``(a+)+$`` can take exponential time on a short
hostile string. segmint therefore refuses, at compile time, what can blow up: patterns over
``MAX_PATTERN`` characters, nested quantifiers, alternation inside a repeated group,
backreferences and conditionals, and repeats whose combined backtracking could exceed
``MAX_BACKTRACK`` (the product of each repeat's width: more than ``MAX_WIDE_REPEATS``
unbounded repeats in a row, or the like made of bounded ones such as ``a{0,64}a{0,64}a{0,64}``;
three ``a*`` in a row already take minutes on 1000 characters). At evaluation time a regex
only sees the first ``MAX_TEXT`` characters of a value, which bounds the remaining
polynomial cases.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from ..errors import FilterError

__all__ = ["compile_regex", "MAX_PATTERN", "MAX_TEXT"]

MAX_PATTERN = 256
#: Characters of a value a regex sees: the longest text an event may carry (``Text`` in
#: events.py), so no visitor-supplied value is cut. Two unbounded repeats followed by a
#: failing tail cost about n**3 steps over a search (every start position): ~2 s at 1000
#: characters here, ~30 ms at 256.
MAX_TEXT = 256
MAX_WIDE_REPEATS = 2
#: Upper bound of the product of repeat widths (``a*`` is MAX_TEXT + 1 wide, ``a?`` 2).
MAX_BACKTRACK = (MAX_TEXT + 1) ** MAX_WIDE_REPEATS

_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}


def regex_flags(options: Any, path: str) -> int:
    if not isinstance(options, str):
        raise FilterError("$options must be a string of letters among i, m, s, x", path)
    flags = 0
    for letter in options:
        if letter not in _FLAGS:
            raise FilterError(f"unknown regex option {letter!r}; use i, m, s or x", path)
        flags |= _FLAGS[letter]
    return flags


def compile_regex(pattern: Any, options: Any, path: str) -> re.Pattern[str]:
    """Compile ``pattern`` with Mongo ``$options`` letters, refusing what could hang."""
    if isinstance(pattern, re.Pattern):
        flags = pattern.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE)
        pattern = pattern.pattern
    else:
        flags = 0
    if not isinstance(pattern, str):
        raise FilterError("a regular expression must be a string", path)
    flags |= regex_flags(options, path) if options is not None else 0
    if len(pattern) > MAX_PATTERN:
        raise FilterError(
            f"regular expression is {len(pattern)} characters long; the limit is {MAX_PATTERN}", path
        )
    try:
        tree = sre_parse.parse(pattern, flags)
    except re.error as exc:
        raise FilterError(f"invalid regular expression {pattern!r}: {exc.msg}", path) from None
    if _check(tree, inside_repeat=False, path=path, pattern=pattern) > MAX_BACKTRACK:
        raise FilterError(
            f"regular expression {pattern!r} combines too many repeats (+, *, ?, {{n,m}}): at most "
            f"{MAX_WIDE_REPEATS} unbounded repeats (or bounded ones as wide), as more can make "
            "matching very slow", path
        )
    return re.compile(pattern, flags)


def _danger(pattern: str, path: str, what: str) -> FilterError:
    return FilterError(
        f"regular expression {pattern!r} is refused: {what} can make matching hang", path
    )


def _check(tree: Any, *, inside_repeat: bool, path: str, pattern: str) -> int:
    """Walk the parsed pattern; return its backtracking cost, raise on dangerous shapes.

    The cost of a sequence is the product of its parts (each repeat multiplies by its width,
    an alternation by the sum of its branches): a bound on the ways a match can be tried.
    """
    cost = 1
    for op, av in tree:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise _danger(pattern, path, "a backreference or conditional group")
        if op in _REPEATS:
            low, high, body = av
            if inside_repeat and high > low:
                raise _danger(pattern, path, "a nested quantifier such as (a+)+")
            if op == sre.POSSESSIVE_REPEAT:
                # It never gives back an iteration, so its width does not multiply; but each
                # iteration's body still searches for its first match, with its own repeats.
                cost *= _check(body, inside_repeat=False, path=path, pattern=pattern)
                cost = min(cost, MAX_BACKTRACK + 1)
                continue
            cost *= min(high, MAX_TEXT) - min(low, MAX_TEXT) + 1
            cost *= _check(body, inside_repeat=high > 1, path=path, pattern=pattern)
        elif op == sre.BRANCH:
            if inside_repeat:
                raise _danger(pattern, path, "alternation inside a repeated group such as (a|ab)*")
            cost *= sum(_check(branch, inside_repeat=False, path=path, pattern=pattern) for branch in av[1])
        elif op == sre.SUBPATTERN:
            cost *= _check(av[-1], inside_repeat=inside_repeat, path=path, pattern=pattern)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            cost *= _check(av[1], inside_repeat=inside_repeat, path=path, pattern=pattern)
        elif op == sre.ATOMIC_GROUP:
            cost *= _check(av, inside_repeat=False, path=path, pattern=pattern)
        cost = min(cost, MAX_BACKTRACK + 1)  # past the bound the exact value does not matter
    return cost
