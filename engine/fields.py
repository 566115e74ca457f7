"""The field catalog: every field a segment rule may test, with its type and meaning.

One table (``field_table.py``) feeds three things: the filter compiler's checks (an unknown
field gets a "did you mean", a literal of the wrong type is rejected), the generated docs
(``docs/fields.md``) and ``segmint explain``. Plugins add fields through the
``segmint_field_catalog`` hook.

A field name may contain ``*`` as one whole dotted segment, standing for any key of a map:
``category.items.*`` covers ``category.items.skincare``. An alias (``alias_of``) names the
same value under the name another tool uses (``customer_segment.outbounds_value_total`` is
``spend.total``); the profile document carries both spellings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import suggest

__all__ = ["FieldType", "FieldDef", "FieldCatalog"]


class FieldType(str, enum.Enum):
    NUMBER = "number"      # int or float
    INTEGER = "integer"    # whole numbers only
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "datetime"  # an instant: datetime in documents, ISO-8601 or relative in filters
    LIST = "list"          # an array (of strings unless the doc says otherwise)
    OBJECT = "object"      # a map; its keys are usually covered by a ``prefix.*`` field


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: FieldType
    doc: str
    alias_of: str | None = None
    #: Allowed values for string fields with a closed set (e.g. ``high``/``mid``/``low``).
    choices: tuple[str, ...] | None = None


class FieldCatalog:
    """An immutable lookup table of fields, resolving aliases and ``*`` segments.

    >>> cat = FieldCatalog([FieldDef("spend.total", FieldType.NUMBER, "Total spend"),
    ...                     FieldDef("category.items.*", FieldType.INTEGER, "Items per category")])
    >>> cat.lookup("category.items.skincare").type
    <FieldType.INTEGER: 'integer'>
    >>> cat.suggest("spend.totl")
    'spend.total'
    """

    def __init__(self, fields: Iterable[FieldDef] = ()) -> None:
        self._exact: dict[str, FieldDef] = {}
        self._patterns: list[tuple[tuple[str, ...], FieldDef]] = []
        for field in fields:
            self._add(field)

    def _add(self, field: FieldDef) -> None:
        if field.name in self._exact or any(f.name == field.name for _, f in self._patterns):
            raise ValueError(f"field {field.name!r} is defined twice")
        if "*" in field.name.split("."):
            self._patterns.append((tuple(field.name.split(".")), field))
        else:
            self._exact[field.name] = field

    def extend(self, fields: Iterable[FieldDef]) -> FieldCatalog:
        """A new catalog with ``fields`` added (a name defined twice is an error)."""
        return FieldCatalog([*self, *fields])

    def __iter__(self) -> Iterator[FieldDef]:
        yield from self._exact.values()
        for _, field in self._patterns:
            yield field

    def __len__(self) -> int:
        return len(self._exact) + len(self._patterns)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.lookup(path) is not None

    def lookup(self, path: str) -> FieldDef | None:
        """The definition covering ``path`` (an alias returns its own entry), or None.

        A path *inside* an object field (``extra.score`` under an ``extra`` OBJECT field with
        no pattern) is not covered: declare a ``prefix.*`` pattern for open maps.
        """
        found = self._exact.get(path)
        if found is not None:
            return found
        parts = path.split(".")
        for pattern, field in self._patterns:
            if len(pattern) == len(parts) and all(p == "*" or p == q for p, q in zip(pattern, parts)):
                return field
        return None

    def canonical(self, path: str) -> str | None:
        """The canonical name of ``path`` (following ``alias_of``), or None if unknown."""
        field = self.lookup(path)
        if field is None:
            return None
        return field.alias_of or path

    def suggest(self, path: str) -> str | None:
        """The closest known field name to ``path`` (``errors.suggest``), else the one field with
        the same last segment, for "did you mean" messages."""
        names = list(self._exact) + [f.name for _, f in self._patterns]
        if close := suggest(path, names):
            return close
        # A wrong prefix with the right last segment ("orders.total" -> "spend.total").
        tail = path.rsplit(".", 1)[-1]
        same_tail = [n for n in names if n.rsplit(".", 1)[-1] == tail]
        return same_tail[0] if len(same_tail) == 1 else None
