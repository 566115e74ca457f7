"""Finds the line of a config path (``$.campaigns[3].slots``) in the config file's text.

Parsers (tomllib, msgspec) forget where values came from, but a person fixing a config wants
``segmint.toml:42``. This is a best-effort locator: exact for TOML tables, arrays of tables
and their keys, and (through PyYAML's node marks) for YAML and JSON; for values inside inline
tables or pasted JSON strings it falls back to the nearest line that names the key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["split_path", "locate_line"]

PathPart = str | int
_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]")
_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(?:#.*)?$")


def split_path(path: str) -> list[PathPart]:
    """``"$.campaigns[3].slots"`` -> ``["campaigns", 3, "slots"]``."""
    body = path[1:] if path.startswith("$") else path
    parts: list[PathPart] = []
    for match in _PART.finditer(body):
        key, index, quoted = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(key if key is not None else quoted)
    return parts


def locate_line(text: str, fmt: str, path: str) -> int | None:
    """The 1-based line of ``path`` in ``text`` (format ``toml``, ``yaml`` or ``json``), or None."""
    parts = split_path(path)
    try:
        if fmt == "toml":
            return _locate_toml(text.splitlines(), parts)
        return _locate_yaml(text, parts)
    except Exception:  # noqa: BLE001 - a locator must never hide the real error
        return None


# -- TOML ---------------------------------------------------------------------------------------


def _split_dotted(name: str) -> list[str]:
    """``segments."my seg".filter`` -> ``["segments", "my seg", "filter"]``."""
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', name)
    return [a or b or c for a, b, c in parts]


def _toml_sections(lines: Sequence[str]) -> list[tuple[int, tuple[PathPart, ...]]]:
    """(0-based header line, resolved path) of every table header; the root is line -1."""
    sections: list[tuple[int, tuple[PathPart, ...]]] = [(-1, ())]
    current_index: dict[tuple[PathPart, ...], int] = {}
    in_string = False
    for number, line in enumerate(lines):
        quotes = line.count("'''") + line.count('"""')
        if in_string or quotes % 2:
            in_string = in_string != bool(quotes % 2)
            continue
        match = _HEADER.match(line)
        if not match or "=" in match.group(2).split("]")[0]:
            continue
        is_array = match.group(1) == "[["
        names = _split_dotted(match.group(2))
        resolved: list[PathPart] = []
        for position, name in enumerate(names):
            resolved.append(name)
            key = tuple(resolved)
            last = position == len(names) - 1
            if last and is_array:
                current_index[key] = current_index.get(key, -1) + 1
                resolved.append(current_index[key])
            elif key in current_index:
                resolved.append(current_index[key])
        sections.append((number, tuple(resolved)))
    return sections


def _key_pattern(key: str) -> re.Pattern[str]:
    quoted = re.escape(key)
    return re.compile(rf"^\s*(?:{quoted}|\"{quoted}\"|'{quoted}')\s*[=.]")


def _locate_toml(lines: Sequence[str], parts: list[PathPart]) -> int | None:
    sections = _toml_sections(lines)
    best: tuple[int, int, int] | None = None  # (prefix length, start line, end line)
    for position, (start, resolved) in enumerate(sections):
        n = len(resolved)
        if n <= len(parts) and tuple(parts[:n]) == resolved and (best is None or n > best[0]):
            end = sections[position + 1][0] if position + 1 < len(sections) else len(lines)
            best = (n, start, end)
    if best is None:
        return None
    matched, start, end = best
    rest = parts[matched:]
    found = start
    if rest and isinstance(rest[0], str):
        pattern = _key_pattern(rest[0])
        for number in range(start + 1, end):
            if pattern.match(lines[number]):
                found = number
                break
        else:
            return start + 1 if start >= 0 else None
        # Deeper parts live inside an inline table or a pasted JSON string: follow the names.
        found = _follow_names(lines, found, end, rest[1:])
    return found + 1 if found >= 0 else None


def _follow_names(lines: Sequence[str], start: int, end: int, rest: list[PathPart]) -> int:
    found = start
    for part in rest:
        if not isinstance(part, str):
            continue
        token = re.compile(rf"(?<![\w.]){re.escape(part)}(?![\w])")
        for number in range(found, end):
            if token.search(lines[number]):
                found = number
                break
    return found


# -- YAML and JSON (JSON is YAML's subset for these purposes) -----------------------------------


def _locate_yaml(text: str, parts: list[PathPart]) -> int | None:
    import yaml  # optional dependency; locate_line swallows the ImportError

    node = yaml.compose(text, Loader=yaml.SafeLoader)
    line = node.start_mark.line if node is not None else None
    position = 0
    while node is not None and position < len(parts):
        part, child, used = parts[position], None, 1
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            # A filter field may itself contain dots ("customer_segment.returns_articles_ratio").
            keys = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            for width in range(1, len(parts) - position + 1):
                name = ".".join(str(p) for p in parts[position:position + width])
                if name in keys:
                    key_node, child = keys[name]
                    line, used = key_node.start_mark.line, width
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line
        node, position = child, position + used
    return line + 1 if line is not None else None
