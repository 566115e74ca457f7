"""A real ``redis-server`` on a free loopback port, for tests and benchmarks.

``tests/fixtures.py`` loads this file by path (pytest runs with ``--import-mode=importlib``,
so test helpers are not importable by name), ``tests/conftest.py`` offers its ``redis_server``
fixture to every test; benchmarks load it by path too (``bench_redis``).

Without ``redis-server`` on PATH the fixture skips with the reason, except when the
environment says ``CI=true``: CI installs it (``.ci/run``), so there a missing server fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

__all__ = ["RedisServer", "free_port", "redis_server_fixture", "require_redis_server"]

MISSING = ("redis-server is not installed (apt-get install redis-server); "
           "the Redis store tests need a real server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_redis_server() -> str:
    """The path of ``redis-server``; skip (locally) or fail (CI=true) when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING + ", and CI=true: CI must install it")
        pytest.skip(MISSING)
    return path


class RedisServer:
    """One ``redis-server`` process. ``stop()`` and ``start()`` again reuse the port, so a
    test can take the server away mid-run; ``save()`` first keeps the data (the snapshot
    is loaded again at start), without it a restarted server is empty."""

    def __init__(self, executable: str = "redis-server", *, port: int | None = None,
                 directory: str | None = None) -> None:
        self.executable = executable
        self.port = port or free_port()
        self.directory = directory or tempfile.mkdtemp(prefix="segmint-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.directory, "--dbfilename", "dump.rdb"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode} on port {self.port}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Send one inline command (``SAVE``, ``FLUSHALL``) and return the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(" ".join(args).encode() + b"\r\n")
            return s.recv(4096)

    def save(self) -> None:
        assert self.command("SAVE").startswith(b"+OK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    """A fresh, empty server per test (start-up takes a few milliseconds)."""
    server = RedisServer(require_redis_server()).start()
    try:
        yield server
    finally:
        server.cleanup()

