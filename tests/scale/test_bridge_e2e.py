"""End to end: ``python -m gateway bridge`` processes, the simulator and a real redis-server."""
from __future__ import annotations

import asyncio
import time

import pytest

from gateway.testing import GatewaySimulator

from ._harness import (Bridge, assert_never_two_connections, check_exactly_once, read_streams,
                       wait_published, wait_until)

SHARDS = 16


async def _start(sim, redis_server, n, *extra, **kw):
    bridges = [Bridge(sim, redis_server.url, "--shards", str(SHARDS), *extra, name=f"b{i}", **kw)
               for i in range(n)]
    await asyncio.gather(*(b.start() for b in bridges))
    return bridges


async def _stop_all(bridges):
    codes = await asyncio.gather(*(b.stop() for b in bridges))
    for b in bridges:  # shown by pytest only when the test fails
        print(f"----- {b.name} (pid {b.pid}) stderr -----\n{b.text()[-6000:]}")
        b.cleanup()
    return codes


def _ready(sim):
    return sum(1 for c in sim.live_connections() if c.ready)


@pytest.mark.parametrize("max_concurrency", [1, 4])
async def test_identify_buckets_across_three_processes(redis_server, redis, max_concurrency):
    period = 0.5
    async with GatewaySimulator(heartbeat_interval=1.0, shards=SHARDS,
                                max_concurrency=max_concurrency) as sim:
        bridges = await _start(sim, redis_server, 3, identify_period=period)
        try:
            await wait_until(lambda: _ready(sim) == SHARDS, 60, "16 shards ready")
            owners = [b.owned() for b in bridges]
        finally:
            codes = await _stop_all(bridges)
        assert codes == [143, 143, 143]  # SIGTERM: handed over, run's status
        # each shard identified once, by exactly one process; the work was shared
        shards = [p.d["shard"][0] for p in sim.identifies]
        assert sorted(shards) == list(range(SHARDS))
        assert sorted(i for o in owners for i in o) == list(range(SHARDS))
        assert sum(1 for o in owners if o) >= 2, owners
        proc = {i: n for n, o in enumerate(owners) for i in o}
        # the simulator's receive times: one IDENTIFY per bucket per period, across processes
        by_bucket: dict[int, list[tuple[float, int]]] = {}
        for p in sim.identifies:
            sh = p.d["shard"][0]
            by_bucket.setdefault(sh % max_concurrency, []).append((p.time, sh))
        crossed = 0
        for b, items in by_bucket.items():
            items.sort()
            for (t0, s0), (t1, s1) in zip(items, items[1:]):
                assert t1 - t0 >= period - 0.01, (
                    f"bucket {b}: shard {s1} identified {t1 - t0:.3f}s after shard {s0}")
                crossed += proc[s0] != proc[s1]
        assert crossed >= 1  # consecutive IDENTIFYs of a bucket came from different processes
        if max_concurrency > 1:
            # buckets run side by side: the first IDENTIFY of every bucket within one period
            firsts = sorted(items[0][0] for items in by_bucket.values())
            assert len(firsts) == max_concurrency and firsts[-1] - firsts[0] < period
        assert await redis.hget("gateway:limits", "remaining") == b"%d" % (999 - SHARDS)
        assert_never_two_connections(sim)


async def test_kill9_failover_resumes_and_publishes_exactly_once(redis_server, redis):
    ttl = 2.0
    async with GatewaySimulator(heartbeat_interval=1.0, shards=SHARDS, max_concurrency=4) as sim:
        bridges = await _start(sim, redis_server, 3, ttl=ttl, identify_period=0.3)
        try:
            await wait_until(lambda: _ready(sim) == SHARDS, 60, "16 shards ready")
            sim.start_traffic(15.0, seed=11)  # 15 events/s into each of the 16 sessions
            await asyncio.sleep(1.5)
            victim = max(bridges, key=lambda b: len(b.owned()))
            lost = victim.owned()
            assert lost
            victim.kill9()
            t_kill = time.monotonic()
            survivors = [b for b in bridges if b is not victim]
            await wait_until(lambda: lost <= set().union(*(b.owned() for b in survivors)),
                             ttl + 8, "the dead process's shards taken over")
            took = time.monotonic() - t_kill
            await wait_until(lambda: _ready(sim) == SHARDS, 10, "16 shards ready again")
            await asyncio.sleep(1.0)
            await sim.stop_traffic()
            await wait_published(sim, redis, 30)
            entries = await read_streams(redis)
            stats = [(b.name, sorted(b.takeovers())) for b in survivors]
        finally:
            await _stop_all(bridges)
        assert took < ttl + 5, took
        # taken over by RESUME from the stored session: nobody identified a second time
        assert len(sim.identifies) == SHARDS
        resumed = {sim.sessions[p.d["session_id"]].shard[0] for p in sim.resumes}
        assert lost <= resumed
        assert lost <= set().union(*(set(t) for _, t in stats))
        assert sim._traffic.emitted > 0
        n = check_exactly_once(sim, entries)
        assert n == len(entries) and n > SHARDS * 20
        assert_never_two_connections(sim)


async def test_redis_paused_past_the_buffer_nothing_lost_heartbeats_kept(redis_server, redis):
    interval = 1.0
    async with GatewaySimulator(heartbeat_interval=interval, shards=4, max_concurrency=4) as sim:
        # a long lease so that the pause tests buffering, not failover
        b = Bridge(sim, redis_server.url, "--shards", "4", "--buffer", "200", ttl=30.0,
                   identify_period=0.2)
        await b.start()
        try:
            await wait_until(lambda: _ready(sim) == 4, 60, "4 shards ready")
            sim.start_traffic(40.0, seed=5)  # 160 events/s in all
            await asyncio.sleep(1.0)
            n_conn = len(sim.connections)
            redis_server.pause()
            try:
                # the buffer (200) fills in about a second: shards close resumably
                await wait_until(lambda: sum(1 for c in sim.connections if c.closed_at) >= 1,
                                 10, "a shard to close on the full buffer", step=0.05)
                await asyncio.sleep(3.0)  # still paused: the closed shards wait for Redis
                assert not any(c.ready for c in sim.connections[n_conn:])
            finally:
                redis_server.resume()
            await wait_until(lambda: _ready(sim) == 4, 40, "4 shards resumed")
            await asyncio.sleep(1.0)
            await sim.stop_traffic()
            await wait_published(sim, redis, 30)
            entries = await read_streams(redis)
        finally:
            code = await b.stop()
            text = b.text()
            b.cleanup()
        assert code == 143, text[-3000:]
        assert "event sink is full" in text
        closed = [c for c in sim.connections if c.client_close_code not in (None, 1000, 1001)]
        assert closed and all(c.client_close_code != 4900 for c in sim.connections), \
            [c.client_close_code for c in sim.connections]
        assert len(sim.identifies) == 4 and len(sim.resumes) >= 1  # RESUMEd, never re-identified
        check_exactly_once(sim, entries)
        # heartbeats never starved: on every connection, beats at most ~1 interval apart
        for c in sim.connections:
            beats = [p.time for p in c.heartbeats]
            end = c.closed_at or time.monotonic()
            if end - c.opened_at < interval * 1.6:
                continue
            marks = [c.opened_at] + beats + [end]
            worst = max(y - x for x, y in zip(marks, marks[1:]))
            assert worst <= interval * 1.6, (c.id, worst)


async def test_overlapping_ranges_never_connect_a_shard_twice(redis_server, redis):
    async with GatewaySimulator(heartbeat_interval=1.0, shards=SHARDS, max_concurrency=16) as sim:
        a = Bridge(sim, redis_server.url, "--shard-ids", "0-9", "--shard-count", str(SHARDS),
                   identify_period=0.2, name="a")
        b = Bridge(sim, redis_server.url, "--shard-ids", "4-15", "--shard-count", str(SHARDS),
                   identify_period=0.2, name="b")
        await asyncio.gather(a.start(), b.start())
        try:
            await wait_until(lambda: _ready(sim) == SHARDS, 60, "16 shards ready")
            sim.start_traffic(10.0, seed=3)
            await asyncio.sleep(2.0)
            assert a.owned() <= set(range(10)) and b.owned() <= set(range(4, 16))
            assert not a.owned() & b.owned()
            # a leaves: b takes over what it can (4-9), RESUMEing; 0-3 have nobody else
            moved = a.owned() & set(range(4, 10))
            assert await a.stop() == 143
            await wait_until(lambda: moved <= b.owned(), 10, "b took a's shards 4-9")
            await asyncio.sleep(1.0)
            await sim.stop_traffic()
            assert_never_two_connections(sim)
        finally:
            await _stop_all([a, b])
        assert len(sim.identifies) == SHARDS
