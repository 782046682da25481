"""Helpers shared by the compat tests."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import pytest

#: Set by .ci/run: the distributions that must be present in this environment
#: (comma-separated). A compat module whose library is listed fails instead
#: of skipping when it is absent. Unset under CI=true, the test extra's
#: libraries are required (py-cord and nextcord need environments of their own).
REQUIRE_ENV = "MIJCODEC_COMPAT_REQUIRE"
TEST_EXTRA_LIBRARIES = "discord.py,hikari,disnake"


def require_library(distribution: str, import_name: str) -> Any:
    """Import ``import_name`` for a compat test module, or skip the whole module
    with the reason when ``distribution`` is not what provides it here
    (py-cord and discord.py both install ``discord``; told apart by
    importlib.metadata, as the drop-ins do). Fails instead when
    MIJCODEC_COMPAT_REQUIRE lists ``distribution``: CI must not skip silently."""
    from mijcodec.compat._dpy_family import owning_distribution

    reason = ""
    try:
        module = importlib.import_module(import_name)
    except ImportError as exc:
        reason = f"{distribution} is not installed in this environment ({sys.executable}): {exc}"
    else:
        if owning_distribution(module, [distribution]) is None:
            reason = (
                f"{distribution} is not installed in this environment ({sys.executable}); "
                f"the importable {import_name!r} is another distribution's"
            )
    if not reason:
        return module
    default = TEST_EXTRA_LIBRARIES if os.environ.get("CI", "").lower() == "true" else ""
    required = {d.strip() for d in os.environ.get(REQUIRE_ENV, default).split(",") if d.strip()}
    if distribution in required:
        why = REQUIRE_ENV if REQUIRE_ENV in os.environ else "CI=true"
        pytest.fail(f"{distribution} is required here ({why}), but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

#: hikari insists on a token whose first part is a base64 user id ("100000000000000001").
TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.GmIjCo.mijcodec-compat-tests"
SUFFIX = b"\x00\x00\xff\xff"


# -- compressed messages -------------------------------------------------------


def payload(t: str | None, s: int | None, op: int, d: Any) -> bytes:
    return json.dumps({"t": t, "s": s, "op": op, "d": d}, separators=(",", ":")).encode()


def zlib_messages(payloads: list[bytes]) -> list[bytes]:
    c = zlib.compressobj()
    return [c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH) for p in payloads]


def zstd_mod() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    return zstd


def zstd_messages(payloads: list[bytes], *, spacebar: bool = False) -> list[bytes]:
    """Discord: one open frame, each payload flushed as a block. Spacebar: every
    payload is one complete, closed frame."""
    zstd = zstd_mod()
    c = zstd.ZstdCompressor()
    mode = c.FLUSH_FRAME if spacebar else c.FLUSH_BLOCK
    return [c.compress(p, mode) for p in payloads]


# -- stand-ins for a websocket's socket and its client (unit tests) ------------------

class FakeSocket:
    def __init__(self) -> None:
        self.closed_with: list[int] = []
        self.closed = False
        self.close_code = None

    async def close(self, *, code: int = 4000, message: bytes = b"") -> bool:
        self.closed_with.append(code)
        self.closed = True
        self.close_code = code
        return True


class FakeClient:
    def __init__(self) -> None:
        self.ws = None
        self.dispatched: list[tuple] = []

    def dispatch(self, event: str, *args: Any) -> None:
        self.dispatched.append((event, *args))


# -- simulator workarounds -----------------------------------------------------


def simulator_class() -> Any:
    """gateway.testing.GatewaySimulator, with one workaround: its READY's ``user``
    has no ``avatar`` key, which discord.py's ``parse_ready`` requires (KeyError
    kills the client) and hikari's event factory logs as an error. The key is
    added before the writer task sends READY (nothing awaits in between)."""
    from gateway.testing import GatewaySimulator

    class Simulator(GatewaySimulator):
        async def _identify(self, conn: Any, d: Any) -> None:  # workaround, see docstring
            await super()._identify(conn, d)
            if conn.session is not None:
                for ev in conn.session.events:
                    if ev.t == "READY":
                        ev.d["user"].setdefault("avatar", None)
                        ev.d["user"].setdefault("global_name", None)

    return Simulator


@dataclass
class Fork:
    """How to drive one fork: its module, its compat module and how to point its REST base."""

    name: str
    lib: Any  # discord (py-cord) / nextcord / disnake
    compat: Any
    point_rest: Callable[[pytest.MonkeyPatch, str], None]
    #: what ``Client.start`` may end with after ``Client.close()``, stock as well
    #: (py-cord 2.8 closes its HTTP session before the websocket; its connect
    #: loop then retries and dies on "Session is closed")
    shutdown_error: str = ""

    def gateway(self) -> Any:
        import importlib

        return importlib.import_module(self.lib.__name__ + ".gateway")


class Bot:
    """A Client of discord.py or a fork, recording every payload
    ``on_socket_raw_receive`` hands it."""

    def __init__(self, fork: Fork, **options: Any) -> None:
        options.setdefault("guild_ready_timeout", 0.05)
        self.fork = fork
        self.client = fork.lib.Client(intents=fork.lib.Intents.none(), enable_debug_events=True, **options)
        self.raw: list[Any] = []
        self.payloads: list[dict] = []
        self.bad: list[str] = []
        self.compress = ""  # set by the test: the compression install() reported
        self.ready = 0
        self.resumed = 0
        self.task: asyncio.Task | None = None

        async def no_wait(shard_id: Any, *, initial: bool = False) -> None:
            return None  # the libraries sleep 5 s before a non-initial IDENTIFY

        self.client.before_identify_hook = no_wait  # type: ignore[method-assign]

        @self.client.event
        async def on_socket_raw_receive(msg: Any) -> None:
            self.raw.append(msg)
            try:
                self.payloads.append(json.loads(msg))
            except ValueError:
                self.bad.append(msg)  # only stock controls and not-JSON tests get here

        @self.client.event
        async def on_ready() -> None:
            self.ready += 1

        @self.client.event
        async def on_resumed() -> None:
            self.resumed += 1

    def seqs(self) -> set[int]:
        return {p["s"] for p in self.payloads if p.get("op") == 0}

    def test_events(self) -> list[int]:
        return [p["d"]["n"] for p in self.payloads if p.get("t") == "MIJ_TEST"]

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.client.start(TOKEN))

    async def stop(self) -> None:
        await self.client.close()
        if self.task is not None:
            await asyncio.wait((self.task,), timeout=10)
            assert self.task.done()
            exc = self.task.exception()
            assert exc is None or (self.fork.shutdown_error and self.fork.shutdown_error in str(exc)), repr(exc)


async def wait_until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# -- a REST stub for what discord.py's login needs ------------------------------------

USER = {"id": "100000000000000001", "username": "simbot", "discriminator": "0", "avatar": None, "bot": True}
APPLICATION = {
    "id": "100000000000000001",
    "name": "simbot",
    "description": "",
    "icon": None,
    "bot_public": True,
    "bot_require_code_grant": False,
    "verify_key": "00",
    "owner": {"id": "100000000000000002", "username": "owner", "discriminator": "0", "avatar": None},
    "flags": 0,
}


class RestStub:
    """``GET /api/v10/users/@me`` and ``/oauth2/applications/@me``, which
    ``discord.Client.login`` calls and the gateway simulator does not serve, and
    ``/gateway/bot`` (the simulator's answers carry ``application/json;
    charset=utf-8``, which discord.py takes for text).
    discord.py only parses a body whose Content-Type is exactly
    ``application/json`` (no charset), so the responses are built by hand."""

    def __init__(self) -> None:
        self.runner: Any = None
        self.api_url = ""
        self.requests: list[str] = []
        #: what GET /gateway/bot answers (AutoShardedClient asks it); set by the test
        self.gateway_bot: dict = {}
        #: the url GET /gateway answers; set by the test
        self.gateway_url = ""

    async def __aenter__(self) -> "RestStub":
        from aiohttp import web

        def reply(obj: Any) -> Any:
            async def handler(request: Any) -> Any:
                self.requests.append(request.path)
                return web.Response(body=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})

            return handler

        app = web.Application()
        app.router.add_get("/api/v10/users/@me", reply(USER))
        app.router.add_get("/api/v10/oauth2/applications/@me", reply(APPLICATION))

        async def gateway_bot(request: Any) -> Any:
            self.requests.append(request.path)
            return web.Response(body=json.dumps(self.gateway_bot).encode(), headers={"Content-Type": "application/json"})

        app.router.add_get("/api/v10/gateway/bot", gateway_bot)

        async def gateway(request: Any) -> Any:  # GET /gateway: the forks' plain Client asks it
            self.requests.append(request.path)
            return web.Response(body=json.dumps({"url": self.gateway_url}).encode(), headers={"Content-Type": "application/json"})

        app.router.add_get("/api/v10/gateway", gateway)
        # py-cord's READY handling fetches the default soundboard sounds
        app.router.add_get("/api/v10/soundboard-default-sounds", reply([]))
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api_url = f"http://127.0.0.1:{port}/api/v10"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()
