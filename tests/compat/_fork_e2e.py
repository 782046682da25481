"""End-to-end tests shared by the py-cord, nextcord and disnake drop-ins.

Each fork's real ``Client`` logs in against the gateway simulator
(gateway.testing, through tests.compat._helpers.simulator_class), its REST base
pointed at a small stub (``/users/@me``, ``/gateway``); the test modules
(test_pycord_e2e.py, test_nextcord_e2e.py, test_disnake_e2e.py) import these
tests and define the ``fork`` fixture. Each scenario runs with ``install()``
(the library's own zlib-stream) and with ``install(compress="zstd-stream")``,
and checks that mijcodec decoded the frames: every payload the bot's
``on_socket_raw_receive`` got came out of a mijcodec Decoder (``stats()``
counts them, one Decoder per connection the simulator saw).

The ``test_stock_*`` tests are controls, marked as such: the same scenario
against the stock library (nothing installed) fails the way the issue says, so
the drop-in's fix is real.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from tests.compat._helpers import TOKEN, RestStub, simulator_class, wait_until

# distribution -> (import name, mijcodec.compat module, the REST base attribute of
# its Route, what Client.start may die of after close() in stock as well)
_FORKS = {
    "py-cord": ("discord", "pycord", "API_BASE_URL", "Session is closed"),
    "nextcord": ("nextcord", "nextcord", "BASE", ""),
    "disnake": ("disnake", "disnake", "BASE", ""),
}


def load_fork(distribution: str) -> "Fork":
    """The fork for a test module's ``FORK`` (the ``fork`` fixture of
    tests/compat/conftest.py hands it to the tests); skips the module (or
    fails it, when CI requires the library) without the library."""
    import importlib

    from tests.compat._helpers import require_library

    import_name, compat_name, base_attr, shutdown_error = _FORKS[distribution]
    lib = require_library(distribution, import_name)
    http = importlib.import_module(import_name + ".http")
    compat = importlib.import_module("mijcodec.compat." + compat_name)
    return Fork(distribution, lib, compat, lambda mp, url: mp.setattr(http.Route, base_attr, url), shutdown_error)


MODES = [pytest.param(None, id="install()"), pytest.param("zstd-stream", id="install(zstd-stream)")]


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
    """A fork's Client recording every payload ``on_socket_raw_receive`` hands it."""

    def __init__(self, fork: Fork, **options: Any) -> None:
        options.setdefault("guild_ready_timeout", 0.05)
        self.fork = fork
        self.client = fork.lib.Client(intents=fork.lib.Intents.none(), enable_debug_events=True, **options)
        self.raw: list[Any] = []
        self.payloads: list[dict] = []
        self.bad: list[str] = []
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


@pytest.fixture
async def env(fork: Fork, monkeypatch: pytest.MonkeyPatch, quiet_access_log: Any) -> Any:
    async with RestStub() as rest:
        fork.point_rest(monkeypatch, rest.api_url)
        yield rest


def simulator(env: RestStub, **kwargs: Any) -> Any:
    kwargs.setdefault("heartbeat_interval", 0.5)
    kwargs.setdefault("guilds", 0)
    sim = simulator_class()(token=TOKEN, **kwargs)

    class Started:
        async def __aenter__(self) -> Any:
            await sim.__aenter__()
            env.gateway_url = sim.gateway_url  # GET /gateway answers the simulator
            env.gateway_bot = {  # and so does GET /gateway/bot (disnake's Client asks it)
                "url": sim.gateway_url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 1, "max_concurrency": 1},
            }
            return sim

        async def __aexit__(self, *exc: object) -> None:
            await sim.__aexit__(*exc)

    return Started()


def dispatch_events(sim: Any, first: int, last: int) -> None:
    for n in range(first, last + 1):
        sim.dispatch("MIJ_TEST", {"n": n})


async def everything_received(bot: Bot, sim: Any, n_events: int, timeout: float = 8.0) -> None:
    session = sim.session_for_shard(0)
    await wait_until(
        lambda: bot.seqs() >= set(range(1, session.seq + 1)) and set(bot.test_events()) >= set(range(1, n_events + 1)),
        timeout,
        "every dispatch",
    )


def assert_exactly_once(bot: Bot, n_events: int) -> None:
    assert sorted(bot.test_events()) == list(range(1, n_events + 1))


def assert_mijcodec_decoded(bot: Bot, sim: Any, before: dict, compress: str | None) -> None:
    after = bot.fork.compat.stats()
    wanted = compress or "zlib-stream"
    assert all(c.compress == wanted and c.query.get("compress") == wanted for c in sim.connections)
    assert after["connections"] - before["connections"] == len(sim.connections)
    # every payload the bot saw (all frames were binary) came out of mijcodec
    assert all(type(m) is str for m in bot.raw)
    assert after["payloads"] - before["payloads"] == len(bot.raw) > 0
    decoder = bot.client.ws._mijcodec_decoder
    assert decoder.compress == wanted and decoder.payloads > 0


@pytest.mark.parametrize("compress", MODES)
async def test_ready_and_every_dispatch_once(fork: Fork, env: Any, compress: str | None) -> None:
    assert fork.compat.install(compress=compress) == (compress or "zlib-stream")
    before = fork.compat.stats()
    async with simulator(env) as sim:
        bot = Bot(fork)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            dispatch_events(sim, 1, 200)
            await everything_received(bot, sim, 200)
            assert bot.test_events() == list(range(1, 201))  # in order, once each
            assert_mijcodec_decoded(bot, sim, before, compress)
            assert len(sim.identifies) == 1 and not sim.resumes
        finally:
            await bot.stop()
    assert "/api/v10/users/@me" in env.requests  # the REST stub really served the login


@pytest.mark.parametrize("compress", MODES)
async def test_op7_reconnect_and_resume(fork: Fork, env: Any, compress: str | None) -> None:
    fork.compat.install(compress=compress)
    before = fork.compat.stats()
    async with simulator(env) as sim:
        bot = Bot(fork)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            dispatch_events(sim, 1, 20)
            await everything_received(bot, sim, 20)
            await sim.send_reconnect()
            dispatch_events(sim, 21, 60)  # some of these are replayed after RESUME
            await wait_until(lambda: len(sim.resumes) == 1, 8, "a RESUME after op 7")
            await everything_received(bot, sim, 60)
            assert len(sim.identifies) == 1
            assert sim.connections[0].client_close_code not in (1000, 1001)
            assert_exactly_once(bot, 60)
            assert_mijcodec_decoded(bot, sim, before, compress)
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", MODES)
async def test_zombie_connection_reconnects_and_resumes(fork: Fork, env: Any, compress: str | None) -> None:
    """The zombie check of these libraries is silence (nothing received for
    heartbeat_timeout; 1 s here): the simulator drops every ACK and sends
    nothing, the library closes and RESUMEs."""
    fork.compat.install(compress=compress)
    before = fork.compat.stats()
    async with simulator(env, heartbeat_interval=0.2) as sim:
        bot = Bot(fork, heartbeat_timeout=1.0)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            sim.drop_all_acks = True
            await wait_until(lambda: len(sim.resumes) >= 1, 8, "a RESUME after the zombie")
            sim.drop_all_acks = False
            dispatch_events(sim, 11, 30)
            await everything_received(bot, sim, 30)
            assert len(sim.identifies) == 1
            assert_exactly_once(bot, 30)
            assert_mijcodec_decoded(bot, sim, before, compress)
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", MODES)
async def test_dropped_connection_resumes(fork: Fork, env: Any, compress: str | None) -> None:
    fork.compat.install(compress=compress)
    before = fork.compat.stats()
    async with simulator(env) as sim:
        bot = Bot(fork)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            await sim.close(4000)
            dispatch_events(sim, 11, 30)
            await wait_until(lambda: len(sim.resumes) >= 1, 10, "a RESUME")
            await everything_received(bot, sim, 30)
            assert len(sim.identifies) == 1
            assert_exactly_once(bot, 30)
            assert_mijcodec_decoded(bot, sim, before, compress)
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", MODES)
async def test_corrupt_frame_reconnects_and_resumes(fork: Fork, env: Any, compress: str | None) -> None:
    """A corrupt frame ends the connection the library's own op 7 way; RESUME
    replays the event it carried. Stock dies on it (test_stock_dies_on_corrupt_frame)."""
    fork.compat.install(compress=compress)
    before = fork.compat.stats()
    async with simulator(env) as sim:
        bot = Bot(fork)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            sim.corrupt_next(1)
            dispatch_events(sim, 11, 30)
            await wait_until(lambda: len(sim.resumes) >= 1, 8, "a RESUME after the corrupt frame")
            await everything_received(bot, sim, 30)
            assert_exactly_once(bot, 30)
            assert fork.compat.stats()["codec_errors"] == before["codec_errors"] + 1
            assert sim.connections[0].client_close_code == 4000
            assert len(sim.identifies) == 1
            assert bot.task is not None and not bot.task.done()
            assert_mijcodec_decoded(bot, sim, before, compress)
        finally:
            await bot.stop()


@pytest.mark.parametrize("mode", [True, "bytes"], ids=["suffix-split", "byte-by-byte"])
async def test_split_zlib_suffix(fork: Fork, env: Any, mode: Any) -> None:
    """Every zlib-stream payload arrives in several messages, the last cut
    inside 00 00 ff ff (or one byte per message). Stock glues payloads
    (test_stock_glues_payloads_on_split_suffix)."""
    fork.compat.install()
    before = fork.compat.stats()
    n = 30 if mode is True else 5
    async with simulator(env) as sim:
        sim.split_frames = mode
        bot = Bot(fork)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            dispatch_events(sim, 1, n)
            await everything_received(bot, sim, n)
            assert bot.test_events() == list(range(1, n + 1))
            assert fork.compat.stats()["codec_errors"] == before["codec_errors"]
            assert len(sim.connections) == 1
            assert_mijcodec_decoded(bot, sim, before, None)
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", MODES)
async def test_spacebar(fork: Fork, env: Any, compress: str | None) -> None:
    """Spacebar: HELLO and ACKs without t/s (nextcord stock: KeyError 's' before
    READY), and on zstd-stream one closed zstd frame per payload."""
    fork.compat.install(compress=compress)
    before = fork.compat.stats()
    async with simulator(env, spacebar=True) as sim:
        bot = Bot(fork)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            dispatch_events(sim, 1, 50)
            await everything_received(bot, sim, 50)
            assert bot.test_events() == list(range(1, 51))
            assert_mijcodec_decoded(bot, sim, before, compress)
        finally:
            await bot.stop()


# -- controls: stock (nothing installed) fails where the drop-in does not ------------------


async def _stock_dies(fork: Fork, env: Any, setup: Callable[[Any], Any], **sim_options: Any) -> tuple[BaseException, Bot]:
    """Run a stock bot (nothing installed); ``setup(sim)`` (a coroutine
    function) makes the fault once READY, or None: the fault is the
    simulator's options. Returns what the client task died of."""
    assert not fork.compat.is_installed()
    async with simulator(env, **sim_options) as sim:
        bot = Bot(fork)
        await bot.start()
        try:
            if setup is not None:
                await wait_until(lambda: bot.ready == 1, 8, "on_ready")
                await setup(sim)
            await wait_until(lambda: bot.task is not None and bot.task.done(), 8, "the stock client to die")
            assert bot.task is not None
            exc = bot.task.exception()
            assert exc is not None
            assert not sim.resumes
            return exc, bot
        finally:
            await bot.client.close()


async def test_stock_dies_on_corrupt_frame(fork: Fork, env: Any) -> None:
    """CONTROL (stock library, nothing installed): a corrupt zlib frame, and
    ``zlib.error`` escapes ``Client.connect``: the bot is dead."""
    import zlib

    async def corrupt(sim: Any) -> None:
        sim.corrupt_next(1)
        dispatch_events(sim, 1, 3)

    exc, _bot = await _stock_dies(fork, env, corrupt)
    assert isinstance(exc, zlib.error), repr(exc)


async def test_stock_glues_payloads_on_split_suffix(fork: Fork, env: Any) -> None:
    """CONTROL (stock library, nothing installed): one payload whose ``00 00 ff ff``
    suffix is split across messages, then a whole one. Stock checks only the
    newest message's last 4 bytes, so it inflates the two together and its JSON
    parse fails ("Extra data" / "trailing characters")."""

    async def split_one(sim: Any) -> None:
        conn = sim.latest
        sent = len(conn.sent_ops)
        sim.split_frames = True
        dispatch_events(sim, 1, 1)
        await wait_until(lambda: len(conn.sent_ops) > sent, 5, "the split payload sent")
        sim.split_frames = False
        dispatch_events(sim, 2, 3)

    exc, bot = await _stock_dies(fork, env, split_one)
    assert isinstance(exc, json.JSONDecodeError), repr(exc)  # orjson's error is one too
    # what stock handed on_socket_raw_receive: two payloads glued into one text
    assert any(m.count('"op":') >= 2 for m in bot.bad)
