"""Safe regular expressions for ``$regex``: patterns come from config files, texts from visitors.

Python's ``re`` backtracks, so a pattern like ``(a+)+$`` can take exponential time on a short
hostile string. segmint therefore refuses, at compile time, what can blow up: patterns over
``MAX_PATTERN`` characters, nested quantifiers, alternation inside a repeated group,
backreferences and conditionals, and more than ``MAX_WIDE_REPEATS`` unbounded repeats.
At evaluation time a regex only sees the first ``MAX_TEXT`` characters of a value, which
bounds the remaining polynomial cases.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from ..errors import FilterError

__all__ = ["compile_regex", "MAX_PATTERN", "MAX_TEXT"]

MAX_PATTERN = 256
MAX_TEXT = 1000
MAX_WIDE_REPEATS = 3
_WIDE = 64  # a repeat allowing more than this many iterations counts as unbounded

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
    wide = _check(tree, inside_repeat=False, path=path, pattern=pattern)
    if wide > MAX_WIDE_REPEATS:
        raise FilterError(
            f"regular expression {pattern!r} has {wide} unbounded repeats (+, *, {{n,}}); "
            f"the limit is {MAX_WIDE_REPEATS}, as more can make matching very slow", path
        )
    return re.compile(pattern, flags)


def _danger(pattern: str, path: str, what: str) -> FilterError:
    return FilterError(
        f"regular expression {pattern!r} is refused: {what} can make matching hang", path
    )


def _check(tree: Any, *, inside_repeat: bool, path: str, pattern: str) -> int:
    """Walk the parsed pattern; return the number of wide repeats, raise on dangerous shapes."""
    wide = 0
    for op, av in tree:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise _danger(pattern, path, "a backreference or conditional group")
        if op in _REPEATS:
            low, high, body = av
            many = high == sre.MAXREPEAT or high > _WIDE
            wide += many
            if inside_repeat and high > low:
                raise _danger(pattern, path, "a nested quantifier such as (a+)+")
            if op == sre.POSSESSIVE_REPEAT:
                continue  # possessive repeats never backtrack into their body
            wide += _check(body, inside_repeat=high > 1, path=path, pattern=pattern)
        elif op == sre.BRANCH:
            if inside_repeat:
                raise _danger(pattern, path, "alternation inside a repeated group such as (a|ab)*")
            for branch in av[1]:
                wide += _check(branch, inside_repeat=False, path=path, pattern=pattern)
        elif op == sre.SUBPATTERN:
            wide += _check(av[-1], inside_repeat=inside_repeat, path=path, pattern=pattern)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            wide += _check(av[1], inside_repeat=inside_repeat, path=path, pattern=pattern)
        elif op == sre.ATOMIC_GROUP:
            wide += _check(av, inside_repeat=False, path=path, pattern=pattern)
    return wide
