"""Terminal output for the ``segmint`` CLI: tables, colour only on a TTY, a progress bar.

Kept apart from the commands so each command reads as what it does, not how it prints.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

__all__ = ["Output", "Progress", "plural", "number"]

_COLOURS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}


class Output:
    """Writes to a stream; colours only when it is a terminal and NO_COLOR is unset."""

    def __init__(self, stream: TextIO | None = None, *, colour: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        if colour is None:
            colour = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour

    def paint(self, text: str, colour: str) -> str:
        if not self.colour:
            return text
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")

    def json(self, data: Any) -> None:
        self.stream.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """A plain aligned table; cells are str()-ed, columns padded to the widest cell."""
        body = [[_cell(c) for c in row] for row in rows]
        widths = [len(h) for h in header]
        for row in body:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        self.line(self.paint("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), "bold"))
        for row in body:
            self.line("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return number(value)
    return str(value)


def plural(count: int, word: str, many: str | None = None) -> str:
    """The count and the word, plural unless the count is 1.

    >>> plural(1, "problem"), plural(1200, "order"), plural(2, "entry", "entries")
    ('1 problem', '1,200 orders', '2 entries')
    """
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def number(value: float, digits: int = 2) -> str:
    """A float for people: fixed decimals, never ``9.73e-05``.

    >>> number(9.73e-05, 1), number(540.0), number(-0.001)
    ('0.0', '540.00', '0.00')
    """
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.00"


class Progress:
    """A progress bar on stderr, redrawn at most 10 times a second; silent when not a TTY."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self._last = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._draw()

    def update(self, done: int) -> None:
        self.advance(done - self.done)

    def _draw(self) -> None:
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {self.done:,}/{self.total:,}")
        else:
            self.stream.write(f"\r{self.label} {self.done:,}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
