"""``RuntimeStarter``: start the runtime, and keep trying until it starts.

A shop must not go down because segmint cannot start (a config or catalog file that does not
load, a plugin that cannot be imported, a store that cannot be reached). The starter makes the
first attempt at once; when it fails it keeps the cause (``error``, ``cause``), logs it once
(the text names the file and line when the error has them; a retry that fails the same way
logs nothing), and tries again in a daemon thread, by the same path as the first attempt
(``Segmint.from_config``):

- at once when the config file or the catalog file it names changes (the ``FileWatch`` hot
  reload uses): the usual fix;
- on a timer with back-off (``RETRY_BACKOFF``: 5, 10, 20, then every 30 s), for what no
  watched file shows: a store that comes back, a plugin package installed meanwhile (an
  unknown strategy or field in the config may be a plugin not installed yet, so config
  errors are retried too; each attempt builds a new plugin manager, which reads the entry
  points again).

Once a runtime starts, the thread stops; the runtime's own hot reload takes over.

    starter = RuntimeStarter("segmint.toml")
    starter.runtime      # the Segmint, or None while it could not start
    starter.cause        # why not (the logged text), or None
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Config, load_config
from .config.reload import FileWatch, PeriodicThread, watched_paths
from .errors import SegmintError
from .runtime import RELOAD_INTERVAL, Runtime, Segmint

__all__ = ["RuntimeStarter", "RETRY_BACKOFF"]

log = logging.getLogger("segmint.startup")

#: Seconds before each timed retry (the last one repeats): a store that is down for a while
#: is asked every 30 s, not hammered.
RETRY_BACKOFF: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0)


class RuntimeStarter:
    """Starts ``Segmint.from_config(path)`` now, or later when it can (see the module docstring).

    :param path: the config file (or an already decoded ``Config``: nothing to watch then).
    :param start: builds the runtime from ``path`` (default ``Segmint.from_config``).
    :param retry: retry in a background thread after a failed first attempt; tests pass False
        and call ``poll()`` themselves.
    :param timer: monotonic seconds (injectable, so tests check the back-off without sleeping).
    """

    def __init__(self, path: str | Path | Config, *, start: Callable[[Any], Runtime] = Segmint.from_config,
                 retry: bool = True, timer: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._start = start
        self._timer = timer
        self._lock = threading.Lock()
        self._closed = False
        self._logged: str | None = None
        self._failures = 0
        self._retry_at: float | None = None
        self._watch = FileWatch(())
        self._thread: PeriodicThread | None = None
        #: The started runtime; None while segmint could not start.
        self.runtime: Runtime | None = None
        #: Why the last attempt failed (None once started).
        self.error: BaseException | None = None
        #: The config as far as it decodes (no plugins, catalog or store), or None: what the
        #: middleware needs before the start (the API prefix and token).
        self.config: Config | None = None
        #: Attempts so far, the first one included.
        self.attempts = 0
        self._attempt()
        if self.runtime is None and retry:
            self._thread = PeriodicThread(self.poll, lambda: RELOAD_INTERVAL, name="segmint-start").start()

    @property
    def cause(self) -> str | None:
        """The error as logged: a ``SegmintError``'s own text (file, line, path when it has
        them; store URLs without credentials), else the exception type and message."""
        error = self.error
        if error is None:
            return None
        return str(error) if isinstance(error, SegmintError) else f"{type(error).__name__}: {error}"

    @property
    def retry_in(self) -> float | None:
        """Seconds until the next timed retry (None once started)."""
        if self._retry_at is None:
            return None
        return max(0.0, self._retry_at - self._timer())

    def poll(self) -> bool:
        """Try again if a watched file changed or the back-off is over; True once started."""
        if self.runtime is not None or self._closed:
            return self.runtime is not None
        due = self._retry_at is not None and self._timer() >= self._retry_at
        if self._watch.changed() or due:
            self._attempt()
        return self.runtime is not None

    def _attempt(self) -> None:
        self.attempts += 1
        self.config = _decoded(self.path)
        # The baseline is taken before the start reads the files: an edit made while this
        # attempt runs triggers another one.
        self._watch.watch(watched_paths(self.config) if self.config is not None else [self.path])
        importlib.invalidate_caches()  # a plugin module installed since the last attempt is found
        try:
            runtime = self._start(self.path)
        except Exception as exc:  # noqa: BLE001 - any failure to start leaves the app served as is
            self._failed(exc)
            return
        with self._lock:
            if self._closed:  # closed while this attempt ran: nobody will use it
                runtime.close()
                return
            self.runtime, self.error, self._retry_at = runtime, None, None
        if self.attempts > 1:
            log.warning("segmint: started after %d attempts; personalization is on", self.attempts)
        if self._thread is not None:
            self._thread.stop()

    def _failed(self, exc: Exception) -> None:
        self.error = exc
        delay = RETRY_BACKOFF[min(self._failures, len(RETRY_BACKOFF) - 1)]
        self._failures += 1
        self._retry_at = self._timer() + delay
        cause = self.cause
        if cause != self._logged:  # a retry that fails the same way says nothing new
            self._logged = cause
            log.error("segmint: could not start; the app is served without segmint until this is fixed "
                      "(retrying when the config or catalog file changes, and every %.0f-%.0f s):\n%s",
                      RETRY_BACKOFF[0], RETRY_BACKOFF[-1], cause,
                      exc_info=None if isinstance(exc, SegmintError) else exc)

    def close(self) -> None:
        """Stop retrying and close the runtime started here (if any). Idempotent."""
        with self._lock:
            self._closed = True
            runtime, self.runtime = self.runtime, None
        if self._thread is not None:
            self._thread.stop()
        if runtime is not None:
            runtime.close()


def _decoded(path: str | Path | Config) -> Config | None:
    """The config's structure and types only (no plugins, catalog or store), or None."""
    if isinstance(path, Config):  # ``Segmint.from_config`` takes a decoded config too
        return path
    try:
        return load_config(path, validate=False)
    except SegmintError:
        return None

