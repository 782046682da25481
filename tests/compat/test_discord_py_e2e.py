"""End to end: a real ``discord.Client`` with ``mijcodec.compat.discord_py.install()``
logs in against the gateway simulator (gateway.testing), reaches READY, receives
every dispatch, and survives op 7, a zombie connection, a dropped connection,
split zlib suffixes and a corrupt frame (each reconnecting and RESUMEing), and
Spacebar's one-zstd-frame-per-payload. Every test checks that mijcodec decoded
the frames: the client's decompression context is mijcodec's, and the payloads
mijcodec returned equal the payloads discord.py received.

discord.py's REST base (``discord.http.Route.BASE``) points at a small stub for
``/users/@me`` and ``/oauth2/applications/@me`` (the simulator serves only
``/gateway/bot``); a plain ``Client`` connects to
``DiscordWebSocket.DEFAULT_GATEWAY``, pointed at the simulator.
"""

from __future__ import annotations

from tests.compat._helpers import require_library

require_library("discord.py", "discord")  # skips (or, when CI requires it, fails) without discord.py

import asyncio
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest
import yarl

from mijcodec.compat import discord_py as compat
from tests.compat import _helpers as helpers
from tests.compat._helpers import TOKEN, Fork, RestStub, simulator_class, wait_until

pytestmark = pytest.mark.usefixtures("quiet_access_log")


DPY = Fork("discord.py", discord, compat, lambda mp, url: mp.setattr(discord.http.Route, "BASE", url))


class Bot(helpers.Bot):
    """A discord.Client that records every payload on_socket_raw_receive hands it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(DPY, **options)


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> Any:
    async with RestStub() as rest:
        monkeypatch.setattr(discord.http.Route, "BASE", rest.api_url)
        yield rest


def point_at(monkeypatch: pytest.MonkeyPatch, sim: Any) -> None:
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(sim.gateway_url))


async def everything_received(bot: Bot, sim: Any, n_events: int, timeout: float = 5.0) -> None:
    session = sim.session_for_shard(0)
    await wait_until(
        lambda: bot.seqs() >= set(range(1, session.seq + 1)) and set(bot.test_events()) >= set(range(1, n_events + 1)),
        timeout,
        "every dispatch",
    )


def assert_mijcodec_decoded(bot: Bot, sim: Any, before: dict) -> None:
    after = compat.stats()
    assert isinstance(bot.client.ws._decompressor, compat._MijcodecContext)
    assert after["connections"] - before["connections"] == len(sim.connections)
    # every payload discord.py saw (all frames were binary) came out of mijcodec
    assert all(type(m) is str for m in bot.raw)
    assert after["payloads"] - before["payloads"] == len(bot.raw) > 0


def dispatch_events(sim: Any, first: int, last: int) -> None:
    for n in range(first, last + 1):
        sim.dispatch("MIJ_TEST", {"n": n})


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_ready_and_every_dispatch(env: Any, monkeypatch: pytest.MonkeyPatch, compress: str) -> None:
    compat.install(compress=compress)
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            assert sim.connections[0].compress == compress
            assert sim.connections[0].query["compress"] == compress
            dispatch_events(sim, 1, 200)
            await everything_received(bot, sim, 200)
            assert bot.test_events() == list(range(1, 201))  # in order, once each
            assert_mijcodec_decoded(bot, sim, before)
            assert len(sim.identifies) == 1 and not sim.resumes
        finally:
            await bot.stop()
    assert env.requests  # the REST stub really served the login


async def test_keeps_discord_py_compression_choice(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    own = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    compat.install()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            assert sim.connections[0].compress == own
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_op7_reconnect_and_resume(env: Any, monkeypatch: pytest.MonkeyPatch, compress: str) -> None:
    compat.install(compress=compress)
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            dispatch_events(sim, 1, 20)
            await everything_received(bot, sim, 20)
            await sim.send_reconnect()
            dispatch_events(sim, 21, 60)  # some of these are replayed after RESUME
            await sim.wait_ready(2)
            await everything_received(bot, sim, 60)
            assert len(sim.resumes) == 1 and len(sim.identifies) == 1
            assert sim.connections[1].path == sim.resume_path  # the resume_gateway_url
            assert sim.connections[0].client_close_code not in (1000, 1001)
            assert sorted(set(bot.test_events())) == list(range(1, 61))
            await wait_until(lambda: bot.resumed == 1, 2, "on_resumed")
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


async def test_zombie_connection_reconnects_and_resumes(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py's zombie check is silence: nothing received for heartbeat_timeout
    (60 s by default; 1 s here). The simulator drops every ACK and sends nothing,
    so the connection goes silent; discord.py closes it and RESUMEs."""
    compat.install(compress="zlib-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.2, guilds=0) as sim:
        point_at(monkeypatch, sim)
        bot = Bot(heartbeat_timeout=1.0)
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            sim.drop_all_acks = True
            await wait_until(lambda: len(sim.resumes) >= 1, 5, "a RESUME after the zombie")
            sim.drop_all_acks = False
            assert sim.connections[0].client_close_code == 4000
            dispatch_events(sim, 11, 30)
            await everything_received(bot, sim, 30)
            assert len(sim.identifies) == 1
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


async def test_dropped_connection_resumes(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    compat.install(compress="zstd-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            await sim.close(4000)
            dispatch_events(sim, 11, 30)
            await wait_until(lambda: len(sim.resumes) >= 1, 8, "a RESUME")
            await everything_received(bot, sim, 30)
            assert len(sim.identifies) == 1
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


@pytest.mark.parametrize("mode", [True, "bytes"], ids=["suffix-split", "byte-by-byte"])
async def test_split_zlib_suffix(env: Any, monkeypatch: pytest.MonkeyPatch, mode: Any) -> None:
    """Every payload arrives in several messages, the last cut inside 00 00 ff ff
    (or one byte per message). Stock discord.py never completes such a payload."""
    compat.install(compress="zlib-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        sim.split_frames = mode
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            dispatch_events(sim, 1, 30 if mode is True else 5)
            await everything_received(bot, sim, 30 if mode is True else 5)
            assert compat.stats()["codec_errors"] == before["codec_errors"]
            assert len(sim.connections) == 1
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_corrupt_frame_reconnects_and_resumes(env: Any, monkeypatch: pytest.MonkeyPatch, compress: str) -> None:
    """A corrupt frame ends the connection discord.py's own way; RESUME replays the
    event the corrupt frame carried. Stock discord.py dies on it."""
    compat.install(compress=compress)
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            sim.corrupt_next(1)
            dispatch_events(sim, 11, 30)
            await wait_until(lambda: len(sim.resumes) >= 1, 5, "a RESUME after the corrupt frame")
            await everything_received(bot, sim, 30)
            assert sorted(set(bot.test_events())) == list(range(1, 31))
            assert compat.stats()["codec_errors"] == before["codec_errors"] + 1
            assert sim.connections[0].client_close_code == 4000
            assert len(sim.identifies) == 1
            assert not bot.task.done()
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


async def test_spacebar_zstd_one_frame_per_payload(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spacebar closes a zstd frame per payload (and sends HELLO without t/s);
    stock discord.py with zstandard fails on the second payload."""
    compat.install(compress="zstd-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0, spacebar=True) as sim:
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 5, "on_ready")
            dispatch_events(sim, 1, 50)
            await everything_received(bot, sim, 50)
            assert sim.connections[0].compress == "zstd-stream"
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


# -- controls: the same scenarios kill stock discord.py --------------------------------


@pytest.mark.parametrize("scenario", ["corrupt", "spacebar"])
async def test_control_stock_discord_py_dies(env: Any, monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    """Without install(), the client task ends with the decompression error (the
    zstd cases; the installed discord.py negotiates zstd-stream on its own here)."""
    if discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE != "zstd-stream":
        pytest.skip("this discord.py negotiates zlib-stream")
    assert not compat.is_installed()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0, spacebar=scenario == "spacebar") as sim:
        point_at(monkeypatch, sim)
        bot = Bot()
        await bot.start()
        try:
            if scenario == "corrupt":
                await wait_until(lambda: bot.ready == 1, 5, "on_ready")
                sim.corrupt_next(1)
                dispatch_events(sim, 1, 3)
            await wait_until(lambda: bot.task.done(), 5, "the stock client to die")
            assert bot.task.exception() is not None
            assert not sim.resumes
        finally:
            await bot.client.close()


# AutoShardedClient, two shards, a corrupt frame on one and op 7 on the other:
# the scenario the forks share (tests/compat/_fork_e2e.py), run on discord.py
# (the ``fork`` fixture hands the test FORK)
FORK = DPY
from tests.compat._fork_e2e import test_auto_sharded_two_shards_corrupt_frame_and_op7  # noqa: E402,F401


async def test_without_debug_events(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default Client (no on_socket_raw_receive): dispatches still flow."""
    compat.install()
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        point_at(monkeypatch, sim)
        client = discord.Client(intents=discord.Intents.none(), guild_ready_timeout=0.05)
        types: list[str] = []

        @client.event
        async def on_socket_event_type(t: str) -> None:
            types.append(t)

        task = asyncio.ensure_future(client.start(TOKEN))
        try:
            await sim.wait_ready(1)
            dispatch_events(sim, 1, 100)
            await wait_until(lambda: types.count("MIJ_TEST") == 100, 5, "100 dispatches")
            assert types[0] == "READY"
            assert compat.stats()["payloads"] - before["payloads"] >= 102  # HELLO, READY, 100 events
        finally:
            await client.close()
            await asyncio.wait_for(task, 10)


async def test_corrupt_ready_identifies_again(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The very first dispatch (READY) is corrupt: there is no session to resume
    yet, so the client identifies again and becomes ready."""
    compat.install(compress="zstd-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        point_at(monkeypatch, sim)
        sim.corrupt_next(1)
        bot = Bot()

        async def no_wait(shard_id: Any, *, initial: bool = False) -> None:
            return None  # discord.py's default sleeps 5 s before a non-initial IDENTIFY

        bot.client.before_identify_hook = no_wait  # type: ignore[method-assign]
        await bot.start()
        try:
            await wait_until(lambda: bot.ready == 1, 8, "on_ready")
            assert len(sim.identifies) == 2 and not sim.resumes
            assert compat.stats()["codec_errors"] == before["codec_errors"] + 1
            dispatch_events(sim, 1, 10)
            await wait_until(lambda: bot.test_events() == list(range(1, 11)), 5, "10 dispatches")
        finally:
            await bot.stop()
