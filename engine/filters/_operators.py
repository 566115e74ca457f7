"""Field operators: check each operand and build its ``Cond`` (see ``_predicates.py``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import FilterError, suggest
from ..fields import FieldDef, FieldType
from ._ast import Cond, Node, NotCond, value_matches
from ._dates import date_operand
from ._names import VALUE_OPERATORS
from ._predicates import between_predicate, cmp_predicate, eq_predicate, in_predicate, needs_now, regex_predicate
from ._regex import compile_regex
from ._spec import check_duplicates
from ._values import MISSING, NUMBER_CODES, TYPE_NAMES, bson_compare, bracket, is_number, type_code

if TYPE_CHECKING:
    from ._parse import Parser

__all__ = ["OperatorBuilder"]

_CMP = ("$gt", "$gte", "$lt", "$lte")


def _is_regex_literal(value: Any) -> bool:
    return isinstance(value, re.Pattern) or (
        isinstance(value, Mapping) and "$regex" in value and set(value) <= {"$regex", "$options"}
    )


class OperatorBuilder:
    def __init__(
        self,
        parser: Parser,
        custom: Mapping[str, Callable[[Any, str], Callable[[Any], bool]]],
        build_inner: Callable[[Node], Callable[[Any, Any], bool]],
    ) -> None:
        self.parser = parser
        self.custom = custom
        self.build_inner = build_inner

    def _literal(self, value: Any, fdef: FieldDef | None, path: str, depth: int) -> Any:
        self.parser.budget.literal(value, path, depth)
        self.parser.check_value(fdef, value, path)
        if needs_now(value):
            self.parser.needs_now = True
        return value

    def _regex(self, value: Any, path: str) -> re.Pattern[str]:
        if isinstance(value, re.Pattern):
            return compile_regex(value, None, path)
        check_duplicates(value, path)
        return compile_regex(value["$regex"], value.get("$options"), path)

    def equality(self, op: str, value: Any, fdef: FieldDef | None, path: str, depth: int, negate: bool = False) -> Cond:
        if isinstance(value, re.Pattern):
            pattern = self._regex(value, path)
            return Cond(op, value, regex_predicate(pattern), negate=negate, fast=("regex", pattern))
        value = self._literal(value, fdef, path, depth)
        p, fast = eq_predicate(value)
        return Cond(op, value, p, negate=negate, fast=fast, needs_now=needs_now(value))

    def build(
        self, op: str, operand: Any, fdef: FieldDef | None, path: str, depth: int, options: Any
    ) -> list[Cond | NotCond]:
        if op == "$eq":
            return [self.equality(op, operand, fdef, path, depth)]
        if op == "$ne":
            return [self.equality(op, operand, fdef, path, depth, negate=True)]
        if op in _CMP:
            value = self._literal(operand, fdef, path, depth)
            p, fast = cmp_predicate(op, value)
            return [Cond(op, value, p, fast=fast, needs_now=needs_now(value))]
        if op in ("$in", "$nin"):
            return [self._in(op, operand, fdef, path, depth)]
        if op == "$exists":
            if not (operand is None or isinstance(operand, (bool, int, float))):
                raise FilterError("$exists needs true or false", path)
            present = bool(operand)
            return [Cond(op, present, lambda v, now: v is not MISSING, expands=False,
                         negate=not present, fast=("const", True))]
        if op == "$not":
            return [self._not(operand, fdef, path, depth)]
        if op == "$all":
            return self._all(operand, fdef, path, depth)
        if op == "$size":
            if not is_number(operand) or operand != int(operand) or operand < 0:
                raise FilterError("$size needs a whole number of elements, like 3", path)
            n = int(operand)
            return [Cond(op, operand, lambda v, now: type(v) in (list, tuple) and len(v) == n, expands=False)]
        if op == "$elemMatch":
            return [self._elem_match(operand, path, depth)]
        if op == "$regex":
            pattern = self._regex({"$regex": operand, "$options": options}, path)
            return [Cond(op, pattern, regex_predicate(pattern), fast=("regex", pattern))]
        if op == "$mod":
            return [self._mod(operand, path)]
        if op == "$type":
            return [self._type(operand, path)]
        if op == "$between":
            return [self._between(operand, fdef, path, depth)]
        if op in self.custom:
            return [self._custom(op, operand, path)]
        known = [o for o in VALUE_OPERATORS if o != "$options"] + list(self.custom)
        raise FilterError(f"unknown operator {op!r}", path, suggestion=suggest(op, known))

    def _in(self, op: str, operand: Any, fdef: FieldDef | None, path: str, depth: int) -> Cond:
        if not isinstance(operand, (list, tuple)):
            raise FilterError(f'{op} needs a list of values, like {{"{op}": ["a", "b"]}}', path)
        values: list[Any] = []
        regexes: list[re.Pattern[str]] = []
        now_dependent = False
        for i, item in enumerate(operand):
            ipath = f"{path}[{i}]"
            if _is_regex_literal(item):
                regexes.append(self._regex(item, ipath))
            elif isinstance(item, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in item):
                raise FilterError(f"{op} takes plain values (or {{\"$regex\": ...}}), not operators", ipath)
            else:
                values.append(self._literal(item, fdef, ipath, depth + 1))
                now_dependent = now_dependent or needs_now(item)
        p, fast = in_predicate(values, regexes)
        return Cond(op, list(operand), p, negate=op == "$nin", fast=fast, needs_now=now_dependent)

    def _not(self, operand: Any, fdef: FieldDef | None, path: str, depth: int) -> NotCond:
        if isinstance(operand, re.Pattern):
            pattern = self._regex(operand, path)
            return NotCond([Cond("$regex", pattern, regex_predicate(pattern))], operand)
        if not isinstance(operand, Mapping) or not operand:
            raise FilterError('$not needs operators, like {"$not": {"$gt": 5}}', path)
        if not self.parser.is_operator_object(operand, path):
            raise FilterError('$not needs operators, like {"$not": {"$gt": 5}}, not a plain value', path)
        return NotCond(self.parser.operator_object(operand, fdef, path, depth), operand)

    def _all(self, operand: Any, fdef: FieldDef | None, path: str, depth: int) -> list[Cond | NotCond]:
        if not isinstance(operand, (list, tuple)):
            raise FilterError('$all needs a list of values, like {"$all": ["a", "b"]}', path)
        if not operand:  # MongoDB: an empty $all matches nothing
            return [Cond("$all", [], lambda v, now: False)]
        conds: list[Cond | NotCond] = []
        list_field = fdef is not None and fdef.type == FieldType.LIST
        for i, item in enumerate(operand):
            ipath = f"{path}[{i}]"
            if isinstance(item, Mapping) and set(item) == {"$elemMatch"}:
                conds.append(self._elem_match(item["$elemMatch"], f"{ipath}.$elemMatch", depth + 1))
            else:
                cond = self.equality("$all", item, None if list_field else fdef, ipath, depth + 1)
                conds.append(cond)
        return conds

    def _elem_match(self, operand: Any, path: str, depth: int) -> Cond:
        if not isinstance(operand, Mapping):
            raise FilterError('$elemMatch needs an object, like {"$elemMatch": {"sku": "A1"}}', path)
        keys = [k for k in operand if isinstance(k, str)]
        value_form = bool(keys) and all(k.startswith("$") and k not in ("$and", "$or", "$nor", "$segment") for k in keys)
        if value_form:
            conds = self.parser.operator_object(operand, None, path, depth)
            return Cond("$elemMatch", operand, lambda v, now: type(v) in (list, tuple) and any(
                value_matches(conds, e, now) for e in v), expands=False, sub_conds=conds)
        catalog, self.parser.catalog = self.parser.catalog, None  # element fields are not catalogued
        try:
            sub = self.parser.filter(operand, path, depth + 1)
        finally:
            self.parser.catalog = catalog
        inner = self.build_inner(sub)

        def p(v: Any, now: Any) -> bool:
            if type(v) not in (list, tuple):
                return False
            for e in v:
                if isinstance(e, Mapping):
                    if inner(e, now):
                        return True
                elif type(e) in (list, tuple) and inner({str(i): x for i, x in enumerate(e)}, now):
                    return True  # MongoDB sees a nested array as an object with keys "0", "1", ...
            return False

        return Cond("$elemMatch", operand, p, expands=False, sub=sub)

    def _mod(self, operand: Any, path: str) -> Cond:
        if (not isinstance(operand, (list, tuple)) or len(operand) != 2
                or not all(is_number(x) and math.isfinite(x) for x in operand)):
            raise FilterError('$mod needs [divisor, remainder], like {"$mod": [4, 0]}', path)
        divisor, remainder = int(operand[0]), int(operand[1])  # MongoDB truncates toward zero
        if divisor == 0:
            raise FilterError("$mod cannot divide by zero", path)

        def p(v: Any, now: Any) -> bool:
            if not is_number(v) or not math.isfinite(v):
                return False
            n = int(v)
            r = abs(n) % abs(divisor)  # C-style remainder: the sign follows the dividend
            return (-r if n < 0 else r) == remainder

        return Cond("$mod", list(operand), p)

    def _type(self, operand: Any, path: str) -> Cond:
        names = operand if isinstance(operand, (list, tuple)) else [operand]
        if not names:
            raise FilterError("$type needs at least one type name", path)
        codes: set[int] = set()
        for name in names:
            if isinstance(name, str):
                if name == "number":
                    codes |= NUMBER_CODES
                elif name in TYPE_NAMES:
                    codes.add(TYPE_NAMES[name])
                else:
                    raise FilterError(f"unknown type {name!r}", path,
                                      suggestion=suggest(name, [*TYPE_NAMES, "number"]))
            elif is_number(name) and math.isfinite(name) and name == int(name) and int(name) in TYPE_NAMES.values():
                codes.add(int(name))
            else:
                raise FilterError(f"unknown type {name!r}; use a name like \"string\" or a BSON type code", path)
        frozen = frozenset(codes)
        return Cond("$type", operand, lambda v, now: type_code(v) in frozen)

    def _between(self, operand: Any, fdef: FieldDef | None, path: str, depth: int) -> Cond:
        if not isinstance(operand, (list, tuple)) or len(operand) != 2 or None in operand:
            raise FilterError('$between needs [low, high], like {"$between": [80, 120]}', path)
        lo = self._literal(operand[0], fdef, f"{path}[0]", depth + 1)
        hi = self._literal(operand[1], fdef, f"{path}[1]", depth + 1)
        dlo, dhi = date_operand(lo), date_operand(hi)
        if (dlo is None) != (dhi is None) or (dlo is None and bracket(lo) != bracket(hi)):
            raise FilterError("the two bounds of $between must be of the same kind", path)
        if dlo is None and bson_compare(lo, hi) > 0:
            raise FilterError(f"$between bounds are reversed: {lo!r} is above {hi!r}", path)
        if dlo is not None and dhi is not None and dlo.fixed and dhi.fixed and dlo.fixed > dhi.fixed:
            raise FilterError(f"$between bounds are reversed: {lo!r} is after {hi!r}", path)
        return Cond("$between", [lo, hi], between_predicate(lo, hi), needs_now=needs_now(lo) or needs_now(hi))

    def _custom(self, op: str, operand: Any, path: str) -> Cond:
        try:
            predicate = self.custom[op](operand, path)
        except FilterError as exc:
            raise FilterError(exc.message, path if exc.path == "$" else exc.path, exc.suggestion) from None
        except (ValueError, TypeError) as exc:
            raise FilterError(f"{op}: {exc}", path) from None
        if not callable(predicate):
            raise FilterError(f"{op}: the operator's factory did not return a predicate", path)
        return Cond(op, operand, lambda v, now: v is not MISSING and bool(predicate(v)))
