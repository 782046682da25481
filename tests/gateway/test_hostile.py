"""The shard against a scripted misbehaving gateway (tests/gateway/_hostile.py, not the
simulator): every case ends within its timeouts, connections stay at a few per second at
most, and every dispatch is delivered exactly once and in order.

The shards use the default backoff and reconnect floor (what a bot gets), with short HELLO /
READY timeouts so the cases run in a couple of seconds each."""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import time

import pytest
from tests.gateway._helpers import Recorder
from tests.gateway._hostile import HostileGateway

from gateway import (GatewayClosedFatal, GatewayError, MemoryIdentifyQueue, MemorySessionStore, RequestRateLimited,
                     SessionState, Shard, ShardManager)
from gateway.protocols import SessionState as PSessionState

WINDOW = 2.0   # seconds a storm case runs
MAX_PER_S = 3  # connections in any 1 s window


def hostile_shard(hg: HostileGateway, **kw) -> Shard:
    kw.setdefault("hello_timeout", 0.4)
    kw.setdefault("ready_timeout", 0.4)
    kw.setdefault("close_timeout", 0.5)
    kw.setdefault("invalid_session_delay", lambda: 0.05)
    # no 5 s IDENTIFY spacing here: the connection rate is bounded without it
    kw.setdefault("identify_queue", MemoryIdentifyQueue(1, 0.0))
    return Shard(hg.TOKEN, api_url=hg.api_url, gateway_url=hg.gateway_url, compress="none", **kw)


def log_lines(caplog, level=logging.WARNING) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= level and r.name.startswith("gateway")]


async def run_for(shard: Shard, seconds: float) -> None:
    task = shard.start()
    await asyncio.sleep(seconds)
    t0 = time.monotonic()
    await asyncio.wait_for(shard.close(), 3)
    assert task.done() and time.monotonic() - t0 < 3


def assert_delivered_once_in_order(rec: Recorder, hg: HostileGateway, prefix: bool = False) -> None:
    want = [(seq, t) for seq, t, _ in hg.log]
    got = rec.pairs()
    if prefix:  # the server wrote more than the client read before the connection ended
        want = want[:len(got)]
    assert got == want


async def test_never_ready_times_out_and_backs_off(caplog):
    async with HostileGateway(answer_identify=False) as hg:
        shard = hostile_shard(hg)
        shard.start()
        with pytest.raises(asyncio.TimeoutError):
            await shard.wait_until_ready(0.6)
        sender = asyncio.ensure_future(shard.update_presence("idle"))
        await asyncio.sleep(WINDOW - 0.6)
        assert not sender.done()  # waits for a session, does not send into the void
        await asyncio.wait_for(shard.close(), 3)
        with pytest.raises(GatewayError):
            await asyncio.wait_for(sender, 1)  # the stopped shard fails it, no hang
        assert shard.metrics.ready_timeouts >= 2 and len(hg.conns) >= 2
        assert hg.max_rate() <= MAX_PER_S
        assert not log_lines(caplog, logging.ERROR)


async def test_never_resumed_falls_back_and_backs_off():
    async with HostileGateway(answer_resume=False) as hg:
        shard = hostile_shard(hg, session=SessionState(0, 1, "old", 5, None))
        await run_for(shard, WINDOW)
        assert len(hg.resumes()) >= 2 and shard.metrics.ready_timeouts >= 2
        assert hg.max_rate() <= MAX_PER_S


@pytest.mark.parametrize("interval", [0, -1, "missing", "41250", True, 10**12])
async def test_bad_hello_interval_is_one_warning_and_backoff(interval, caplog):
    caplog.set_level(logging.DEBUG)
    kw = {"hello_missing": True} if interval == "missing" else {"hello": interval}
    async with HostileGateway(**kw) as hg:
        shard = hostile_shard(hg)
        await run_for(shard, WINDOW)
        assert len(hg.conns) >= 2 and hg.max_rate() <= MAX_PER_S
        assert hg.identifies() == [] and shard.metrics.heartbeats_sent == 0
        warnings = [r for r in log_lines(caplog) if "bad payload" in r.getMessage()]
        # one per connection (the last one may have been closed before its HELLO)
        assert len(hg.conns) - 1 <= len(warnings) == shard.metrics.protocol_errors <= len(hg.conns)
        assert all(r.exc_info is None for r in log_lines(caplog))  # no traceback anywhere
        assert not log_lines(caplog, logging.ERROR)


@pytest.mark.parametrize("where", ["after_hello", "after_ready"])
async def test_op7_on_every_connection_is_rate_bounded(where):
    async with HostileGateway(**{f"op7_{where}": True}) as hg:
        shard = hostile_shard(hg)
        rec = Recorder(shard)
        await run_for(shard, WINDOW)
        assert len(hg.conns) >= 2 and hg.max_rate() <= MAX_PER_S
        assert_delivered_once_in_order(rec, hg, prefix=where == "after_hello")


async def test_ready_d_not_an_object_is_one_warning_and_backoff(caplog):
    async with HostileGateway(ready_d=["not", "an", "object"]) as hg:
        shard = hostile_shard(hg)
        rec = Recorder(shard)
        await run_for(shard, WINDOW)
        assert len(hg.conns) >= 2 and hg.max_rate() <= MAX_PER_S
        assert rec.dispatches == [] and shard.seq is None  # never acknowledged
        ready_warnings = [r for r in log_lines(caplog) if "READY" in r.getMessage()]
        assert len(hg.conns) - 1 <= len(ready_warnings) <= len(hg.conns)
        assert not log_lines(caplog, logging.ERROR)


@pytest.mark.parametrize("mode", ["silent", "close"])
async def test_resume_url_that_fails_after_connecting_falls_back(mode):
    async with HostileGateway(resume_mode=mode) as hg:
        shard = hostile_shard(hg)
        rec = Recorder(shard)
        shard.start()
        try:
            await shard.wait_until_ready(3)
            await hg.dispatch("MESSAGE_CREATE", {"i": 1})
            await hg.close_live(4000)
            await hg.dispatch("MESSAGE_CREATE", {"i": 2})  # logged while disconnected
            t0 = time.monotonic()
            await asyncio.sleep(0.1)
            await shard.wait_until_ready(5)
            assert time.monotonic() - t0 < 4
            await hg.dispatch("MESSAGE_CREATE", {"i": 3})
            await asyncio.sleep(0.2)
            paths = [c.path for c in hg.conns]
            assert paths == ["/gateway", "/resume", "/gateway"]
            assert shard.metrics.resume_url_fallbacks == 1
            assert len(hg.resumes()) == 1 and len(hg.identifies()) == 1
            assert_delivered_once_in_order(rec, hg)
        finally:
            await shard.close()


async def test_rate_limited_fails_the_members_request():
    async with HostileGateway(rate_limit_op8=True) as hg:
        shard = hostile_shard(hg)
        rec = Recorder(shard)
        shard.start()
        try:
            await shard.wait_until_ready(3)
            with pytest.raises(RequestRateLimited) as info:
                await asyncio.wait_for(shard.request_members(1, query="a", timeout=None), 3)
            assert info.value.retry_after == 2.5 and info.value.opcode == 8
            await asyncio.sleep(0.1)
            assert [t for _, t in rec.pairs()] == ["READY", "RATE_LIMITED"]
        finally:
            await shard.close()


async def test_bad_chunks_are_delivered_once_and_fail_only_their_request(caplog):
    extra = [("GUILD_MEMBERS_CHUNK", '{"guild_id":"1","members":[],"chunk_index":0,"a":tru}'),
             ("MESSAGE_CREATE", '{"i":1}')]
    answer = '{"guild_id":"1","members":[],"chunk_index":0,"chunk_count":null,"nonce":"NONCE"}'
    async with HostileGateway(extra_raw=extra, chunk_answer=answer) as hg:
        shard = hostile_shard(hg)
        rec = Recorder(shard)
        shard.start()
        try:
            await shard.wait_until_ready(3)
            with pytest.raises(GatewayError, match="chunk_count"):
                await asyncio.wait_for(shard.request_members(1, query="", timeout=None), 3)
            await asyncio.sleep(0.1)
            assert_delivered_once_in_order(rec, hg)
            assert shard.seq == len(hg.log) == 4 and len(hg.conns) == 1  # no reconnect
            assert not log_lines(caplog, logging.ERROR)
        finally:
            await shard.close()


async def test_session_start_limit_wait_is_interrupted_by_close():
    async with HostileGateway(session_start_remaining=0) as hg:
        mgr = ShardManager(hg.TOKEN, api_url=hg.api_url, compress="none", close_timeout=0.5)
        await mgr.start()
        await asyncio.sleep(0.3)
        queue = mgr.identify_queue
        assert queue.waits and 3590 < queue.waits[0] <= 3600  # re-read, still 0: waits
        assert hg.gateway_bot_requests == 2 and hg.identifies() == []
        await asyncio.wait_for(mgr.close(), 3)
        assert not any(s.running for s in mgr.shards.values())


async def test_identifies_after_start_count_against_the_budget():
    async with HostileGateway(session_start_remaining=2) as hg:
        store = MemorySessionStore()
        mgr = ShardManager(hg.TOKEN, api_url=hg.api_url, compress="none", close_timeout=0.5,
                           session_store=store, identify_period=0.0,
                           invalid_session_delay=lambda: 0.01, min_connect_interval=0.0)
        await mgr.start()
        shard, queue = mgr.shards[0], mgr.identify_queue
        await shard.wait_until_ready(3)
        assert queue.remaining == 1 and hg.session_start_remaining == 1
        await hg.invalidate(False)  # op 9 false: a second IDENTIFY, the last of the budget
        await asyncio.sleep(0.3)
        await shard.wait_until_ready(3)
        assert len(hg.identifies()) == 2 and queue.remaining == 0
        await hg.invalidate(False)  # the third: budget used up -> re-read (still 0) -> wait
        await asyncio.sleep(0.5)
        assert len(hg.identifies()) == 2
        assert hg.gateway_bot_requests == 2 and queue.waits and queue.waits[0] > 3000
        await asyncio.wait_for(mgr.close(keep_sessions=False), 3)  # close(1000)
        assert store.states == {}  # the session is forgotten, not saved
        assert shard.session_state().session_id is None


async def test_start_twice_returns_the_running_task():
    async with HostileGateway() as hg:
        shard = hostile_shard(hg)
        t1 = shard.start()
        assert shard.start() is t1
        with pytest.raises(GatewayError):
            await shard.run()
        await shard.wait_until_ready(3)
        await shard.close()
        assert len(hg.identifies()) == 1 and t1.done()


async def test_wait_until_ready_honours_timeout_before_start_and_raises_fatal():
    async with HostileGateway() as hg:
        shard = hostile_shard(hg)
        t0 = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await shard.wait_until_ready(0.2)
        assert time.monotonic() - t0 < 1
        hg.answer_identify = False
        shard.start()
        waiter = asyncio.ensure_future(shard.wait_until_ready())
        await asyncio.sleep(0.2)
        await hg.close_live(4004)
        with pytest.raises(GatewayClosedFatal):
            await asyncio.wait_for(waiter, 3)
        with pytest.raises(GatewayClosedFatal):
            await shard.wait_until_ready(1)


async def test_broken_out_subscription_is_dropped():
    async with HostileGateway() as hg:
        shard = hostile_shard(hg)
        shard.start()
        try:
            await shard.wait_until_ready(3)

            async def first():
                async for ev in shard:
                    return ev
            task = asyncio.ensure_future(first())
            await asyncio.sleep(0.05)
            await hg.dispatch("MESSAGE_CREATE", {"i": 0})
            assert (await asyncio.wait_for(task, 2)).t == "MESSAGE_CREATE"
            gc.collect()
            assert len(shard.delivery.subscribers) == 0
            for i in range(50):
                await hg.dispatch("MESSAGE_CREATE", {"i": i})
            await asyncio.sleep(0.1)
            assert len(shard.delivery.subscribers) == 0
        finally:
            await shard.close()


async def test_cancelling_manager_run_closes_everything():
    async with HostileGateway() as hg:
        mgr = ShardManager(hg.TOKEN, api_url=hg.api_url, compress="none", close_timeout=0.5,
                           session_store=MemorySessionStore())
        runner = asyncio.ensure_future(mgr.run())
        await asyncio.sleep(0.05)
        await mgr.start()
        await mgr.shards[0].wait_until_ready(3)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        assert not mgr.shards[0].running and mgr._http is None
        assert all(c.ws.closed for c in hg.conns)
        assert mgr.session_store.states[0].session_id == hg.session_id  # kept resumable


async def test_token_never_in_logs_repr_errors_or_state(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    async with HostileGateway(op7_after_ready=True) as hg:
        state = tmp_path / "s.json"
        mgr = ShardManager(hg.TOKEN, api_url=hg.api_url, compress="none", close_timeout=0.5,
                           state_file=str(state))
        await mgr.start()
        await mgr.shards[0].wait_until_ready(3)
        await asyncio.sleep(1.0)
        texts = [repr(mgr), repr(mgr.shards[0]), repr(mgr.shards[0].session_state()),
                 str(mgr.shards[0].metrics)]
        await mgr.close()
        texts.append(state.read_text())
        texts += [r.getMessage() + str(r.exc_info) for r in caplog.records]
    bad = Shard("Bot " + HostileGateway.TOKEN, api_url="http://127.0.0.1:1/api/v10")
    try:
        await asyncio.wait_for(bad.run(), 5)
    except Exception as exc:  # connection refused: its text must not carry the token
        texts.append(repr(exc) + str(exc))
    assert len(texts) > 5
    assert not [t for t in texts if HostileGateway.TOKEN in t]
    assert PSessionState is SessionState


@pytest.mark.parametrize("script", [{"hello": 0}, {"hello_missing": True}, {"op7_after_ready": True},
                                    {"answer_identify": False}, {"ready_d": "x"}])
async def test_cli_against_hostile_scripts_ends_on_time_and_bounds_connections(script):
    from tests.gateway.test_cli import _gateway
    async with HostileGateway(**script) as hg:
        t0 = time.monotonic()
        rc, out, err = await _gateway("run", "--token", hg.TOKEN, "--api-url", hg.api_url,
                                      "--compress", "none", "--duration", "3", timeout=20)
        assert rc == 0, err
        assert time.monotonic() - t0 < 12
        assert "Traceback" not in err and hg.TOKEN not in err + out
        assert hg.max_rate() <= MAX_PER_S
        seqs = [json.loads(line)["s"] for line in out.splitlines()]
        assert seqs == sorted(set(seqs))  # never twice, in order


async def test_close_interrupts_a_gateway_bot_request_that_never_answers():
    async with HostileGateway() as hg:
        hg.bot_hangs = True
        shard = Shard(hg.TOKEN, api_url=hg.api_url, compress="none")  # no gateway_url given
        task = shard.start()
        await asyncio.sleep(0.3)
        assert hg.gateway_bot_requests == 1 and not task.done()
        await asyncio.wait_for(shard.close(), 2)
        assert task.done() and not shard.running and hg.conns == []
