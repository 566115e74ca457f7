"""``Filter.explain``: evaluate every clause (no short-circuit) and keep a readable trace.

This walks the same tree and uses the same predicates and path rules as the generated code
(``_ast.cond_matches``), so the trace and ``matches`` cannot disagree; a property test checks it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ._ast import Cond, FieldGroup, Logical, Node, NotCond, SegmentRef, cond_matches, resolve, value_matches
from ._dates import date_operand
from ._values import MISSING

__all__ = ["Explanation", "explain_node"]

MAX_ELEMENTS_SHOWN = 10
_SYMBOLS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_LOGICAL_LABELS = {"$and": "all of", "$or": "any of", "$nor": "none of"}
_NOT_SHOWN: Any = object()


@dataclass(frozen=True, slots=True)
class Explanation:
    """One clause of a filter evaluated against one document.

    ``str()`` is an indented tree of ✓/✗ lines, for example::

        ✗ all of
          ✓ customer_segment.outbounds_avg_time_delta <= 14 (actual: 9)
          ✗ customer_segment.returns_articles_ratio <= 5 (actual: 12.5)
    """

    matched: bool
    label: str
    op: str | None = None
    path: str | None = None
    operand: Any = None
    actual: Any = _NOT_SHOWN
    children: tuple[Explanation, ...] = ()

    def __str__(self) -> str:
        return "\n".join(self._lines(0))

    def _lines(self, depth: int) -> list[str]:
        line = f"{'  ' * depth}{'✓' if self.matched else '✗'} {self.label}"
        if self.actual is not _NOT_SHOWN:
            line += f" (actual: {_fmt(self.actual)})"
        lines = [line]
        for child in self.children:
            lines += child._lines(depth + 1)
        return lines

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: matched, label, op, path, operand, actual/missing, children."""
        out: dict[str, Any] = {"matched": self.matched, "label": self.label}
        if self.op is not None:
            out["op"] = self.op
        if self.path is not None:
            out["path"] = self.path
            out["operand"] = _jsonable(self.operand)
        if self.actual is not _NOT_SHOWN:
            if self.actual is MISSING:
                out["missing"] = True
            else:
                out["actual"] = _jsonable(self.actual)
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out


def _jsonable(value: Any) -> Any:
    if value is MISSING:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _fmt(value: Any, now: datetime | None = None) -> str:
    if value is MISSING:
        return "missing"
    if isinstance(value, re.Pattern):
        flags = "".join(f for f, bit in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X)) if value.flags & bit)
        return f"/{value.pattern}/{flags}"
    d = date_operand(value) if now is not None else None
    if d is not None and d.relative and now is not None:
        return f"{value} ({d.at(now).isoformat()})"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = json.dumps(_jsonable(value), ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def _describe(cond: Cond | NotCond, now: datetime | None) -> str:
    if isinstance(cond, NotCond):
        return "not (" + " and ".join(_describe(c, now) for c in cond.conds) + ")"
    op, x = cond.op, cond.operand
    if op in _SYMBOLS:
        return f"{_SYMBOLS[op]} {_fmt(x, now)}"
    if op == "$in":
        return f"in {_fmt(x, now)}"
    if op == "$nin":
        return f"not in {_fmt(x, now)}"
    if op == "$exists":
        return "exists" if x else "does not exist"
    if op == "$size":
        return f"has {_fmt(x)} elements"
    if op == "$type":
        return f"has type {_fmt(x)}"
    if op == "$regex":
        return f"matches {_fmt(x)}"
    if op == "$mod":
        return f"divided by {_fmt(x[0])} leaves {_fmt(x[1])}"
    if op == "$all":
        return f"contains {_fmt(x, now)}"
    if op == "$between":
        return f"between {_fmt(x[0], now)} and {_fmt(x[1], now)}"
    if op == "$elemMatch":
        return f"has an element matching {_fmt(x)}"
    return f"{op} {_fmt(x, now)}"


def _actual(values: list[Any], whole: list[Any]) -> Any:
    found = values + whole
    if len(found) == 1:
        return found[0]
    return MISSING if not found else found


def explain_node(node: Node, doc: Any, now: datetime | None) -> Explanation:
    if isinstance(node, Logical):
        children = tuple(explain_node(c, doc, now) for c in node.children)
        if node.implicit and len(children) == 1:
            return children[0]
        hits = [c.matched for c in children]
        matched = all(hits) if node.op == "$and" else any(hits) if node.op == "$or" else not any(hits)
        return Explanation(matched, _LOGICAL_LABELS[node.op], op=node.op, children=children)
    if isinstance(node, SegmentRef):
        child = explain_node(node.target._root, doc, now)
        return Explanation(child.matched, f"segment {node.name!r}", op="$segment", children=(child,))
    return _explain_group(node, doc, now)


def _explain_group(group: FieldGroup, doc: Any, now: datetime | None) -> Explanation:
    values, whole = resolve(doc, group.parts)
    actual = _actual(values, whole)
    items = tuple(_explain_item(group.path, item, values, whole, actual, now) for item in group.items)
    if len(items) == 1:
        return items[0]
    return Explanation(all(i.matched for i in items), f"{group.path}: all of", children=items)


def _explain_item(path: str, item: Cond | NotCond, values: list, whole: list, actual: Any,
                  now: datetime | None) -> Explanation:
    matched = cond_matches(item, values, whole, now)
    children: tuple[Explanation, ...] = ()
    if isinstance(item, Cond) and item.op == "$elemMatch" and type(actual) in (list, tuple):
        children = tuple(_explain_element(item, i, e, now) for i, e in enumerate(actual[:MAX_ELEMENTS_SHOWN]))
    return Explanation(matched, f"{path} {_describe(item, now)}", op=item.op, path=path,
                       operand=item.operand, actual=actual, children=children)


def _explain_element(cond: Cond, index: int, element: Any, now: datetime | None) -> Explanation:
    if cond.sub is not None:
        if not isinstance(element, Mapping):
            return Explanation(False, f"element {index} is not an object", actual=element)
        inner = explain_node(cond.sub, element, now)
        return Explanation(inner.matched, f"element {index}", children=(inner,))
    ok = value_matches(cond.sub_conds or [], element, now)
    return Explanation(ok, f"element {index}", actual=element)
