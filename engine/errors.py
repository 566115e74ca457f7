"""The one exception tree of segmint.

::

    SegmintError                 base of everything segmint raises on purpose
     +-- ConfigError             a config file is wrong (.file, .path, .line, .suggestion)
     +-- FilterError             a segment filter is wrong (.path, .suggestion)
     +-- PluginError             a plugin raised or returned garbage (.plugin, .hook)
     +-- StoreError              the profile store failed (.store)
     +-- EventError              an event is invalid (.index, .field)

Errors carry *where* as attributes, not only in the message, so the CLI, the HTTP intake and
the config loader can each present them their own way (a table row, a JSON body, a log line).
Their "did you mean" (``suggestion``) comes from ``suggest``, the one helper for it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "SegmintError",
    "ConfigError",
    "FilterError",
    "PluginError",
    "StoreError",
    "EventError",
    "suggest",
]


class SegmintError(Exception):
    """Base class of every error segmint raises on purpose."""


class FilterError(SegmintError, ValueError):
    """A segment filter cannot be compiled.

    ``path`` is where in the filter the problem is, in JSONPath-like form
    (``$.$and[1].customer_segment.returns_articles_ratio``); ``suggestion`` is a
    "did you mean" hint or ``None``.
    """

    def __init__(self, message: str, path: str = "$", suggestion: str | None = None) -> None:
        self.message = message
        self.path = path
        self.suggestion = suggestion
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.message} (at {self.path})"
        if self.suggestion:
            text += f"; did you mean {self.suggestion!r}?"
        return text


class ConfigError(SegmintError, ValueError):
    """A config file is invalid.

    One ``ConfigError`` may carry several ``problems`` (each itself a ``ConfigError``) so that
    every mistake in a file is reported at once.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: str = "$",
        line: int | None = None,
        suggestion: str | None = None,
        problems: list[ConfigError] | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.path = path
        self.line = line
        self.suggestion = suggestion
        self.problems: list[ConfigError] = problems or []
        super().__init__(self._render())

    def location(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.path}"

    def _render(self) -> str:
        if self.problems:
            lines = [self.message] + [f"  {p}" for p in self.problems]
            return "\n".join(lines)
        text = f"{self.location()}: {self.message}"
        if self.suggestion:
            text += f" (did you mean {self.suggestion!r}?)"
        return text


class PluginError(SegmintError):
    """A plugin raised or returned something unusable; names the plugin and the hook."""

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        self.message = message
        self.plugin = plugin
        self.hook = hook
        prefix = f"plugin {plugin!r}" if plugin else "a plugin"
        if hook:
            prefix += f" in {hook}"
        super().__init__(f"{prefix}: {message}")


class StoreError(SegmintError):
    """The profile store could not read or write; ``store`` names it (a path or URL)."""

    def __init__(self, message: str, *, store: str | None = None) -> None:
        self.message = message
        self.store = store
        super().__init__(f"{store}: {message}" if store else message)


class EventError(SegmintError, ValueError):
    """An event is invalid. ``index`` is its position in a batch, ``field`` the bad field."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None) -> None:
        self.message = message
        self.index = index
        self.field = field
        where = []
        if index is not None:
            where.append(f"event {index}")
        if field:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "error": self.message}


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to a mistyped ``name``, or None when none is close enough.

    Every "did you mean" of segmint comes from here, so a typo gets the same hint in a config
    key, a filter field, a strategy, a template or a CLI argument. Close means difflib's ratio
    of at least 0.6; of equally close names the result is the same in any order of ``known``.

    >>> suggest("bestseller", ["new_arrivals", "bestsellers"])
    'bestsellers'
    >>> suggest("zzz", ["bestsellers"]) is None
    True
    """
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None
