"""Checks against a FieldCatalog: unknown fields and literals of the wrong type.

Without a catalog every path is allowed (documents are open); with one, a typo or a
placeholder such as ``"yyyy-mm-dd"`` left in a date rule fails when the filter is compiled
instead of silently matching nobody.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import FilterError, suggest
from ..fields import FieldCatalog, FieldDef, FieldType
from ._dates import date_operand
from ._values import is_number

__all__ = ["lookup_field", "check_value", "check_operator"]

_HUMAN = {
    FieldType.NUMBER: "a number",
    FieldType.INTEGER: "a number",
    FieldType.STRING: "a string",
    FieldType.BOOLEAN: "true or false",
    FieldType.DATETIME: "a date (like 2024-05-01, 2024-05-01T10:00:00Z, or today-14d)",
    FieldType.LIST: "a list",
    FieldType.OBJECT: "an object",
}

# Operators that only make sense on some field types (others check their operand values).
_OPERATOR_TYPES = {
    "$size": {FieldType.LIST},
    "$elemMatch": {FieldType.LIST},
    "$regex": {FieldType.STRING, FieldType.LIST},
    "$mod": {FieldType.NUMBER, FieldType.INTEGER},
}


def lookup_field(catalog: FieldCatalog | None, name: str, path: str) -> FieldDef | None:
    if catalog is None:
        return None
    field = catalog.lookup(name)
    if field is None:
        raise FilterError(f"unknown field {name!r}", path, suggestion=catalog.suggest(name))
    return field


def _fits(field: FieldDef, value: Any) -> bool:
    t = field.type
    if t in (FieldType.NUMBER, FieldType.INTEGER):
        return is_number(value)
    if t == FieldType.STRING:
        return isinstance(value, (str, re.Pattern))
    if t == FieldType.BOOLEAN:
        return type(value) is bool
    if t == FieldType.DATETIME:
        return date_operand(value) is not None
    if t == FieldType.OBJECT:
        return isinstance(value, dict)
    return True  # LIST: an element or a whole list; element types are not declared


def check_value(field: FieldDef | None, value: Any, path: str) -> None:
    """A literal compared with ``field`` must be of the field's type (null is always allowed)."""
    if field is None or value is None:
        return
    if not _fits(field, value):
        raise FilterError(
            f"{field.name} is a {field.type.value} field, so the value must be "
            f"{_HUMAN[field.type]}; got {value!r}", path
        )
    if field.choices and isinstance(value, str) and value not in field.choices:
        raise FilterError(
            f"{value!r} is not a value of {field.name}; it is one of {', '.join(field.choices)}",
            path, suggestion=suggest(value, field.choices),
        )


def check_operator(field: FieldDef | None, op: str, path: str) -> None:
    allowed = _OPERATOR_TYPES.get(op)
    if field is None or allowed is None or field.type in allowed:
        return
    kinds = " or ".join(sorted(t.value for t in allowed))
    raise FilterError(f"{op} only applies to {kinds} fields; {field.name} is a {field.type.value} field", path)
