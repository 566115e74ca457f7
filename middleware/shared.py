"""What one middleware instance shares across requests: ``Services`` (the runtime and the
machinery around it) and ``Settings`` (values derived from the current config).

No per-request state here: that lives in ``visitors.SegmintState`` and
``asgi.Responder``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from segmint.engine.config.schema import Config

from .counters import Counters
from .executor import Executor
from .urls import product_path_pattern

if TYPE_CHECKING:
    from segmint.engine.runtime import Runtime

    from .visitors import Visitors

__all__ = ["Services", "Settings"]

#: A pattern that matches no path: ``Settings.product_match`` when ``product_path`` is not set.
_NO_PRODUCT_PAGES = re.compile(r"(?!)")


@dataclass(frozen=True, slots=True)
class Services:
    """The runtime and what the middleware runs around it, each owning one concern."""

    runtime: Runtime
    counters: Counters
    #: The bounded pool and the inline breaker.
    executor: Executor
    #: Identification, identity links and profile loading.
    visitors: Visitors


class Settings:
    """Per-config values the hot path needs, computed once per config object."""

    __slots__ = (
        "config", "prefix", "budget", "max_body", "debug", "product_match", "track_page_views",
        "cookie_name", "cookie_attrs",
    )

    def __init__(self, config: Config) -> None:
        mw, ident, api = config.middleware, config.identity, config.api
        self.config = config
        self.prefix: str = api.prefix.rstrip("/")
        self.budget: float = mw.time_budget_ms / 1000.0
        self.max_body: int = mw.max_body_bytes
        self.debug: bool = mw.debug_header
        #: ``product_match(path)``: a product page's match (the product is its ``"sku"`` group),
        #: else None. The compiled pattern's own ``match``: one C call per page.
        self.product_match: Callable[[str], re.Match[str] | None] = (
            product_path_pattern(mw.product_path) or _NO_PRODUCT_PAGES).match
        self.track_page_views: bool = mw.track_page_views
        self.cookie_name: str = ident.cookie
        self.cookie_attrs = f"; Max-Age={int(ident.max_age_days * 86400)}; Path=/; HttpOnly; SameSite=Lax"

    def set_cookie(self, value: str, scheme: str) -> bytes:
        return f"{self.cookie_name}={value}{self.cookie_attrs}{'; Secure' if scheme in ('https', 'wss') else ''}".encode(
            "latin-1")
