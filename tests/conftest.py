"""Fixtures for every test folder: ``redis_server``, a real redis-server on a free loopback port.

``tests/redis_server.py`` is loaded here by path, once (pytest runs with
``--import-mode=importlib``, so test helpers are not importable by name); a test module that
needs the helper itself finds it as ``sys.modules["segmint_tests_redis_server"]``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "segmint_tests_redis_server"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).resolve().parent / "redis_server.py")
    assert _spec is not None and _spec.loader is not None
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])

redis_server = sys.modules[_NAME].redis_server_fixture
