"""The public entry points: ``compile_filter``, ``compile_segments`` and ``Filter``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..errors import FilterError, suggest
from ..fields import FieldCatalog
from ._ast import FieldGroup, Logical, SegmentRef
from ._codegen import build_filter_functions, build_inner, build_set_function
from ._dates import normalize_now
from ._explain import Explanation, explain_node
from ._names import BUILTIN_OPERATORS
from ._parse import Parser
from ._spec import load_spec

__all__ = ["Filter", "FilterSet", "compile_filter", "compile_segments", "OperatorFactory"]

OperatorFactory = Callable[[Any, str], Callable[[Any], bool]]


def _prepare(doc: Any, now: Any) -> tuple[Mapping[str, Any], datetime]:
    """The document to match and the normalized ``now`` (a profile builds its document at now)."""
    now = normalize_now(now)
    build = getattr(doc, "__segmint_document__", None)
    if build is not None:
        doc = build(now)
    if not isinstance(doc, Mapping):
        raise TypeError(
            f"a filter matches a mapping or an object with __segmint_document__, not {type(doc).__name__}"
        )
    return doc, now


class Filter:
    """A compiled filter. Build it with ``compile_filter``; it is immutable and thread-safe.

    >>> f = compile_filter({"orders.count": {"$gte": 2}})
    >>> f.matches({"orders": {"count": 3}})
    True
    """

    def __init__(self, spec: Mapping[str, Any], root: Any, needs_now: bool) -> None:
        self.spec = spec
        self._root = root
        #: True when an operand is relative (``now-14d``): results depend on ``now``.
        self.needs_now = needs_now
        #: The top-level document keys this filter reads (through ``$segment`` too): a
        #: document with just these (``profile_document(..., only=f.fields)``) decides it.
        self.fields: frozenset[str] = frozenset(_top_level_fields(root))
        matches, inner, source = build_filter_functions(root, needs_now, _prepare)
        self._inner = inner
        self._source = source
        self.matches = matches  # type: ignore[method-assign]  # the generated function itself

    def matches(self, doc: Any, now: datetime | None = None) -> bool:  # replaced per instance
        """Does ``doc`` (a mapping, or an object with ``__segmint_document__(now)``) match?

        ``now`` (default: the current UTC time) resolves relative dates such as ``now-14d``.
        """
        raise NotImplementedError  # pragma: no cover - __init__ installs the compiled function

    def explain(self, doc: Any, now: datetime | None = None) -> Explanation:
        """Evaluate every clause against ``doc`` and return the trace (``str()`` it to read it)."""
        doc, now = _prepare(doc, now)
        return explain_node(self._root, doc, now)

    def __repr__(self) -> str:
        return f"Filter({self.spec!r})"


class FilterSet:
    """Several compiled filters evaluated together: ``members(doc, now)`` is the list of
    ``filters[name].matches(doc, now)`` in ``names`` order, from one generated function.

    Built for the jobs that test every segment on every profile (segment snapshots, an
    audience over several segments): one call per document instead of one per filter.

    >>> segments = compile_segments({"buyers": {"orders.count": {"$gte": 1}},
    ...                              "big": {"$and": [{"$segment": "buyers"}, {"spend.total": {"$gte": 100}}]}})
    >>> both = FilterSet(segments)
    >>> both.names, both.members({"orders": {"count": 2}, "spend": {"total": 50.0}})
    (('buyers', 'big'), [True, False])
    """

    def __init__(self, filters: Mapping[str, Filter]) -> None:
        self.names: tuple[str, ...] = tuple(filters)
        self.filters = dict(filters)
        #: The top-level document keys any of the filters reads.
        self.fields: frozenset[str] = frozenset().union(*(f.fields for f in self.filters.values()))
        members, source = build_set_function([f._root for f in self.filters.values()],
                                             any(f.needs_now for f in self.filters.values()), _prepare)
        self._source = source
        self.members = members  # type: ignore[method-assign]  # the generated function itself

    def members(self, doc: Any, now: datetime | None = None) -> list[bool]:  # replaced per instance
        """Whether ``doc`` matches each filter, in ``names`` order."""
        raise NotImplementedError  # pragma: no cover - __init__ installs the compiled function

    def matching(self, doc: Any, now: datetime | None = None) -> list[str]:
        """The names of the filters ``doc`` matches."""
        return [name for name, hit in zip(self.names, self.members(doc, now)) if hit]

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"FilterSet({list(self.names)!r})"


def _top_level_fields(node: Any) -> set[str]:
    if isinstance(node, FieldGroup):
        return {node.parts[0]}
    if isinstance(node, SegmentRef):
        return set(node.target.fields)
    if isinstance(node, Logical):
        return set().union(*(_top_level_fields(child) for child in node.children))
    return set()


def _check_operators(operators: Mapping[str, OperatorFactory] | None) -> Mapping[str, OperatorFactory]:
    if not operators:
        return {}
    for name, factory in operators.items():
        if not isinstance(name, str) or not name.startswith("$") or not name[1:].isidentifier():
            raise FilterError(f"an operator name must look like $name, got {name!r}")
        if name in BUILTIN_OPERATORS:
            raise FilterError(f"the operator {name} clashes with a built-in operator", "$")
        if not callable(factory):
            raise FilterError(f"the factory of operator {name} is not callable")
    return operators


def _compile(
    spec: Any,
    catalog: FieldCatalog | None,
    operators: Mapping[str, OperatorFactory],
    resolve_segment: Callable[[str, str], Filter] | None,
) -> Filter:
    loaded = load_spec(spec)
    parser = Parser(catalog=catalog, operators=operators, resolve_segment=resolve_segment, build_inner=build_inner)
    root = parser.filter(loaded, "$", 0)
    return Filter(loaded, root, parser.needs_now)


def compile_filter(
    spec: Mapping[str, Any] | str | bytes,
    *,
    catalog: FieldCatalog | None = None,
    segments: Mapping[str, Filter] | None = None,
    operators: Mapping[str, OperatorFactory] | None = None,
) -> Filter:
    """Compile a Mongo-style filter (a mapping, or JSON text) once, to evaluate many times.

    ``catalog`` turns unknown fields and literals of the wrong type into errors;
    ``segments`` are the compiled filters ``{"$segment": name}`` may refer to;
    ``operators`` adds ``$name`` operators as ``factory(operand, path) -> predicate(value)``.
    Raises FilterError (with ``.path`` and ``.suggestion``) for anything wrong.
    """
    ops = _check_operators(operators)
    return _compile(spec, catalog, ops, None if segments is None else _lookup_in(segments))


def _lookup_in(segments: Mapping[str, Filter]) -> Callable[[str, str], Filter]:
    def resolve(name: str, path: str) -> Filter:
        if name not in segments:
            raise FilterError(f"unknown segment {name!r}", path, suggestion=suggest(name, segments))
        return segments[name]

    return resolve


def compile_segments(
    specs: Mapping[str, Mapping[str, Any] | str | bytes],
    *,
    catalog: FieldCatalog | None = None,
    operators: Mapping[str, OperatorFactory] | None = None,
) -> dict[str, Filter]:
    """Compile named segments that may refer to each other with ``{"$segment": "name"}``.

    A reference to an unknown name, or a cycle (``a -> b -> a``), is a FilterError at compile
    time. An error inside a segment names the segment in its message ("segment 'vip': ...")
    and in its ``segment`` attribute; ``path`` stays relative to that segment's filter.
    """
    ops = _check_operators(operators)
    compiled: dict[str, Filter] = {}
    in_progress: list[str] = []

    def get(name: str, path: str) -> Filter:
        if name in compiled:
            return compiled[name]
        if name not in specs:
            raise FilterError(f"unknown segment {name!r}", path, suggestion=suggest(name, specs))
        if name in in_progress:
            cycle = " -> ".join([*in_progress[in_progress.index(name):], name])
            raise FilterError(f"segments refer to each other in a cycle: {cycle}", path)
        in_progress.append(name)
        try:
            compiled[name] = _compile(specs[name], catalog, ops, get)
        except FilterError as exc:
            if getattr(exc, "segment", None) is None:
                exc = FilterError(f"segment {name!r}: {exc.message}", exc.path, exc.suggestion)
                exc.segment = name  # type: ignore[attr-defined]
                raise exc from None
            raise
        finally:
            in_progress.pop()
        return compiled[name]

    for name in specs:
        get(name, "$")
    return {name: compiled[name] for name in specs}
