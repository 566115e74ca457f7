"""Noticing that files changed, and running a check periodically in a daemon thread.

Hot reload polls rather than using inotify: it works the same on every OS, in containers and
on network filesystems, and a stat call every half second costs nothing. ``FileWatch``
compares (mtime, size) first and hashes the content only when they moved, so touching a file
without changing it does not reload, and an edit that keeps the size is still seen as soon as
the mtime moves.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import SegmintError
from .compile import CompiledConfig, load_compiled
from .schema import Config

__all__ = ["FileWatch", "PeriodicThread", "ConfigReloader"]

log = logging.getLogger("segmint.reload")

_Stat = tuple[int, int] | None


def _stat(path: Path) -> _Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _digest(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


class FileWatch:
    """Remembers the state of some files; ``changed()`` says whether any content changed since.

    A file that disappears counts as changed (and again when it comes back).
    """

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self._lock = threading.Lock()
        self._stats: dict[Path, _Stat] = {}
        self._digests: dict[Path, str | None] = {}
        self.watch(paths)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self._stats)

    def watch(self, paths: Iterable[str | Path]) -> None:
        """Watch exactly ``paths`` from now on, taking their current state as the baseline."""
        with self._lock:
            self._stats = {Path(p): _stat(Path(p)) for p in paths}
            self._digests = {p: _digest(p) for p in self._stats}

    def changed(self) -> bool:
        """True once per change of content of any watched file."""
        with self._lock:
            changed = False
            for path, old in self._stats.items():
                new = _stat(path)
                if new == old:
                    continue
                self._stats[path] = new
                digest = _digest(path)
                if digest != self._digests[path]:
                    self._digests[path] = digest
                    changed = True
            return changed

    def fingerprint(self) -> tuple[str | None, ...]:
        """The content hashes as last seen (to log one failure per content, not per poll)."""
        with self._lock:
            return tuple(self._digests.values())


class PeriodicThread:
    """Calls ``task()`` every ``interval()`` seconds in a daemon thread until ``stop()``.

    The interval is a callable so a reloaded config can change it. A task that raises is
    logged and called again next time: a background job must not die silently.
    """

    def __init__(self, task: Callable[[], object], interval: Callable[[], float], *, name: str) -> None:
        self._task = task
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> PeriodicThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval()):
            try:
                self._task()
            except Exception:  # noqa: BLE001
                log.exception("segmint: background task %s failed", self._thread.name)

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def watched_paths(config: Config) -> list[Path]:
    """The config file and, when it names one, the catalog file."""
    paths = [Path(config.source_path)] if config.source_path else []
    if config.catalog.path:
        paths.append(config.resolve_path(config.catalog.path))
    return paths


class ConfigReloader:
    """Turns a changed config (or catalog) file into a new compiled state, or keeps the old one.

    An invalid file is logged once per content (not every poll) and kept in ``last_error``;
    the caller keeps running on the state it has.
    """

    def __init__(self, state: CompiledConfig, *, extra_plugins: Sequence[str | ModuleType | Any] = (),
                 watch_file: bool = True) -> None:
        source = state.config.source_path
        self.source = Path(source) if source and watch_file else None
        self._extra_plugins = tuple(extra_plugins)
        self._watch = FileWatch(watched_paths(state.config)) if self.source else None
        self._failed: tuple[str | None, ...] | None = None
        self.last_error: SegmintError | None = None

    @property
    def watching(self) -> bool:
        return self._watch is not None

    def poll(self, current: CompiledConfig) -> CompiledConfig | None:
        """A new state when a watched file changed and compiles; None otherwise."""
        if self._watch is None or not self._watch.changed():
            return None
        try:
            new = self._load(current)
        except SegmintError as exc:
            self.last_error = exc
            fingerprint = self._watch.fingerprint()
            if fingerprint != self._failed:
                self._failed = fingerprint
                log.error("segmint: config reload failed, keeping the last good config:\n%s", exc)
            return None
        self.last_error, self._failed = None, None
        self._watch.watch(watched_paths(new.config))
        for section in ("store", "cache"):
            if getattr(current.config, section) != getattr(new.config, section):
                log.warning("segmint: [%s] changed; it takes effect after a restart", section)
        log.info("segmint: config reloaded from %s", self.source)
        return new

    def _load(self, current: CompiledConfig) -> CompiledConfig:
        assert self.source is not None
        # The start's own path: a file this rejects, the start rejects with the same message.
        return load_compiled(self.source, extra_plugins=self._extra_plugins, previous=current)
