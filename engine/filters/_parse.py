"""Spec -> validated tree: where each operator may go, what operand it takes, and the limits.

Every error is a FilterError naming the place in the filter (``$.$and[1].orders.count.$gte``)
in words a merchandiser can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import FilterError, suggest
from ..fields import FieldCatalog, FieldDef
from ._ast import Cond, FieldGroup, Logical, Node, NotCond, SegmentRef
from ._catalog import check_operator, check_value, lookup_field
from ._names import LOGICAL, NEVER_CODE, UNSUPPORTED, VALUE_OPERATORS
from ._operators import OperatorBuilder
from ._spec import Budget, check_duplicates

__all__ = ["Parser"]

SegmentResolver = Callable[[str, str], Any]


def _unsupported(op: str, path: str) -> FilterError:
    if op in NEVER_CODE:
        return FilterError(f"{op} is not supported (segmint never evaluates code)", path)
    return FilterError(f"{op} is not supported by segmint filters", path)


class Parser:
    """One parse of one spec; collects whether any operand depends on ``now``."""

    def __init__(
        self,
        *,
        catalog: FieldCatalog | None,
        operators: Mapping[str, Callable[[Any, str], Callable[[Any], bool]]],
        resolve_segment: SegmentResolver | None,
        build_inner: Callable[[Node], Callable[[Any, Any], bool]],
    ) -> None:
        self.catalog = catalog
        self.budget = Budget()
        self.resolve_segment = resolve_segment
        self.needs_now = False
        self.ops = OperatorBuilder(self, operators, build_inner)

    # -- filter level: fields, $and/$or/$nor, $segment ------------------------------------

    def filter(self, spec: Any, path: str, depth: int) -> Logical:
        self.budget.check_depth(depth, path)
        if not isinstance(spec, Mapping):
            raise FilterError(
                f"each condition must be an object like {{\"field\": value}}; got {spec!r}", path
            )
        check_duplicates(spec, path)
        children: list[Node] = []
        for key, value in spec.items():
            if not isinstance(key, str):
                raise FilterError(f"field names must be strings, got {key!r}", path)
            kpath = f"{path}.{key}"
            if not key.startswith("$"):
                children.append(self.field(key, value, kpath, depth))
            elif key in LOGICAL:
                children.append(self.logical(key, value, kpath, depth))
            elif key == "$segment":
                children.append(self.segment(value, kpath))
            elif key == "$comment":
                if not isinstance(value, str):
                    raise FilterError("$comment must be a string", kpath)
            else:
                raise self.misplaced(key, kpath)
        return Logical("$and", children, implicit=True)

    def misplaced(self, op: str, path: str) -> FilterError:
        if op in NEVER_CODE or op in UNSUPPORTED:
            return _unsupported(op, path)
        if op in VALUE_OPERATORS or op in self.ops.custom:
            return FilterError(
                f"{op} compares a field, so it must be inside one, like "
                f'{{"orders.count": {{"{op}": ...}}}}; it cannot stand alone', path
            )
        # At this level a combining operator is the likelier intent than a field operator.
        suggestion = suggest(op, [*LOGICAL, "$segment", "$comment"]) or suggest(
            op, [*VALUE_OPERATORS, *self.ops.custom]
        )
        return FilterError(f"unknown operator {op!r}", path, suggestion=suggestion)

    def logical(self, op: str, value: Any, path: str, depth: int) -> Logical:
        if not isinstance(value, list):
            raise FilterError(f"{op} needs a list of conditions, like {{\"{op}\": [{{...}}, {{...}}]}}", path)
        if not value:
            raise FilterError(f"{op} needs at least one condition; an empty list is not allowed", path)
        self.budget.clause(path)
        children: list[Node] = [
            self.filter(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)
        ]
        return Logical(op, children)

    def segment(self, value: Any, path: str) -> SegmentRef:
        if not isinstance(value, str) or not value:
            raise FilterError('$segment needs the name of a segment, like {"$segment": "vip"}', path)
        if self.resolve_segment is None:
            raise FilterError(
                f"$segment {value!r} cannot be used here: no named segments were given", path
            )
        self.budget.clause(path)
        target = self.resolve_segment(value, path)
        self.needs_now = self.needs_now or target.needs_now
        return SegmentRef(value, target)

    # -- field level ------------------------------------------------------------------------

    def field(self, name: str, value: Any, path: str, depth: int) -> FieldGroup:
        parts = tuple(name.split("."))
        if any(not part for part in parts):
            raise FilterError(f"the field name {name!r} has an empty part", path)
        fdef = lookup_field(self.catalog, name, path)
        items = self.conditions(name, value, fdef, path, depth)
        return FieldGroup(name, parts, items)

    def conditions(
        self, name: str, value: Any, fdef: FieldDef | None, path: str, depth: int
    ) -> list[Cond | NotCond]:
        """The conditions of ``{"field": value}``: an operator object, or implicit equality."""
        if self.is_operator_object(value, path):
            return self.operator_object(value, fdef, path, depth)
        self.budget.clause(path)
        return [self.ops.equality("$eq", value, fdef, path, depth)]

    def is_operator_object(self, value: Any, path: str) -> bool:
        if not isinstance(value, Mapping) or not value:
            return False
        dollars = [isinstance(k, str) and k.startswith("$") for k in value]
        if all(dollars):
            return True
        if any(dollars):
            raise FilterError(
                "an object mixes operators ($...) and field names; put each field in its own condition",
                path,
            )
        return False

    def operator_object(
        self, obj: Mapping[str, Any], fdef: FieldDef | None, path: str, depth: int
    ) -> list[Cond | NotCond]:
        self.budget.check_depth(depth + 1, path)
        check_duplicates(obj, path)
        if "$options" in obj and "$regex" not in obj:
            raise FilterError("$options only goes together with $regex", f"{path}.$options")
        items: list[Cond | NotCond] = []
        for op, operand in obj.items():
            if op == "$options":
                continue
            opath = f"{path}.{op}"
            if op in LOGICAL or op in ("$segment", "$comment"):
                raise FilterError(
                    f"{op} combines whole conditions, so it cannot be used inside a field; "
                    f'write {{"{op}": [{{"field": ...}}, ...]}} around the conditions instead', opath
                )
            if op in NEVER_CODE or op in UNSUPPORTED:
                raise _unsupported(op, opath)
            check_operator(fdef, op, opath)
            self.budget.clause(opath)
            items.extend(self.ops.build(op, operand, fdef, opath, depth + 1, obj.get("$options")))
        return items

    def check_value(self, fdef: FieldDef | None, value: Any, path: str) -> None:
        check_value(fdef, value, path)
