"""The shop the server tests run under uvicorn: ``uvicorn shop_app:app --app-dir tests/reliability``.

The config file comes from ``SEGMINT_CONFIG``; tests watch the process through segmint's own
``GET {prefix}/health`` (counters, event writer, profile cache), as an operator would.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.middleware import SegmintMiddleware

PAGE = ('<!doctype html><html><body><h1>Shop</h1><div data-segmint-slot="cart"></div>'
        "<p>footer</p></body></html>")


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


app = SegmintMiddleware(Starlette(routes=[Route("/", page)]), config=os.environ["SEGMINT_CONFIG"],
                        shutdown_timeout=5.0)
