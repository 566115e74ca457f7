"""A tiny logic-less template language for widgets (a safe subset of Mustache).

``{{name}}`` and ``{{coupon.code}}`` insert a value, always HTML-escaped (there is no
unescaped form); ``{{#products}}...{{/products}}`` repeats for each item of a list, or renders
once when the value is truthy; ``{{^coupon}}...{{/coupon}}`` renders when it is falsy;
``{{! comment }}``. Names are checked against a schema when the template is compiled, so a
typo is a config error with the line and a "did you mean", and a template can reach only the
plain values the renderer puts in its context: no attributes, no calls, no code.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from segmint.engine.errors import ConfigError, suggest

__all__ = ["Template", "Schema", "load_template"]

#: Allowed names: ``None`` for a plain value, a nested schema for a mapping or list of mappings.
Schema = Mapping[str, Union["Schema", None]]

_TAG = re.compile(r"\{\{(\{?)(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# A node is literal text, ("var", parts) or ("section", parts, inverted, children).
Node = Any


class Template:
    """A compiled template; ``render(context)`` never raises for missing values (they are empty)."""

    def __init__(self, text: str, schema: Schema, *, source: str = "<template>") -> None:
        self.source = source
        self._text = text
        self._nodes = self._parse(text, schema)

    def _error(self, message: str, pos: int, suggestion: str | None = None) -> ConfigError:
        line = self._text.count("\n", 0, pos) + 1
        return ConfigError(message, file=self.source, line=line, path="$", suggestion=suggestion)

    def _parse(self, text: str, schema: Schema) -> list[Node]:
        root: list[Node] = []
        # Stack of (children list, section name, position, schema scopes visible inside).
        stack: list[tuple[list[Node], str, int, list[Schema]]] = [(root, "", 0, [schema])]
        pos = 0
        for match in _TAG.finditer(text):
            children, _, _, scopes = stack[-1]
            if match.start() > pos:
                children.append(text[pos:match.start()])
            pos = match.end()
            if match.group(1):
                raise self._error("unescaped output ({{{...}}}) is not supported", match.start())
            inner = match.group(2).strip()
            sigil = inner[:1] if inner[:1] in "#^/!" else ""
            if sigil == "!":
                continue
            name = inner[len(sigil):].strip()
            if not _NAME.match(name):
                raise self._error(f"bad template tag {{{{{inner}}}}}", match.start())
            parts = tuple(name.split("."))
            if sigil == "/":
                if len(stack) == 1 or stack[-1][1] != name:
                    expected = f"{{{{/{stack[-1][1]}}}}}" if len(stack) > 1 else "no closing tag"
                    raise self._error(f"unexpected {{{{/{name}}}}} (expected {expected})", match.start())
                stack.pop()
                continue
            found = self._resolve(parts, scopes, match.start())
            if sigil:
                section: list[Node] = []
                children.append(("section", parts, sigil == "^", section))
                inner_scopes = scopes + [found] if isinstance(found, Mapping) and sigil == "#" else scopes
                stack.append((section, name, match.start(), inner_scopes))
            else:
                children.append(("var", parts))
        if len(stack) > 1:
            raise self._error(f"section {{{{#{stack[-1][1]}}}}} is never closed", stack[-1][2])
        if pos < len(text):
            root.append(text[pos:])
        return root

    def _resolve(self, parts: tuple[str, ...], scopes: list[Schema], pos: int) -> Schema | None:
        for scope in reversed(scopes):
            if parts[0] in scope:
                found = scope[parts[0]]
                break
        else:
            known = sorted({name for scope in scopes for name in scope})
            raise self._error(f"unknown name {'.'.join(parts)!r} in template "
                              f"(known here: {', '.join(known)})", pos, suggest(parts[0], known))
        for i, part in enumerate(parts[1:], start=1):
            if not isinstance(found, Mapping) or part not in found:
                choices = sorted(found) if isinstance(found, Mapping) else []
                close = suggest(part, choices)
                raise self._error(f"unknown name {'.'.join(parts[: i + 1])!r} in template", pos,
                                  ".".join(parts[:i] + (close,)) if close else None)
            found = found[part]
        return found

    def render(self, context: Mapping[str, Any]) -> str:
        out: list[str] = []
        self._render(self._nodes, [context], out)
        return "".join(out)

    def _render(self, nodes: Sequence[Node], frames: list[Mapping[str, Any]], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif node[0] == "var":
                value = _lookup(node[1], frames)
                if value is not None:
                    out.append(html.escape(str(value), quote=True))
            else:
                _, parts, inverted, children = node
                value = _lookup(parts, frames)
                if inverted:
                    if not value:
                        self._render(children, frames, out)
                elif isinstance(value, (list, tuple)):
                    for item in value:
                        self._render(children, frames + [item] if isinstance(item, Mapping) else frames, out)
                elif isinstance(value, Mapping):
                    if value:
                        self._render(children, frames + [value], out)
                elif value:
                    self._render(children, frames, out)


def _lookup(parts: tuple[str, ...], frames: list[Mapping[str, Any]]) -> Any:
    for frame in reversed(frames):
        if parts[0] in frame:
            value = frame[parts[0]]
            break
    else:
        return None
    for part in parts[1:]:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def load_template(path: str | Path, schema: Schema) -> Template:
    """Read and compile a template file; a missing file or bad template is a ``ConfigError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read widget template: {exc}", file=str(path)) from exc
    return Template(text, schema, source=str(path))
