"""Cache coherence across app servers: a pub/sub listener that drops changed profiles.

Every ``RedisStore.append`` publishes the profile keys it changed, in the same transaction
as the write. Each server's store runs one ``InvalidationListener`` thread subscribed to that
channel, which hands the keys to the registered callbacks; ``wire_invalidation`` registers
``Profiles.invalidate`` so the server's cache drops them.

Bound: another server's cache drops a changed profile about one network round trip after
the append commits (the time Redis takes to push the message, plus thread scheduling).
Messages sent while a listener is disconnected are lost, so after every (re)subscribe the
callbacks get ``None`` and the cache is cleared: a stale entry cannot outlive a reconnect.
The cache TTL (``[cache] ttl_seconds``) stays the backstop for anything else (a listener
thread that died, a store without pub/sub).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .stores.base import InvalidatingStore

__all__ = ["InvalidationListener", "wire_invalidation"]

log = logging.getLogger("segmint.cache_invalidation")

Callback = Callable[[frozenset[str] | None], None]


def wire_invalidation(store: Any, profiles: Any) -> bool:
    """Make ``profiles`` (a ``Profiles`` cache) drop what other servers change in ``store``.

    A no-op returning False for stores without cross-process invalidation (memory, SQLite:
    there the cache TTL bounds staleness).
    """
    if not isinstance(store, InvalidatingStore):
        return False

    def drop(keys: frozenset[str] | None) -> None:
        if keys is None:
            profiles.clear()
        else:
            profiles.invalidate(keys)

    store.on_invalidate(drop)
    return True


class InvalidationListener:
    """One daemon thread subscribed to ``channel`` on a redis-py ``client``.

    ``decode(data)`` turns a message into the keys to drop, or None to ignore it (the
    store's own messages). Reconnects with a growing delay (up to ``max_delay``) while
    Redis is away.
    """

    def __init__(self, client: Any, channel: str, *, decode: Callable[[bytes], frozenset[str] | None],
                 name: str = "", poll: float = 0.2, max_delay: float = 2.0) -> None:
        self._client = client
        self._channel = channel
        self._decode = decode
        self._poll = poll
        self._max_delay = max_delay
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: Set once subscribed (again after each reconnect); tests wait on it.
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"segmint-invalidation {name}", daemon=True)

    def add(self, callback: Callback) -> None:
        """Call ``callback`` from now on. The thread starts with the first callback, so that
        one cannot miss the "drop everything" of the first subscription."""
        with self._lock:
            self._callbacks.append(callback)
            if self._thread.ident is None and not self._stop.is_set():
                self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _notify(self, keys: frozenset[str] | None) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(keys)
            except Exception:  # noqa: BLE001 - one bad callback must not stop the others
                log.exception("segmint: cache invalidation callback failed")

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(self._channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=self._poll)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Whatever was published while we were away is lost: drop everything.
                        self._notify(None)
                        self.subscribed.set()
                        delay = 0.05
                    elif message["type"] == "message":
                        keys = self._decode(message["data"])
                        if keys:
                            self._notify(keys)
            except Exception as exc:  # noqa: BLE001 - Redis away: retry until stopped
                if self.subscribed.is_set():  # log the loss once, not every retry
                    log.warning("segmint: cache invalidation lost Redis (%r); reconnecting", exc)
                self.subscribed.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_delay)
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001
                    pass
