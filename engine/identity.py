"""Who a request is: the answer of the ``segmint_identify_visitor`` hook.

The middleware asks the plugins once per request and acts on the answer: which profile to load
(customer wins over visitor), whether to personalize, whether to record events, and which
cookie (if any) to set.
"""

from __future__ import annotations

import msgspec

__all__ = ["Identity"]


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """The identity of one request.

    ``visitor_id`` is the verified (or freshly minted) cookie id; ``customer_id`` the shop's
    own id when the app authenticated the request. ``is_new`` says the visitor needs a cookie,
    whose signed value is ``cookie_value``. Bots and visitors without consent (when the config
    requires it) get ``personalize=False`` and ``track=False`` and no cookie; ``reason`` says
    why, for the debug header.
    """

    visitor_id: str | None = None
    customer_id: str | None = None
    is_new: bool = False
    personalize: bool = True
    track: bool = True
    cookie_value: str | None = None
    reason: str | None = None

    @property
    def known(self) -> bool:
        """True when there is an id to load a profile for."""
        return bool(self.customer_id or self.visitor_id)
