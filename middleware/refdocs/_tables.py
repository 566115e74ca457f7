"""Markdown tables of msgspec structs: each field's name, type, default and meaning.

Everything shown is read from the struct: types and bounds from ``msgspec.inspect``,
meanings from ``Meta(description=...)``. A field without a description is an error, so a
new field cannot reach the docs unexplained.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import msgspec.inspect as mi

__all__ = ["FieldDoc", "struct_fields", "type_text", "description", "default_text", "table", "docstring", "field_list",
           "json_block"]

_RST_CODE = re.compile(r"``([^`]+)``")


class FieldDoc(msgspec.Struct, frozen=True):
    """One row: what a reader needs to know of a field."""

    name: str
    type: str
    default: str
    meaning: str
    #: The field's struct when it holds one or a list of them (documented in its own table).
    nested: type | None = None


def docstring(obj: Any) -> str:
    """``obj``'s docstring, dedented, with reST ````code```` turned into markdown `code`."""
    return _RST_CODE.sub(r"`\1`", inspect.getdoc(obj) or "")


def field_list(obj: Any, kind: str) -> dict[str, str]:
    """The ``:kind name: text`` fields of ``obj``'s docstring (continuation lines indented)."""
    found: dict[str, str] = {}
    current: str | None = None
    for line in docstring(obj).splitlines():
        match = re.match(rf"^:{kind} (\w+):\s*(.*)$", line)
        if match:
            current = match[1]
            found[current] = match[2]
        elif current and line.startswith(" ") and line.strip():
            found[current] += " " + line.strip()
        else:
            current = None
    return found


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else str(value)


def _bounds(lo: Any, lo_strict: Any, hi: Any, hi_strict: Any, unit: str = "") -> str:
    if lo is not None and hi is not None:
        return f" {_num(lo)}-{_num(hi)}{unit}"
    parts = []
    if lo is not None or lo_strict is not None:
        parts.append(f">= {_num(lo)}" if lo is not None else f"> {_num(lo_strict)}")
    if hi is not None or hi_strict is not None:
        parts.append(f"<= {_num(hi)}" if hi is not None else f"< {_num(hi_strict)}")
    return (" " + ", ".join(parts) + unit) if parts else ""


def type_text(t: mi.Type) -> str:
    """A reader's name for a msgspec type: ``string, 1-128 chars``, ``list of objects, <= 500``."""
    if isinstance(t, mi.Metadata):
        return type_text(t.type)
    if isinstance(t, mi.UnionType):
        return " or ".join(type_text(m) for m in t.types if not isinstance(m, mi.NoneType))
    if isinstance(t, mi.StrType):
        if t.min_length == 1 and t.max_length is None:
            return "non-empty string"
        length = _bounds(t.min_length, None, t.max_length, None, " chars")
        return "string" + ("," + length if length else "")
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, (mi.IntType, mi.FloatType)):
        name = "integer" if isinstance(t, mi.IntType) else "number"
        return name + _bounds(t.ge, t.gt, t.le, t.lt)
    if isinstance(t, mi.DateTimeType):
        return "date or time ([forms](config.md#dates))"
    if isinstance(t, (mi.ListType, mi.VarTupleType)):
        item, _, detail = type_text(t.item_type).partition(", ")
        if t.min_length == 1 and t.max_length is None:
            return f"non-empty list of {item}s" + (f" ({detail} each)" if detail else "")
        length = _bounds(t.min_length, None, t.max_length, None, " items")
        return f"list of {item}s" + (f" ({detail} each)" if detail else "") + ("," + length if length else "")
    if isinstance(t, (mi.StructType, mi.DictType, mi.TypedDictType, mi.DataclassType)):
        return "object"
    if isinstance(t, mi.AnyType):
        return "any"
    raise TypeError(f"no reader's name for {t!r}: teach type_text about it")


def _nested(t: mi.Type) -> type | None:
    if isinstance(t, mi.Metadata):
        return _nested(t.type)
    if isinstance(t, mi.UnionType):
        return next((n for n in map(_nested, t.types) if n is not None), None)
    if isinstance(t, (mi.ListType, mi.VarTupleType)):
        return _nested(t.item_type)
    if isinstance(t, mi.StructType):
        return t.cls
    return None


def description(t: mi.Type) -> str | None:
    """The ``Meta(description=...)`` of a field's type, if any."""
    while isinstance(t, mi.Metadata):
        text = (t.extra_json_schema or {}).get("description")
        if text:
            return text
        t = t.type
    return None


def default_text(field: mi.Field, *, none: str = "none") -> str:
    """``required``, ``none`` (may be left out) or the default as JSON (`` `"/"` ``, `` `[]` ``)."""
    if field.required:
        return "required"
    value = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
    if value is None:
        return none
    return f"`{msgspec.json.encode(value).decode()}`"


def struct_fields(cls: type, *, inherit_from: type | None = None) -> list[FieldDoc]:
    """A ``FieldDoc`` per field of struct ``cls``, in declaration order.

    A field without a description takes the one ``inherit_from`` (a base struct) gives it;
    raises ``ValueError`` when it has none at all.
    """
    base = {f.name: f for f in mi.type_info(inherit_from).fields} if inherit_from else {}
    docs = []
    for f in mi.type_info(cls).fields:
        meaning = description(f.type) or (description(base[f.name].type) if f.name in base else None)
        if not meaning:
            raise ValueError(f"{cls.__qualname__}.{f.name} has no Meta(description=...): say what it means")
        docs.append(FieldDoc(f.encode_name, type_text(f.type), default_text(f), _code(meaning), _nested(f.type)))
    return docs


def _code(text: str) -> str:
    return _RST_CODE.sub(r"`\1`", text).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def json_block(value: Any) -> list[str]:
    """A fenced JSON block, keys in the order the code produced them."""
    return ["```json", json.dumps(value, indent=2, ensure_ascii=False), "```"]
