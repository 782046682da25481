"""ShardManager: shard count from /gateway/bot, shard-id ranges, identify buckets, session
state save/restore."""
from __future__ import annotations

import asyncio
import json

import pytest

from gateway import ShardManager, SubscriptionOverflow, parse_shard_ids
from gateway.testing import GatewaySimulator

FAST = dict(compress="zlib-stream", invalid_session_delay=lambda: 0.01, close_timeout=1.0)


def fast(**kw):
    return {**FAST, **kw}


def test_parse_shard_ids():
    assert parse_shard_ids("0-3") == [0, 1, 2, 3]
    assert parse_shard_ids("0,2,5-6") == [0, 2, 5, 6]
    with pytest.raises(ValueError):
        parse_shard_ids("3-1")


async def test_shard_count_from_gateway_bot_and_identify_buckets():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=4, max_concurrency=2) as sim:
        mgr = ShardManager(sim.token, api_url=sim.api_url, identify_period=1.0, **fast())
        try:
            await mgr.start()
            assert sorted(mgr.shards) == [0, 1, 2, 3] and mgr.shard_count == 4
            await asyncio.gather(*(s.wait_until_ready(5) for s in mgr.shards.values()))
            ids = sorted(sim.identifies, key=lambda p: p.time)
            assert sorted(tuple(p.d["shard"]) for p in ids) == [(0, 4), (1, 4), (2, 4), (3, 4)]
            when = {p.d["shard"][0]: p.time for p in ids}
            # buckets 0 (shards 0, 2) and 1 (shards 1, 3): one identify per bucket per period
            assert when[2] - when[0] >= 0.98 and when[3] - when[1] >= 0.98
            assert abs(when[1] - when[0]) < 0.6  # different buckets go concurrently
            assert mgr.identify_limiter.max_concurrency == 2
        finally:
            await mgr.close(keep_sessions=False)


async def test_shard_id_range_out_of_total():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=1) as sim:
        mgr = ShardManager(sim.token, api_url=sim.api_url, shard_ids=[2, 3], shard_count=6,
                           identify_period=0.0, **fast())
        try:
            await mgr.start()
            await asyncio.gather(*(s.wait_until_ready(5) for s in mgr.shards.values()))
            assert sorted(p.d["shard"][0] for p in sim.identifies) == [2, 3]
            assert all(p.d["shard"][1] == 6 for p in sim.identifies)
        finally:
            await mgr.close(keep_sessions=False)


async def test_state_save_restore_resumes_after_restart(tmp_path):
    state = tmp_path / "sessions.json"
    async with GatewaySimulator(heartbeat_interval=0.1, shards=2, max_concurrency=2) as sim:
        got: list[tuple[int, int, str]] = []
        mgr = ShardManager(sim.token, api_url=sim.api_url, state_file=str(state),
                           identify_period=0.0, **fast())
        mgr.on("*", lambda ev: got.append((ev.shard_id, ev.s, ev.t)))
        await mgr.start()
        await asyncio.gather(*(s.wait_until_ready(5) for s in mgr.shards.values()))
        sim.dispatch("MESSAGE_CREATE", {"before": True})
        await sim.wait_for(lambda: all(s.seq == sim.sessions[s.session_id].seq
                                       for s in mgr.shards.values()), 3)
        await mgr.close(keep_sessions=True)  # "process exits"
        saved = json.loads(state.read_text())
        assert len(saved["sessions"]) == 2 and all(s["session_id"] for s in saved["sessions"])
        assert all(c.client_close_code not in (1000, 1001) for c in sim.connections)
        sim.dispatch("MESSAGE_CREATE", {"while_down": True})  # missed while restarting

        mgr2 = ShardManager(sim.token, api_url=sim.api_url, state_file=str(state),
                            identify_period=0.0, **fast())
        mgr2.on("*", lambda ev: got.append((ev.shard_id, ev.s, ev.t)))
        try:
            await mgr2.start()

            def delivered(sid: int) -> int:  # the last seq a handler has seen on that shard
                return max((s for shard, s, _ in got if shard == sid), default=0)
            # wait on what the handlers saw, not on shard.seq: a shard acknowledges s when it
            # queues the event, and its delivery task runs the handlers a loop turn later
            await sim.wait_for(lambda: len(sim.resumes) == 2 and all(
                delivered(s.shard_id) == sim.sessions[s.session_id].seq
                for s in mgr2.shards.values()), 5)
            assert len(sim.identifies) == 2  # only the first process identified
            for sid in (0, 1):
                mine = [(s, t) for shard, s, t in got if shard == sid]
                sess = sim.session_for_shard(sid)
                assert mine == [(e.seq, e.t) for e in sess.events]
        finally:
            await mgr2.close(keep_sessions=False)
        assert json.loads(state.read_text())["sessions"] == []


async def test_fatal_close_on_one_shard_stops_the_manager():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=2) as sim:
        mgr = ShardManager(sim.token, api_url=sim.api_url, identify_period=0.0, **fast())
        await mgr.start()
        await asyncio.gather(*(s.wait_until_ready(5) for s in mgr.shards.values()))
        runner = asyncio.ensure_future(mgr.run())
        await sim.close(4013, "Invalid intent(s).", conn=sim.connections[0])
        from gateway import GatewayClosedFatal
        with pytest.raises(GatewayClosedFatal) as ei:
            await asyncio.wait_for(runner, 5)
        assert ei.value.code == 4013
        assert not any(s.running for s in mgr.shards.values())


async def test_merged_event_iteration():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=2, max_concurrency=2) as sim:
        mgr = ShardManager(sim.token, api_url=sim.api_url, identify_period=0.0, **fast())
        await mgr.start()
        it = mgr.events("MESSAGE_CREATE")
        seen = []

        async def consume():
            async for ev in it:
                seen.append((ev.shard_id, ev.d["n"]))
                if len(seen) == 6:
                    return
        task = asyncio.ensure_future(consume())
        await asyncio.gather(*(s.wait_until_ready(5) for s in mgr.shards.values()))
        await asyncio.sleep(0.05)
        for n in range(3):
            sim.dispatch("MESSAGE_CREATE", {"n": n})
        await asyncio.wait_for(task, 3)
        await it.aclose()
        for shard_id in (0, 1):
            assert [n for s, n in seen if s == shard_id] == [0, 1, 2]
        await mgr.close(keep_sessions=False)


async def test_merged_iteration_is_bounded_and_says_so():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=2, max_concurrency=2) as sim:
        mgr = ShardManager(sim.token, api_url=sim.api_url, identify_period=0.0, **fast())
        handled: list[tuple[int, int]] = []
        mgr.on("MESSAGE_CREATE", lambda ev: handled.append((ev.shard_id, ev.d["n"])))
        try:
            await mgr.start()
            await asyncio.gather(*(s.wait_until_ready(5) for s in mgr.shards.values()))
            it = mgr.events("MESSAGE_CREATE", max_pending=3)
            first = asyncio.ensure_future(it.__anext__())  # the generator subscribes here
            await asyncio.sleep(0.05)
            for n in range(30):
                sim.dispatch("MESSAGE_CREATE", {"n": n})
            ev = await asyncio.wait_for(first, 3)
            seen = [(ev.shard_id, ev.d["n"])]
            await sim.wait_for(lambda: len(handled) == 60, 5, "every event handled")
            with pytest.raises(SubscriptionOverflow):
                async for ev in it:
                    seen.append((ev.shard_id, ev.d["n"]))
            for shard_id in (0, 1):
                mine = [n for s, n in seen if s == shard_id]
                # a prefix in order, at most what the shard's queue, its pump and the merged
                # queue can hold: nothing skipped, and far from all 30
                assert mine == list(range(len(mine))) and len(mine) <= 3 + 1 + 1 + 1
        finally:
            await mgr.close(keep_sessions=False)


async def test_exhausted_session_start_limit_waits_for_reset():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=2) as sim:
        sim.session_start_remaining = 1  # the simulator counts every IDENTIFY against it
        sim.session_start_reset_after = 3_600_000
        slept = []

        async def fake_sleep(dt):
            slept.append(dt)
        mgr = ShardManager(sim.token, api_url=sim.api_url, identify_period=0.0, sleep=fake_sleep,
                           **fast())
        try:
            await mgr.start()
            await asyncio.gather(*(s.wait_until_ready(5) for s in mgr.shards.values()))
            # one identify left: the first shard identifies, the second re-reads the limit
            # (still 0) and waits reset_after
            assert len(slept) == 1 and 3599 < slept[0] <= 3600.0
            assert len(sim.gateway_bot_requests) == 2  # start + the re-read
        finally:
            await mgr.close(keep_sessions=False)
