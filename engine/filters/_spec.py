"""Reading a filter spec: JSON text (refusing keys given twice), literal checks and limits."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from ..errors import FilterError

__all__ = ["load_spec", "DuplicateKeys", "Budget", "check_duplicates", "MAX_DEPTH", "MAX_CLAUSES"]

MAX_DEPTH = 32
MAX_CLAUSES = 1000
MAX_LITERAL_VALUES = 10_000


class DuplicateKeys(dict):  # type: ignore[type-arg]
    """A JSON object that named a key twice; the compiler reports it with its path."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.duplicate = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return DuplicateKeys(pairs, key)
        seen.add(key)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise FilterError(f"not valid JSON: {name} is not a JSON number")


def load_spec(spec: Any) -> Any:
    """The spec as Python values; JSON text is parsed with duplicate keys kept visible."""
    if isinstance(spec, (bytes, bytearray, memoryview)):
        try:
            spec = bytes(spec).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FilterError(f"not valid JSON: the text is not UTF-8 ({exc.reason})") from None
    if isinstance(spec, str):
        try:
            spec = json.loads(spec, object_pairs_hook=_pairs, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise FilterError(
                f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise FilterError(f"the filter is nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    if not isinstance(spec, Mapping):
        raise FilterError(
            'a filter must be a JSON object, like {"orders.count": {"$gte": 2}}; '
            f"got {type(spec).__name__}"
        )
    return spec


def check_duplicates(obj: Any, path: str) -> None:
    if isinstance(obj, DuplicateKeys):
        raise FilterError(
            f"the key {obj.duplicate!r} appears twice in one object; JSON would silently keep "
            "only the last one, changing the rule", f"{path}.{obj.duplicate}"
        )


class Budget:
    """Counts clauses and literal values so a huge filter fails at compile time."""

    def __init__(self) -> None:
        self.clauses = 0
        self.values = 0

    def clause(self, path: str) -> None:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise FilterError(f"the filter is too large: more than {MAX_CLAUSES} conditions", path)

    def check_depth(self, depth: int, path: str) -> None:
        if depth > MAX_DEPTH:
            raise FilterError(f"the filter is nested too deeply (the limit is {MAX_DEPTH} levels)", path)

    def literal(self, value: Any, path: str, depth: int) -> None:
        """A literal operand: JSON-like values only, no NaN, within the depth and size limits."""
        self.check_depth(depth, path)
        self.values += 1
        if self.values > MAX_LITERAL_VALUES:
            raise FilterError(f"the filter is too large: more than {MAX_LITERAL_VALUES} literal values", path)
        if value is None or isinstance(value, (bool, int, str, date)):
            return
        if isinstance(value, float):
            if math.isnan(value):
                raise FilterError("NaN (not a number) cannot be used as a value", path)
            return
        if isinstance(value, Mapping):
            check_duplicates(value, path)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise FilterError(f"object keys must be strings, got {key!r}", path)
                self.literal(item, f"{path}.{key}", depth + 1)
            return
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                self.literal(item, f"{path}[{i}]", depth + 1)
            return
        if isinstance(value, re.Pattern):
            raise FilterError("a regular expression cannot be nested inside a value", path)
        raise FilterError(f"a {type(value).__name__} cannot be used in a filter; use JSON values", path)
