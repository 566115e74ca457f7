"""Compile a validated filter tree into one Python function.

Why generated code: a tree of closures costs a Python call per node; one flat function with
the common case inlined (look the path up in nested dicts, compare a number with a number)
runs several times faster, which matters because every page view evaluates every segment.

Safety: the source is built only from the *structure* of the validated tree, using names this
module invents (``_k3``, ``_t7``) and a fixed set of operators. Every value that came from
config (field names, operands, regexes) is passed in the function's namespace as a constant,
never written into the source, so no filter text can become code.

Shape of the code for ``{"$and": [{"a.b": {"$lte": 14}}, ...]}``::

    def _root(doc, now):
        try:
            v = doc[_k0][_k1]            # nested dicts: the fast path
        except KeyError:                # only a dict lookup raises it: the field is
            r = False                   # missing, a result known when compiling
        except _LOOKUP:                 # a list or scalar on the way: the slow path,
            r = _g2(doc, now)           # MongoDB's full path rules
        else:
            try:
                r = ((v <= _k3) if (v is not True and v is not False) else _t4(v, now))
            except _LOOKUP:             # other types: the full rules too
                r = _g2(doc, now)
        if not r:
            return False
        ...
        return True
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ._ast import Cond, FieldGroup, Logical, Node, NotCond, SegmentRef, group_matches
from ._dates import KNOWN_TEXTS, normalize_now
from ._regex import MAX_TEXT

__all__ = ["build_filter_functions", "build_inner"]

_LOOKUP = (KeyError, TypeError, IndexError)
_NUM = "(type(v) is int or type(v) is float)"
_STR = "(type(v) is str)"
# Ordering a JSON value against a number (or a string) raises TypeError unless the value is
# a number (a string): the except clause then takes the slow path. Only bool needs a guard.
_NOT_BOOL = "(v is not True and v is not False)"
# fast kind -> (guard or None, expression computing the operator's result for a scalar v)
_FAST: dict[str, tuple[str | None, str]] = {
    "num_gt": (_NOT_BOOL, "v > {k}"),
    "num_gte": (_NOT_BOOL, "v >= {k}"),
    "num_lt": (_NOT_BOOL, "v < {k}"),
    "num_lte": (_NOT_BOOL, "v <= {k}"),
    "num_eq": (_NUM, "v == {k}"),
    "str_gt": (None, "v > {k}"),
    "str_gte": (None, "v >= {k}"),
    "str_lt": (None, "v < {k}"),
    "str_lte": (None, "v <= {k}"),
    "str_eq": (_STR, "v == {k}"),
    "is": ("(type(v) is bool)", "v is {k}"),
    "in_str": (_STR, "v in {k}"),
    "in_num": (_NUM, "v in {k}"),
    "regex": (_STR, "{k}(v, 0, %d) is not None" % MAX_TEXT),
}


class _Emitter:
    """Accumulates generated functions and the namespace of constants they refer to."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_LOOKUP": _LOOKUP}
        self.functions: list[str] = []
        self._count = 0

    def fresh(self, prefix: str) -> str:
        """A new generated identifier (never derived from config text)."""
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, value: Any, prefix: str = "_k") -> str:
        """A name the generated code uses to refer to ``value``."""
        name = self.fresh(prefix)
        self.namespace[name] = value
        return name

    # -- nodes ------------------------------------------------------------------------------

    def body(self, node: Logical) -> list[str]:
        """Statements that return the node's result, short-circuiting."""
        op = node.op
        on_hit, on_miss, final = {
            "$and": ("", "return False", "return True"),
            "$or": ("return True", "", "return False"),
            "$nor": ("return False", "", "return True"),
        }[op]
        lines: list[str] = []
        for child in _children(node):
            lines += self.child(child)
            if on_hit:
                lines += ["if r:", f"    {on_hit}"]
            else:
                lines += ["if not r:", f"    {on_miss}"]
        lines.append(final)
        return lines

    def child(self, node: Node) -> list[str]:
        """Statements that set ``r`` to the node's result."""
        if isinstance(node, FieldGroup):
            return self.group(node)
        if isinstance(node, SegmentRef):
            return [f"r = {self.const(node.target._inner, '_s')}(doc, now)"]
        children = _children(node)
        if all(not isinstance(c, Logical) for c in children):
            return self.inline(node.op, children)
        name = self.function(node)
        return [f"r = {name}(doc, now)"]

    def inline(self, op: str, children: list[Node]) -> list[str]:
        """A combination of leaves, flat in the parent: each next leaf runs only if needed."""
        if not children:  # an empty query ({}) in an $or/$nor list: an $and of nothing, true
            return [f"r = {op != '$or'}"]
        lines = self.child(children[0])
        guard = "if r:" if op == "$and" else "if not r:"
        for child in children[1:]:
            lines += [guard] + ["    " + line for line in self.child(child)]
        if op == "$nor":
            lines.append("r = not r")
        return lines

    def function(self, node: Logical) -> str:
        name = self.fresh("_n")
        src = [f"def {name}(doc, now):"] + ["    " + line for line in self.body(node)]
        self.functions.append("\n".join(src))
        return name

    def group(self, group: FieldGroup) -> list[str]:
        # Nested dicts are the fast path. A KeyError can only come from a dict lookup, so it
        # means the field is missing (common: a profile without orders has no
        # orders.last_at), whose result is known when compiling. Anything else on the way (a
        # list, a scalar) raises TypeError and takes MongoDB's full path rules.
        lookup = "doc" + "".join(f"[{self.const(part)}]" for part in group.parts)
        slow = self.const(lambda doc, now, _g=group: group_matches(_g, doc, now), "_g")
        when_missing = _missing_result(group)
        on_missing = f"{slow}(doc, now)" if when_missing is None else repr(when_missing)
        expr = " and ".join(self.item(item) for item in group.items)
        return [
            "try:",
            f"    v = {lookup}",
            "except KeyError:",
            f"    r = {on_missing}",
            "except _LOOKUP:",
            f"    r = {slow}(doc, now)",
            "else:",
            "    try:",
            f"        r = {expr}",
            "    except _LOOKUP:",
            f"        r = {slow}(doc, now)",
        ]

    def item(self, item: Cond | NotCond) -> str:
        """An expression over the single value ``v`` found by the fast lookup."""
        if isinstance(item, NotCond):
            return "(not (" + " and ".join(self.item(c) for c in item.conds) + "))"
        kind, value = item.fast or (None, None)
        if kind == "const":
            return "True" if bool(value) != item.negate else "False"
        slow = self.const(_single(item), "_t")
        if kind == "is_none":
            return f"(v is None or {slow}(v, now))" if not item.negate else f"(v is not None and {slow}(v, now))"
        if kind is None:
            return f"{slow}(v, now)"
        if kind.startswith("date_"):
            return self.date_item(kind, value, item, slow)
        if kind == "in_str":
            # Strings, and arrays of them (category.bought): any element in the set. An
            # unhashable element raises TypeError, which takes the full rules.
            k = self.const(value)
            hit, miss = (f"(not (v in {k}))", f"{k}.isdisjoint(v)") if item.negate else (
                f"(v in {k})", f"(not {k}.isdisjoint(v))")
            return f"({hit} if type(v) is str else {miss} if type(v) is list else {slow}(v, now))"
        guard, template = _FAST[kind]
        k = self.const(value.search if kind == "regex" else value)
        expr = template.format(k=k)
        if item.negate:
            expr = f"not ({expr})"
        if guard is None:
            return f"({expr})"
        return f"(({expr}) if {guard} else {slow}(v, now))"

    def date_item(self, kind: str, operand: Any, item: Cond, slow: str) -> str:
        """A date comparison, with its own fast paths: an aware datetime (what profile
        documents hold) compares directly with the operand's instant, and a string (a shop's
        own data) through the instant known for that text. A string not seen yet raises
        KeyError and one that is not a date is known as None (comparing it raises TypeError):
        both take the full rules (which parse and remember the text), as naive datetimes and
        dates do."""
        op = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[kind[5:]]
        fixed, resolve = operand  # fixed is None for an operand relative to now
        at = self.const(fixed) if fixed is not None else f"{self.const(resolve)}(now)"
        dt, known = self.const(datetime), self.const(KNOWN_TEXTS)
        aware, text = f"(v {op} {at})", f"({known}[v] {op} {at})"
        if item.negate:
            aware, text = f"(not {aware})", f"(not {text})"
        return (f"({text} if type(v) is str else {aware} if (type(v) is {dt} and v.tzinfo is not None) "
                f"else {slow}(v, now))")

_EARLY = datetime(1970, 1, 2, tzinfo=timezone.utc)
_LATE = datetime(2999, 12, 31, tzinfo=timezone.utc)


def _missing_result(group: FieldGroup) -> bool | None:
    """The group's result when its field is missing, if it does not depend on ``now``.

    Evaluated once with MongoDB's full rules on an empty document (where every path is
    missing); None (evaluate per call) in the unlikely case two instants disagree.
    """
    early, late = group_matches(group, {}, _EARLY), group_matches(group, {}, _LATE)
    return early if early == late else None


def _single(cond: Cond) -> Callable[[Any, Any], bool]:
    """The condition's result for one value found at its path (array expansion included)."""
    test = cond.test
    if cond.negate:
        return lambda v, now: not test(v, now)
    return test


def _children(node: Logical) -> list[Node]:
    """The children to generate, rewritten to an equivalent, cheaper form.

    Single-child ANDs are unwrapped, an AND inside an AND is spliced, and inside an AND the
    conditions on one path are merged into one group, so the path is looked up once.
    """
    out: list[Node] = []
    for child in node.children:
        while isinstance(child, Logical) and child.op == "$and" and len(child.children) == 1:
            child = child.children[0]
        if node.op == "$and" and isinstance(child, Logical) and child.op == "$and":
            out.extend(_children(child))
        else:
            out.append(child)
    if node.op != "$and":
        return out
    merged: list[Node] = []
    by_path: dict[str, int] = {}
    for child in out:
        if isinstance(child, FieldGroup) and child.path in by_path:
            first = merged[by_path[child.path]]
            merged[by_path[child.path]] = FieldGroup(child.path, child.parts, [*first.items, *child.items])  # type: ignore[union-attr]
        else:
            if isinstance(child, FieldGroup):
                by_path[child.path] = len(merged)
            merged.append(child)
    return merged


def _compile(emitter: _Emitter, source: str) -> dict[str, Any]:
    namespace = dict(emitter.namespace)
    # The source holds only names this module generated (see the module docstring).
    exec(compile(source, "<segmint filter>", "exec"), namespace)  # noqa: S102
    return namespace


def build_inner(node: Logical) -> Callable[[Any, Any], bool]:
    """``inner(doc, now)`` for a prepared document (a Mapping) and a normalized ``now``."""
    emitter = _Emitter()
    body = emitter.body(node)
    source = "\n\n".join([*emitter.functions, "def _inner(doc, now):\n" + _indent(body)])
    return _compile(emitter, source)["_inner"]


def _entry_head(emitter: _Emitter, needs_now: bool, prepare: Callable[[Any, Any], tuple[Any, Any]]) -> list[str]:
    """The first lines of a public entry point: build the document from a non-dict (a
    Profile) and normalize ``now`` when some operand is relative to it."""
    emitter.namespace["_prepare"] = prepare
    emitter.namespace["_normalize_now"] = normalize_now
    head = ["if type(doc) is not dict:", "    doc, now = _prepare(doc, now)"]
    if needs_now:
        head += ["elif type(now) is not _datetime or now.tzinfo is not _UTC:",
                 "    now = _normalize_now(now)"]
        emitter.namespace["_datetime"] = datetime
        emitter.namespace["_UTC"] = timezone.utc
    return head


def build_filter_functions(
    node: Logical, needs_now: bool, prepare: Callable[[Any, Any], tuple[Any, Any]]
) -> tuple[Callable[..., bool], Callable[[Any, Any], bool], str]:
    """``(matches(doc, now=None), inner(doc, now), source)`` for a filter tree."""
    emitter = _Emitter()
    head = _entry_head(emitter, needs_now, prepare)
    body = emitter.body(node)
    source = "\n\n".join([
        *emitter.functions,
        "def _inner(doc, now):\n" + _indent(body),
        # Small bodies are inlined into matches() to save a call; big ones are shared.
        "def matches(doc, now=None):\n" + _indent(head + (body if len(body) <= 120 else ["return _inner(doc, now)"])),
    ])
    namespace = _compile(emitter, source)
    return namespace["matches"], namespace["_inner"], source


def build_set_function(
    roots: list[Logical], needs_now: bool, prepare: Callable[[Any, Any], tuple[Any, Any]]
) -> tuple[Callable[..., list[bool]], str]:
    """``(members(doc, now=None) -> [bool per root], source)``: several filters in one function.

    Evaluating every segment of a config is the common batch job (segment snapshots, an
    audience over several segments, ``Segmint.segments``); one function pays the call, the
    document check and the ``now`` normalization once instead of once per filter. Each filter
    keeps its own short-circuiting (``child`` sets ``r``; big subtrees stay functions).
    """
    emitter = _Emitter()
    head = _entry_head(emitter, needs_now, prepare)
    lines, results = [], []
    for root in roots:
        lines += emitter.child(root)
        result = emitter.fresh("_r")
        lines.append(f"{result} = r is True or (r is not False and bool(r))")
        results.append(result)
    lines.append(f"return [{', '.join(results)}]")
    source = "\n\n".join([*emitter.functions, "def members(doc, now=None):\n" + _indent(head + lines)])
    return _compile(emitter, source)["members"], source


def _indent(lines: list[str]) -> str:
    return "\n".join("    " + line for line in lines)
