"""End to end: a real ``hikari.GatewayBot`` with ``mijcodec.compat.hikari.install()``
logs in against the gateway simulator (``rest_url=`` points hikari's REST at it
for ``/gateway/bot``), reaches READY, receives every dispatch, and survives op 7,
a zombie connection (a dropped HEARTBEAT_ACK), a dropped connection, split zlib
suffixes and a corrupt frame (each reconnecting and RESUMEing), and Spacebar's
one-zstd-frame-per-payload. Every test checks that mijcodec decoded the frames:
each connection's transport was mijcodec's and mijcodec produced the payloads.

hikari backs off 1-2 s before reconnecting within 30 s of the previous start,
so each reconnecting test takes a couple of seconds.
"""

from __future__ import annotations

from tests.compat._helpers import require_library

require_library("hikari", "hikari")  # skips (or, when CI requires it, fails) without hikari

import asyncio
from typing import Any

import hikari
import pytest

from mijcodec.compat import hikari as compat
from tests.compat._helpers import TOKEN, simulator_class, wait_until

pytestmark = pytest.mark.usefixtures("quiet_access_log")


class Bot:
    def __init__(self, sim: Any) -> None:
        self.bot = hikari.GatewayBot(
            TOKEN,
            rest_url=sim.api_url,
            intents=hikari.Intents.NONE,
            logs=None,
            banner=None,
            suppress_optimization_warning=True,
        )
        self.events: list[tuple[str, Any]] = []
        self.transports: list[type] = []

        @self.bot.listen(hikari.ShardPayloadEvent)
        async def on_payload(ev: hikari.ShardPayloadEvent) -> None:
            self.events.append((ev.name, ev.payload))

        @self.bot.listen(hikari.ShardConnectedEvent)
        async def on_connected(ev: hikari.ShardConnectedEvent) -> None:
            self.transports.append(type(ev.shard._ws))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def test_events(self) -> list[int]:
        return [d["n"] for name, d in self.events if name == "MIJ_TEST"]

    @property
    def shard(self) -> Any:
        return self.bot.shards[0]

    async def start(self) -> None:
        await asyncio.wait_for(self.bot.start(check_for_updates=False), 10)

    async def stop(self) -> None:
        await asyncio.wait_for(self.bot.close(), 10)


def reap_hikari_leaked_heartbeats() -> list[dict]:
    """hikari 2.7 leaks the heartbeat task of a connection that fails during the
    handshake (``_keep_alive`` never learns the new lifetime tasks): it beats on
    and dies with an AssertionError once that connection is gone, and nobody
    retrieves the exception. Its "Task exception was never retrieved", logged
    whenever the task is garbage collected, can land inside another
    ``ast.parse`` (pytest's assertion rewriting) and trip a CPython 3.11 bug
    ("AST constructor recursion depth mismatch"). This loop exception handler
    records that one message instead of formatting its traceback."""
    loop = asyncio.get_running_loop()
    leaked: list[dict] = []

    def handler(loop: Any, context: dict) -> None:
        task = context.get("future")
        if (
            isinstance(task, asyncio.Task)
            and task.get_name().startswith("heartbeat (shard")
            and isinstance(context.get("exception"), AssertionError)
        ):
            leaked.append(context)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return leaked


async def everything_received(bot: Bot, sim: Any, n_events: int, timeout: float = 6.0) -> None:
    session = sim.session_for_shard(0)
    await wait_until(
        lambda: bot.shard._seq == session.seq and set(bot.test_events()) >= set(range(1, n_events + 1)),
        timeout,
        "every dispatch",
    )


def assert_mijcodec_decoded(bot: Bot, sim: Any, before: dict) -> None:
    after = compat.stats()
    classes = set(compat.transport_classes().values())
    assert bot.transports and all(t in classes for t in bot.transports)
    assert type(bot.shard._ws) in classes
    assert after["connections"] - before["connections"] == len(sim.connections)
    assert after["payloads"] - before["payloads"] >= len(bot.events) > 0


def dispatch_events(sim: Any, first: int, last: int) -> None:
    for n in range(first, last + 1):
        sim.dispatch("MIJ_TEST", {"n": n})


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_ready_and_every_dispatch(compress: str) -> None:
    compat.install(compress=compress)
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        bot = Bot(sim)
        await bot.start()
        try:
            assert sim.gateway_bot_requests  # hikari asked the simulator's REST for the gateway
            assert sim.connections[0].compress == compress
            dispatch_events(sim, 1, 200)
            await everything_received(bot, sim, 200)
            assert bot.names()[0] == "READY"
            assert bot.test_events() == list(range(1, 201))
            assert len(sim.identifies) == 1 and not sim.resumes
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


async def test_keeps_hikari_compression_choice() -> None:
    from hikari.impl import shard as shard_impl

    own = {"transport_zlib_stream": "zlib-stream", "transport_zstd_stream": "zstd-stream"}[
        str(shard_impl.GatewayShardImpl.__init__.__kwdefaults__["compression"].value)
    ]
    compat.install()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        bot = Bot(sim)
        await bot.start()
        try:
            assert sim.connections[0].compress == own
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_op7_reconnect_and_resume(compress: str) -> None:
    compat.install(compress=compress)
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        bot = Bot(sim)
        await bot.start()
        try:
            dispatch_events(sim, 1, 20)
            await everything_received(bot, sim, 20)
            await sim.send_reconnect()
            dispatch_events(sim, 21, 60)
            await sim.wait_ready(2, timeout=6)
            await everything_received(bot, sim, 60)
            assert len(sim.resumes) == 1 and len(sim.identifies) == 1
            assert sim.connections[1].path == sim.resume_path
            assert sim.connections[0].client_close_code not in (1000, 1001)
            assert sorted(set(bot.test_events())) == list(range(1, 61))
            assert "RESUMED" in bot.names()
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


async def test_zombie_connection_reconnects_and_resumes() -> None:
    """hikari calls a connection a zombie when a heartbeat went unanswered by the
    time the next one is due; the simulator drops one ACK."""
    compat.install(compress="zstd-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.2, guilds=0) as sim:
        bot = Bot(sim)
        await bot.start()
        try:
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            sim.drop_acks(1)
            dispatch_events(sim, 11, 20)
            await wait_until(lambda: len(sim.resumes) >= 1, 6, "a RESUME after the zombie")
            dispatch_events(sim, 21, 30)
            await everything_received(bot, sim, 30)
            assert len(sim.identifies) == 1
            assert sim.connections[0].client_close_code not in (1000, 1001)
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


async def test_dropped_connection_resumes() -> None:
    compat.install(compress="zlib-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        bot = Bot(sim)
        await bot.start()
        try:
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            await sim.kill()
            dispatch_events(sim, 11, 30)
            await wait_until(lambda: len(sim.resumes) >= 1, 6, "a RESUME")
            await everything_received(bot, sim, 30)
            assert len(sim.identifies) == 1
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


@pytest.mark.parametrize("mode", [True, "bytes"], ids=["suffix-split", "byte-by-byte"])
async def test_split_zlib_suffix(mode: Any) -> None:
    compat.install(compress="zlib-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        sim.split_frames = mode
        bot = Bot(sim)
        await bot.start()
        try:
            n = 30 if mode is True else 5
            dispatch_events(sim, 1, n)
            await everything_received(bot, sim, n)
            assert len(sim.connections) == 1
            assert compat.stats()["codec_errors"] == before["codec_errors"]
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_corrupt_frame_reconnects_and_resumes(compress: str) -> None:
    compat.install(compress=compress)
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        bot = Bot(sim)
        await bot.start()
        try:
            dispatch_events(sim, 1, 10)
            await everything_received(bot, sim, 10)
            sim.corrupt_next(1)
            dispatch_events(sim, 11, 30)
            await wait_until(lambda: len(sim.resumes) >= 1, 6, "a RESUME after the corrupt frame")
            await everything_received(bot, sim, 30)
            assert sorted(set(bot.test_events())) == list(range(1, 31))
            assert compat.stats()["codec_errors"] == before["codec_errors"] + 1
            assert sim.connections[0].client_close_code not in (1000, 1001)
            assert len(sim.identifies) == 1
            assert not bot.shard._keep_alive_task.done()
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


async def test_spacebar_zstd_one_frame_per_payload() -> None:
    compat.install(compress="zstd-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0, spacebar=True) as sim:
        bot = Bot(sim)
        await bot.start()
        try:
            dispatch_events(sim, 1, 50)
            await everything_received(bot, sim, 50)
            assert sim.connections[0].compress == "zstd-stream"
            assert_mijcodec_decoded(bot, sim, before)
        finally:
            await bot.stop()


# -- controls: the same scenarios kill stock hikari's shard ---------------------------------


@pytest.mark.parametrize("scenario", ["corrupt", "spacebar"])
async def test_control_stock_hikari_shard_dies(scenario: str) -> None:
    from hikari.impl import shard as shard_impl

    assert not compat.is_installed()
    if shard_impl.GatewayShardImpl.__init__.__kwdefaults__["compression"].value != "transport_zstd_stream":
        pytest.skip("this hikari negotiates zlib-stream")
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0, spacebar=scenario == "spacebar") as sim:
        bot = Bot(sim)
        try:
            if scenario == "corrupt":
                await bot.start()
                sim.corrupt_next(1)
                dispatch_events(sim, 1, 3)
                task = bot.shard._keep_alive_task
                await wait_until(lambda: task.done(), 5, "the stock shard to die")
                assert task.exception() is not None
            else:
                with pytest.raises(Exception):
                    await bot.start()
            assert not sim.resumes
        finally:
            try:
                await bot.stop()
            except Exception:
                pass


async def test_corrupt_ready_identifies_again() -> None:
    """READY itself is corrupt: no session to resume yet, so the shard identifies again."""
    compat.install(compress="zlib-stream")
    before = compat.stats()
    async with simulator_class()(token=TOKEN, heartbeat_interval=0.5, guilds=0) as sim:
        sim.corrupt_next(1)
        leaked = reap_hikari_leaked_heartbeats()
        bot = Bot(sim)
        await bot.start()
        try:
            assert len(sim.identifies) == 2 and not sim.resumes
            assert compat.stats()["codec_errors"] == before["codec_errors"] + 1
            dispatch_events(sim, 1, 10)
            await wait_until(lambda: bot.test_events() == list(range(1, 11)), 5, "10 dispatches")
        finally:
            await bot.stop()
        assert len(leaked) <= 1
