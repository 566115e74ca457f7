"""Fixtures for every test folder: ``redis_server``, a real redis-server on a free loopback port.

pytest runs with ``--import-mode=importlib``, so test helpers are not importable by name: the
shared test shop, ``tests/fixtures.py`` (config template, catalog, runtime and client builders),
is loaded here by path, once, as ``segmint_tests_fixtures``, and it loads
``tests/redis_server.py`` as ``segmint_tests_redis_server``; a conftest or test module finds
either in ``sys.modules``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "segmint_tests_fixtures"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).resolve().parent / "fixtures.py")
    assert _spec is not None and _spec.loader is not None
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])

redis_server = sys.modules[_NAME].redis_server.redis_server_fixture
