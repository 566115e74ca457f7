"""segmint.middleware: the ASGI middleware, segmint's HTTP API and the CLI.

>>> from segmint.middleware import SegmintMiddleware
>>> # app.add_middleware(SegmintMiddleware, config="segmint.toml")
"""

from .asgi import SegmintMiddleware
from .counters import Counters
from .endpoints import safe_redirect_target
from .html import fill_slots, find_product, find_slots
from segmint.engine.tracking import CLICK_PARAM

from .visitors import SegmintState

__all__ = [
    "SegmintMiddleware",
    "SegmintState",
    "Counters",
    "CLICK_PARAM",
    "find_slots",
    "find_product",
    "fill_slots",
    "safe_redirect_target",
]
