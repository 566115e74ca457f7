"""The ASGI types segmint's middleware speaks (one place, so every module agrees).

Plain aliases of the ASGI 3 callables and messages; the ``asgiref.typing`` TypedDicts would add
a dependency and make every header access a cast.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Scope", "Message", "Receive", "Send", "ASGIApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
