"""A real ``redis-server`` per test module, started here on 127.0.0.1 on a free port.

Skipped (with the reason) only when ``redis-server`` is not installed and neither ``CI``
nor ``MIJCODEC_REQUIRE_REDIS`` (which .ci/run sets) is; then a missing server fails the run."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="mijcodec-redis-")
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        for _ in range(5):
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no",
                 "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("redis-server did not start")

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def flushall(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(b"FLUSHALL\r\n")
            assert s.recv(16).startswith(b"+OK")

    def stop(self) -> None:
        if self.proc is not None:
            if self.paused:
                self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


def running_redis():
    """A started RedisServer, stopped and its directory removed afterwards (a
    generator for fixtures: ``yield from running_redis()``). Fails, or without
    CI / MIJCODEC_REQUIRE_REDIS skips, when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") or os.environ.get("MIJCODEC_REQUIRE_REDIS"):
            pytest.fail("redis-server is not installed (CI or MIJCODEC_REQUIRE_REDIS is set: the Redis tests must run)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server():
    yield from running_redis()


@pytest.fixture
async def redis(redis_server):
    """A client on a flushed database; closed after the test."""
    from gateway.redis import connect

    if redis_server.paused:
        redis_server.resume()
    redis_server.flushall()
    client = connect(redis_server.url, timeout=1.0)
    try:
        yield client
    finally:
        if redis_server.paused:
            redis_server.resume()
        await client.aclose()
