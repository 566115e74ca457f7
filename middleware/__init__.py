"""segmint.middleware: the ASGI middleware, segmint's HTTP API and the CLI.

>>> from segmint.middleware import SegmintMiddleware
>>> # app.add_middleware(SegmintMiddleware, config="segmint.toml")

The root exports what a shop's app uses: the middleware, and the type of
``request.state.segmint`` (``SegmintState``; ``InactiveState`` while segmint has not started).
"""

from .asgi import SegmintMiddleware
from .visitors import InactiveState, SegmintState

__all__ = [
    "SegmintMiddleware",
    "SegmintState",
    "InactiveState",
]
