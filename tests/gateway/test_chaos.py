"""Seeded random fault sequences under traffic: every dispatch of every session is delivered
exactly once and in order (checked against the simulator's logs with verify_delivery)."""
from __future__ import annotations

import asyncio
import random

import pytest

from gateway.testing import GatewaySimulator, verify_delivery
from tests.gateway._helpers import Recorder, fast_shard

NON_FATAL = [1000, 1001, 1011, 4000, 4001, 4002, 4003, 4005, 4007, 4008, 4009, 4900]


async def _fault(sim: GatewaySimulator, rng: random.Random, log: list[str]) -> None:
    conn = sim.latest
    if conn is None or not conn.ready or not conn.open:
        return
    kind = rng.choice(["op7", "op9t", "op9f", "close", "zombie", "corrupt", "kill",
                       "op7-before-hello", "op1", "split", "overlap", "bad-resume-url"])
    log.append(kind)
    if kind == "op7":
        await sim.send_reconnect(conn)
    elif kind == "op9t":
        await sim.invalidate_session(True, conn)
    elif kind == "op9f":
        await sim.invalidate_session(False, conn)
    elif kind == "close":
        code = rng.choice(NON_FATAL)
        log[-1] = f"close {code}"
        await sim.close(code, "", conn)
    elif kind == "zombie":
        sim.drop_acks(1)
    elif kind == "corrupt":
        sim.corrupt_next(1)
    elif kind == "kill":
        await sim.kill(conn)
    elif kind == "op7-before-hello":
        sim.reconnect_before_hello += 1
        await sim.send_reconnect(conn)
    elif kind == "op1":
        await sim.request_heartbeat(conn)
    elif kind == "split":
        sim.split_frames = not sim.split_frames
    elif kind == "overlap":
        sim.replay_overlap = rng.randrange(0, 6)
    elif kind == "bad-resume-url":
        sim.break_resume_url = not sim.break_resume_url


@pytest.mark.parametrize("compress,seed", [("zlib-stream", 1), ("zstd-stream", 2), ("none", 3),
                                           ("zlib-stream", 4), ("zstd-stream", 5)])
async def test_random_faults_never_lose_or_duplicate(compress, seed):
    rng = random.Random(seed)
    async with GatewaySimulator(heartbeat_interval=0.08, seed=seed) as sim:
        shard = fast_shard(sim, compress=compress, rng=rng.random)
        rec = Recorder(shard)
        shard.start()
        try:
            await shard.wait_until_ready(3)
            sim.start_traffic(1500, seed=seed)
            faults: list[str] = []
            for _ in range(25):
                await asyncio.sleep(rng.uniform(0.03, 0.12))
                await _fault(sim, rng, faults)
            await asyncio.sleep(0.2)
            await sim.stop_traffic()
            sim.drop_all_acks = False

            def caught_up() -> bool:
                s = sim.sessions.get(shard.session_id or "")
                return s is not None and shard.seq == s.seq and shard._established.is_set()
            await sim.wait_for(caught_up, 10, f"catch-up after {faults}")
            await asyncio.sleep(0.05)
            logged, problems = verify_delivery(sim, {0: rec.dispatches})
            assert problems == [], faults
            assert logged == len(rec.dispatches) > 500
            assert shard.metrics.reconnects >= 5
        finally:
            await shard.close()
