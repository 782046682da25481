"""HELLO, heartbeats (jitter, seq, op 1), ACK latency and zombie detection."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest
from tests.gateway._helpers import Recorder, caught_up, session_log

from gateway import ZOMBIE_CLOSE_CODE
from gateway.testing import GatewaySimulator


async def test_first_heartbeat_is_jittered_by_injected_random(shard_factory, sim):
    # Wide margins: a loaded CI machine can run a timer a few hundred ms late, never early.
    sim.heartbeat_interval = 2.0
    shard = shard_factory(rng=lambda: 0.5)
    shard.start()
    conn = await sim.wait_connections(1)
    await sim.wait_for(lambda: len(conn.heartbeats) >= 2, 8, "two heartbeats")
    first = conn.heartbeats[0].time - conn.opened_at
    second = conn.heartbeats[1].time - conn.heartbeats[0].time
    assert 0.98 <= first <= 1.7  # interval * 0.5 = 1 s after HELLO: not at once, not a full interval
    assert 1.5 <= second <= 2.8  # then every interval


async def test_first_heartbeat_immediate_when_random_is_zero(shard_factory, sim):
    sim.heartbeat_interval = 20.0
    shard = shard_factory(rng=lambda: 0.0)
    shard.start()
    conn = await sim.wait_connections(1)
    await sim.wait_for(lambda: len(conn.heartbeats) >= 1, 6, "first heartbeat")
    # at once after HELLO; a jittered or full-interval wait would take seconds more
    assert conn.heartbeats[0].time - conn.opened_at < 5.0


async def test_default_jitter_uses_random(shard_factory, sim, monkeypatch):
    import gateway.shard as shard_mod
    calls = []
    monkeypatch.setattr(shard_mod.random, "random", lambda: calls.append(1) or 0.99)
    sim.heartbeat_interval = 0.3
    shard = shard_mod.Shard(sim.token, api_url=sim.api_url, compress="zlib-stream")
    try:
        shard.start()
        conn = await sim.wait_connections(1)
        await sim.wait_for(lambda: len(conn.heartbeats) >= 1, 2, "first heartbeat")
        assert conn.heartbeats[0].time - conn.opened_at >= 0.25  # 0.3 * 0.99
        assert calls
    finally:
        await shard.close()


async def test_heartbeats_carry_last_sequence(shard_factory, sim):
    shard = shard_factory()
    shard.start()
    conn = await sim.wait_connections(1)
    # before READY a heartbeat carries null
    await sim.wait_for(lambda: len(conn.heartbeats) >= 1, 2)
    assert conn.heartbeats[0].d in (None, 1, 2, 3, 4)  # READY (+ 3 GUILD_CREATE) may precede
    await caught_up(sim, shard)
    for i in range(5):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    await caught_up(sim, shard)
    last = sim.session_for_shard(0).seq
    n = len(conn.heartbeats)
    await sim.wait_for(lambda: len(conn.heartbeats) >= n + 2, 2)
    assert all(hb.d == last for hb in conn.heartbeats[n:])
    # every heartbeat carried the latest seq the client had at that moment, never more
    assert all(hb.d is None or hb.d <= last for hb in conn.heartbeats)


async def test_heartbeat_seq_null_before_any_dispatch():
    async with GatewaySimulator(heartbeat_interval=0.05) as sim:
        from tests.gateway._helpers import fast_shard
        shard = fast_shard(sim, rng=lambda: 0.0)
        # hold IDENTIFY back so the first beats come before READY
        gate = asyncio.Event()

        class Gate:
            def bucket(self, i):
                return 0

            async def acquire(self, i):
                await gate.wait()
        shard.identify_limiter = Gate()
        shard.start()
        conn = await sim.wait_connections(1)
        await sim.wait_for(lambda: len(conn.heartbeats) >= 2, 2)
        assert [hb.d for hb in conn.heartbeats[:2]] == [None, None]
        gate.set()
        await shard.wait_until_ready(3)
        await shard.close()


async def test_op1_from_server_is_answered_at_once(shard_factory, sim):
    sim.heartbeat_interval = 20.0
    shard = shard_factory(rng=lambda: 0.9)  # first regular beat only after 18 s
    shard.start()
    await shard.wait_until_ready(3)
    conn = sim.latest
    await caught_up(sim, shard)
    assert conn.heartbeats == []
    t0 = time.monotonic()
    await sim.request_heartbeat()
    await sim.wait_for(lambda: len(conn.heartbeats) == 1, 6, "heartbeat answer")
    assert conn.heartbeats[0].time - t0 < 5.0  # an answer, not the regular beat at 18 s
    assert conn.heartbeats[0].d == shard.seq


async def test_ack_latency_metric(shard_factory, sim):
    shard = shard_factory()
    shard.start()
    await shard.wait_until_ready(3)
    await sim.wait_for(lambda: shard.metrics.heartbeat_acks >= 2, 2)
    m = shard.snapshot_metrics()
    assert m.latency is not None and 0 <= m.latency < 1.0  # a loopback round trip, not a clock reading
    assert m.heartbeats_sent >= m.heartbeat_acks >= 2


async def test_zombie_after_one_missed_ack_closes_non_1000_and_resumes(shard_factory, sim):
    shard = shard_factory()
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    conn1 = sim.latest
    await sim.wait_for(lambda: len(conn1.heartbeats) >= 2, 2)
    for i in range(3):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    sim.drop_acks(1)
    n = len(conn1.heartbeats)
    conn2 = await sim.wait_ready(2, timeout=2)
    # exactly one heartbeat went unanswered: the next due beat found no ACK and closed
    assert len(conn1.heartbeats) == n + 1
    missed = conn1.heartbeats[-1]
    assert conn1.client_close_code == ZOMBIE_CLOSE_CODE != 1000
    assert conn1.closed_at - missed.time == pytest.approx(sim.heartbeat_interval, abs=0.06)
    assert conn2.path == sim.resume_path and len(sim.resumes) == 1
    assert sim.resumes[0].d["seq"] == missed.d or sim.resumes[0].d["seq"] >= missed.d
    sim.dispatch("MESSAGE_CREATE", {"after": True})
    await caught_up(sim, shard)
    assert rec.pairs() == session_log(sim)
    assert shard.metrics.zombies == 1 and "zombie" in rec.names()


async def test_all_acks_dropped_keeps_reconnecting_and_resuming(shard_factory, sim):
    shard = shard_factory()
    shard.start()
    await shard.wait_until_ready(3)
    sim.drop_all_acks = True
    await sim.wait_connections(3, timeout=3)
    sim.drop_all_acks = False
    await sim.wait_for(lambda: sim.latest.ready, 3)
    assert len(sim.identifies) == 1 and len(sim.resumes) >= 2
    assert all(c.client_close_code == ZOMBIE_CLOSE_CODE for c in sim.connections[:2])


async def test_slow_async_handler_does_not_delay_heartbeats_or_reading(shard_factory, sim):
    shard = shard_factory()
    rec = Recorder(shard)
    started = []

    @shard.on("MESSAGE_CREATE")
    async def slow(ev):
        started.append(ev.s)
        await asyncio.sleep(1.0)

    shard.start()
    await shard.wait_until_ready(3)
    conn = sim.latest
    for i in range(20):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    await caught_up(sim, shard)
    n = len(conn.heartbeats)
    await asyncio.sleep(0.5)
    assert len(conn.heartbeats) >= n + 3  # still beating every 0.1 s
    assert len(started) == 20 and started == sorted(started)  # all handlers started, in order
    assert len(sim.connections) == 1 and shard.metrics.zombies == 0
    assert rec.seqs()[-20:] == started


async def test_blocked_event_loop_warns(shard_factory, sim, caplog):
    sim.heartbeat_interval = 1.0
    shard = shard_factory(rng=lambda: 0.9)
    rec = Recorder(shard)

    @shard.on("MESSAGE_CREATE")
    def blocker(ev):
        time.sleep(0.45)  # a sync handler that blocks the loop

    shard.start()
    await shard.wait_until_ready(3)
    caplog.set_level(logging.WARNING, logger="gateway.shard")
    await asyncio.sleep(0.3)  # the watchdog runs
    sim.dispatch("MESSAGE_CREATE", {})
    await sim.wait_for(lambda: shard.metrics.loop_blocked >= 1, 3, "loop blocked warning")
    await asyncio.sleep(0.05)
    assert "loop_blocked" in rec.names()
    assert shard.metrics.max_loop_lag >= 0.3  # 0.45 s block minus at most one tick
    assert any("blocked" in r.getMessage() for r in caplog.records)
