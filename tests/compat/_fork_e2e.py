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
import contextlib
import json
from typing import Any, Callable

import pytest

from tests.compat._helpers import TOKEN, Bot, Fork, RestStub, simulator_class, wait_until

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
    wanted = bot.compress  # what install() said new connections ask for
    assert all(c.compress == wanted and c.query.get("compress") == wanted for c in sim.connections)
    assert after["connections"] - before["connections"] == len(sim.connections)
    # every payload the bot saw (all frames were binary) came out of mijcodec
    assert all(type(m) is str for m in bot.raw)
    assert after["payloads"] - before["payloads"] == len(bot.raw) > 0
    decoder = bot.client.ws._mijcodec_decoder
    assert decoder.compress == wanted and decoder.payloads > 0


@contextlib.asynccontextmanager
async def running(fork: Fork, env: Any, compress: str | None, *, first: int = 0, bot_options: dict | None = None, **sim_options: Any) -> Any:
    """``install(compress=compress)``, the simulator, and a bot that is READY and
    has received events 1..``first``; yields (sim, bot, stats before). The bot
    is stopped (and must end cleanly) afterwards."""
    target = fork.compat.install(compress=compress)
    assert target == compress or compress is None
    before = fork.compat.stats()
    async with simulator(env, **sim_options) as sim:
        bot = Bot(fork, **(bot_options or {}))
        bot.compress = target  # what assert_mijcodec_decoded expects on the wire
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            if first:
                dispatch_events(sim, 1, first)
                await everything_received(bot, sim, first)
            yield sim, bot, before
        finally:
            await bot.stop()


async def resumed_once(sim: Any, bot: Bot, before: dict, compress: str | None, first: int, total: int, what: str, *, after_resume: Any = None) -> None:
    """After a fault: events first+1..total (sent before the RESUME, unless
    ``after_resume`` is given: then that runs once resumed and they are sent
    after it) all arrive exactly once, on one session, through mijcodec."""
    if after_resume is None:
        dispatch_events(sim, first + 1, total)  # some of these are replayed after RESUME
    await wait_until(lambda: len(sim.resumes) >= 1, 10, f"a RESUME after {what}")
    if after_resume is not None:
        after_resume()
        dispatch_events(sim, first + 1, total)
    await everything_received(bot, sim, total)
    assert len(sim.identifies) == 1 and len(sim.resumes) == 1
    assert_exactly_once(bot, total)
    assert_mijcodec_decoded(bot, sim, before, compress)


@pytest.mark.parametrize("compress", MODES)
async def test_ready_and_every_dispatch_once(fork: Fork, env: Any, compress: str | None) -> None:
    async with running(fork, env, compress) as (sim, bot, before):
        dispatch_events(sim, 1, 200)
        await everything_received(bot, sim, 200)
        assert bot.test_events() == list(range(1, 201))  # in order, once each
        assert_mijcodec_decoded(bot, sim, before, compress)
        assert len(sim.identifies) == 1 and not sim.resumes
    assert "/api/v10/users/@me" in env.requests  # the REST stub really served the login


@pytest.mark.parametrize("compress", MODES)
async def test_op7_reconnect_and_resume(fork: Fork, env: Any, compress: str | None) -> None:
    async with running(fork, env, compress, first=20) as (sim, bot, before):
        await sim.send_reconnect()
        await resumed_once(sim, bot, before, compress, 20, 60, "op 7")
        assert sim.connections[0].client_close_code not in (1000, 1001)


@pytest.mark.parametrize("compress", MODES)
async def test_zombie_connection_reconnects_and_resumes(fork: Fork, env: Any, compress: str | None) -> None:
    """The zombie check of these libraries is silence (nothing received for
    heartbeat_timeout; 1 s here): the simulator drops every ACK and sends
    nothing, the library closes and RESUMEs."""
    async with running(fork, env, compress, first=10, bot_options={"heartbeat_timeout": 1.0}, heartbeat_interval=0.2) as (sim, bot, before):
        sim.drop_all_acks = True

        def acks_again() -> None:
            sim.drop_all_acks = False

        await resumed_once(sim, bot, before, compress, 10, 30, "the zombie", after_resume=acks_again)


@pytest.mark.parametrize("compress", MODES)
async def test_dropped_connection_resumes(fork: Fork, env: Any, compress: str | None) -> None:
    async with running(fork, env, compress, first=10) as (sim, bot, before):
        await sim.close(4000)
        await resumed_once(sim, bot, before, compress, 10, 30, "a close with 4000")


@pytest.mark.parametrize("compress", MODES)
async def test_corrupt_frame_reconnects_and_resumes(fork: Fork, env: Any, compress: str | None) -> None:
    """A corrupt frame ends the connection the library's own op 7 way; RESUME
    replays the event it carried. Stock dies on it (test_stock_dies_on_corrupt_frame)."""
    async with running(fork, env, compress, first=10) as (sim, bot, before):
        sim.corrupt_next(1)
        await resumed_once(sim, bot, before, compress, 10, 30, "the corrupt frame")
        assert fork.compat.stats()["codec_errors"] == before["codec_errors"] + 1
        assert sim.connections[0].client_close_code == 4000
        assert bot.task is not None and not bot.task.done()


@pytest.mark.parametrize("mode", [True, "bytes"], ids=["suffix-split", "byte-by-byte"])
async def test_split_zlib_suffix(fork: Fork, env: Any, mode: Any) -> None:
    """Every zlib-stream payload arrives in several messages, the last cut
    inside 00 00 ff ff (or one byte per message). Stock glues payloads
    (test_stock_glues_payloads_on_split_suffix)."""
    n = 30 if mode is True else 5
    async with running(fork, env, None) as (sim, bot, before):
        sim.split_frames = mode
        dispatch_events(sim, 1, n)
        await everything_received(bot, sim, n)
        assert bot.test_events() == list(range(1, n + 1))
        assert fork.compat.stats()["codec_errors"] == before["codec_errors"]
        assert len(sim.connections) == 1
        assert_mijcodec_decoded(bot, sim, before, None)


@pytest.mark.parametrize("compress", MODES)
async def test_spacebar(fork: Fork, env: Any, compress: str | None) -> None:
    """Spacebar: HELLO and ACKs without t/s (nextcord stock: KeyError 's' before
    READY), and on zstd-stream one closed zstd frame per payload."""
    async with running(fork, env, compress, spacebar=True) as (sim, bot, before):
        dispatch_events(sim, 1, 50)
        await everything_received(bot, sim, 50)
        assert bot.test_events() == list(range(1, 51))
        assert_mijcodec_decoded(bot, sim, before, compress)


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


@pytest.mark.parametrize("compress", MODES)
async def test_auto_sharded_two_shards_corrupt_frame_and_op7(fork: Fork, env: Any, compress: str | None) -> None:
    """AutoShardedClient: /gateway/bot says two shards; a corrupt frame on one
    shard and op 7 on the other each end in a RESUME of that shard only, and
    every dispatch reaches both sessions."""
    target = fork.compat.install(compress=compress)
    before = fork.compat.stats()
    async with simulator(env, shards=2) as sim:
        env.gateway_bot["shards"] = 2
        client = fork.lib.AutoShardedClient(intents=fork.lib.Intents.none(), enable_debug_events=True, guild_ready_timeout=0.05)

        async def no_wait(shard_id: Any, *, initial: bool = False) -> None:
            return None

        client.before_identify_hook = no_wait  # type: ignore[method-assign]
        seen: list[dict] = []

        @client.event
        async def on_socket_raw_receive(msg: Any) -> None:
            seen.append(json.loads(msg))

        task = asyncio.ensure_future(client.start(TOKEN))
        try:
            await wait_until(lambda: [p.get("t") for p in seen].count("READY") == 2, 10, "two shards READY")
            assert len(sim.connections) == 2 and all(c.compress == target for c in sim.connections)
            dispatch_events(sim, 1, 10)
            sim.corrupt_next(1)  # the next dispatch on the wire, on whichever shard writes first
            dispatch_events(sim, 11, 20)
            await wait_until(lambda: len(sim.resumes) >= 1, 8, "a RESUME after the corrupt frame")
            s0, s1 = sim.session_for_shard(0), sim.session_for_shard(1)
            await sim.send_reconnect(s1.conn if s1.conn is not None and s1.conn.open else s0.conn)
            dispatch_events(sim, 21, 30)
            await wait_until(lambda: len(sim.resumes) >= 2, 8, "a RESUME after op 7")

            def counts() -> dict[int, int]:
                c: dict[int, int] = {}
                for p in seen:
                    if p.get("t") == "MIJ_TEST":
                        c[p["d"]["n"]] = c.get(p["d"]["n"], 0) + 1
                return c

            # each event went to both sessions: every n arrives exactly twice
            await wait_until(lambda: all(counts().get(n, 0) >= 2 for n in range(1, 31)), 8, "every dispatch on both shards")
            assert set(counts().values()) == {2}
            assert len(sim.identifies) == 2
            after = fork.compat.stats()
            assert after["codec_errors"] == before["codec_errors"] + 1
            assert after["connections"] - before["connections"] == len(sim.connections) == 4
            assert after["payloads"] - before["payloads"] == len(seen)
            assert not task.done()
            assert "/api/v10/gateway/bot" in env.requests
        finally:
            await client.close()
            await asyncio.wait((task,), timeout=10)
            exc = task.exception() if task.done() else None
            assert exc is None or (fork.shutdown_error and fork.shutdown_error in str(exc)), repr(exc)
