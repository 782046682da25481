"""Op 7 / op 9, resume replay exactly once and in order, resume-URL fallback, decompression
errors, the three compress modes, split zlib frames and Spacebar's dialect."""
from __future__ import annotations

import asyncio
import time

import pytest
from tests.gateway._helpers import Recorder, caught_up, fast_shard, session_log

from gateway import RECONNECT_CLOSE_CODE
from gateway.testing import GatewaySimulator

MODES = ["zlib-stream", "zstd-stream", "none"]


@pytest.mark.parametrize("compress", MODES)
async def test_op7_reconnects_and_resumes_to_resume_url(sim, shard_factory, compress):
    shard = shard_factory(compress=compress)
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(10):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    await sim.send_reconnect()
    for i in range(10):  # logged while the client is reconnecting: replayed on RESUME
        sim.dispatch("TYPING_START", {"i": i})
    conn2 = await sim.wait_ready(2)
    assert sim.connections[0].client_close_code == RECONNECT_CLOSE_CODE  # not 1000: session kept
    assert conn2.path == sim.resume_path
    assert conn2.query == {"v": "10", "encoding": "json",
                           **({"compress": compress} if compress != "none" else {})}
    assert len(sim.identifies) == 1 and len(sim.resumes) == 1
    await caught_up(sim, shard)
    assert rec.pairs() == session_log(sim)
    assert rec.pairs()[-1][1] in ("RESUMED", "TYPING_START")
    assert "resumed" in rec.names() and shard.metrics.resumes == 1


async def test_op7_before_hello(sim, shard_factory):
    shard = shard_factory()
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    sim.reconnect_before_hello = 1
    await sim.send_reconnect()
    sim.dispatch("MESSAGE_CREATE", {})
    await sim.wait_ready(3)  # conn 2 got op 7 before HELLO and was left at once
    conn2 = sim.connections[1]
    assert conn2.sent_ops[0][0] == 7
    assert conn2.client_close_code == RECONNECT_CLOSE_CODE
    assert conn2.received == []  # nothing was sent on it
    await caught_up(sim, shard)
    assert len(sim.identifies) == 1 and len(sim.resumes) == 1
    assert rec.pairs() == session_log(sim)


async def test_op9_true_resumes_after_injected_delay(sim, shard_factory):
    delays = []

    def delay():
        delays.append(0.3)
        return 0.3
    shard = shard_factory(invalid_session_delay=delay)
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    t0 = time.monotonic()
    await sim.invalidate_session(True)
    conn2 = await sim.wait_connections(2)
    assert conn2.opened_at - t0 >= 0.28 and delays == [0.3]
    await sim.wait_ready(2)
    assert len(sim.resumes) == 1 and len(sim.identifies) == 1
    await caught_up(sim, shard)
    assert rec.pairs() == session_log(sim)
    inv = [e for e in rec.lifecycle if e.name == "invalid_session"]
    assert inv[0].resumable is True


async def test_op9_false_identifies_anew_after_delay(sim, shard_factory):
    shard = shard_factory(invalid_session_delay=lambda: 0.2)
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    old = shard.session_id
    sim.dispatch("MESSAGE_CREATE", {})
    t0 = time.monotonic()
    await sim.invalidate_session(False)
    conn2 = await sim.wait_ready(2)
    assert conn2.opened_at - t0 >= 0.18
    assert len(sim.identifies) == 2 and not sim.resumes
    assert conn2.path == "/gateway"
    assert shard.session_id != old
    await caught_up(sim, shard)
    # both sessions delivered completely, in order
    old_log = [(e.seq, e.t) for e in sim.sessions[old].events]
    assert rec.pairs() == old_log + session_log(sim)


def test_default_op9_delay_is_between_1_and_5_seconds():
    from gateway import Shard
    shard = Shard("t", gateway_url="ws://127.0.0.1:1/")
    draws = [shard._invalid_session_delay() for _ in range(200)]
    assert all(1.0 <= d <= 5.0 for d in draws) and max(draws) - min(draws) > 1.0


@pytest.mark.parametrize("compress", MODES)
async def test_resume_replay_under_traffic_exactly_once_in_order(sim, shard_factory, compress):
    shard = shard_factory(compress=compress)
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    sim.start_traffic(800, seed=7)
    faults = [lambda: sim.send_reconnect(), lambda: sim.close(4000),
              lambda: sim.invalidate_session(True), lambda: sim.kill()]
    for i, fault in enumerate(faults, start=2):
        await asyncio.sleep(0.15)
        await fault()
        await sim.wait_ready(i, timeout=3)
    sim.drop_acks(1)
    await sim.wait_ready(len(faults) + 2, timeout=3)
    await asyncio.sleep(0.1)
    await sim.stop_traffic()
    await caught_up(sim, shard)
    assert len(sim.identifies) == 1 and len(sim.resumes) == 5
    assert rec.pairs() == session_log(sim)
    assert len(rec.pairs()) > 200
    assert shard.metrics.seq_gaps == 0


async def test_overlapping_replay_is_deduplicated(sim, shard_factory):
    sim.replay_overlap = 5
    shard = shard_factory()
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(20):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    await caught_up(sim, shard)
    await sim.send_reconnect()
    await sim.wait_ready(2)
    await caught_up(sim, shard)
    assert shard.metrics.duplicates == 5
    assert rec.pairs() == session_log(sim)


async def test_resume_url_that_fails_to_connect_falls_back_to_gateway_url(sim, shard_factory):
    sim.break_resume_url = True
    shard = shard_factory()
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    assert shard.resume_gateway_url.startswith(f"ws://127.0.0.1:{sim._dead_port}")
    sim.dispatch("MESSAGE_CREATE", {})
    await sim.close(4000)
    sim.dispatch("MESSAGE_CREATE", {})
    conn2 = await sim.wait_ready(2)
    assert conn2.path == "/gateway"
    assert len(sim.resumes) == 1 and len(sim.identifies) == 1  # RESUME, not IDENTIFY
    assert shard.metrics.resume_url_fallbacks == 1
    await caught_up(sim, shard)
    assert rec.pairs() == session_log(sim)
    # the stale URL is not retried in a loop: the next reconnect goes straight to the gateway
    await sim.close(4000)
    await sim.wait_ready(3)
    assert shard.metrics.resume_url_fallbacks == 1 and sim.connections[2].path == "/gateway"


@pytest.mark.parametrize("compress", MODES)
async def test_decompression_error_reconnects_and_resumes_without_loss(sim, shard_factory, compress):
    shard = shard_factory(compress=compress)
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(5):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    sim.corrupt_next(1)
    for i in range(5):
        sim.dispatch("PRESENCE_UPDATE", {"i": i})
    conn2 = await sim.wait_ready(2)
    assert sim.connections[0].client_close_code not in (1000, 1001)
    assert conn2.path == sim.resume_path and len(sim.resumes) == 1
    await caught_up(sim, shard)
    assert rec.pairs() == session_log(sim)
    assert shard.metrics.codec_errors == 1


@pytest.mark.parametrize("split", [True, "bytes"])
async def test_zlib_payloads_split_across_messages(sim, shard_factory, split):
    sim.split_frames = split
    shard = shard_factory(compress="zlib-stream")
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(30):
        sim.dispatch("MESSAGE_CREATE", {"i": i, "text": "x" * i})
    await caught_up(sim, shard)
    assert rec.pairs() == session_log(sim)
    assert [e.d["i"] for e in rec.dispatches if e.t == "MESSAGE_CREATE"] == list(range(30))
    assert len(sim.connections) == 1 and shard.metrics.codec_errors == 0


async def test_payload_too_large_reconnects_and_resumes(sim, shard_factory):
    shard = shard_factory(max_payload_size=64 * 1024)
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    sim.dispatch("MESSAGE_CREATE", {"small": True})
    await caught_up(sim, shard)
    sim.dispatch("GUILD_CREATE", {"blob": "y" * 100_000})
    await sim.wait_for(lambda: shard.metrics.codec_errors >= 1, 3)
    assert sim.connections[0].client_close_code not in (1000, 1001)
    # the oversize event is replayed forever; the small ones before it were not lost
    assert ("MESSAGE_CREATE") in [e.t for e in rec.dispatches]
    assert rec.pairs() == session_log(sim)[: len(rec.pairs())]


@pytest.mark.parametrize("compress", ["zstd-stream", "zlib-stream", "none"])
async def test_spacebar_dialect(compress):
    async with GatewaySimulator(heartbeat_interval=0.1, spacebar=True) as sim:
        shard = fast_shard(sim, compress=compress)
        rec = Recorder(shard)
        shard.start()
        try:
            await shard.wait_until_ready(3)
            await sim.wait_for(lambda: shard.metrics.heartbeat_acks >= 2, 2)  # ACK d = {}
            for i in range(5):
                sim.dispatch("MESSAGE_CREATE", {"i": i})
            await caught_up(sim, shard)
            first = shard.session_id
            await sim.send_reconnect()
            # Spacebar refuses every RESUME with op 9 false: identify anew
            await sim.wait_for(lambda: len(sim.identifies) == 2 and sim.latest.ready, 3)
            assert len(sim.resumes) == 1
            await caught_up(sim, shard)
            assert shard.session_id != first
            assert rec.pairs() == [(e.seq, e.t) for e in sim.sessions[first].events] + session_log(sim)
        finally:
            await shard.close()


async def test_resume_answered_with_4007_identifies_anew(sim, shard_factory):
    shard = shard_factory()
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    first = shard.session_id
    sim.invalid_seq_on_resume = True
    await sim.close(4000)  # resumable close ... but the RESUME gets 4007
    await sim.wait_for(lambda: len(sim.identifies) == 2 and sim.latest.ready, 3)
    assert len(sim.resumes) == 1 and sim.connections[1].server_close_code == 4007
    await caught_up(sim, shard)
    assert shard.session_id != first
    assert rec.pairs() == [(e.seq, e.t) for e in sim.sessions[first].events] + session_log(sim)


async def test_server_answering_resume_with_a_new_ready(shard_factory):
    class FreshReadyOnResume(GatewaySimulator):
        async def _resume(self, conn, d):  # a lenient server: new session instead of op 9
            await self._identify(conn, {"token": d["token"], "shard": [0, 1], "intents": 0})

    async with FreshReadyOnResume(heartbeat_interval=0.1) as sim:
        shard = fast_shard(sim)
        rec = Recorder(shard)
        shard.start()
        try:
            await shard.wait_until_ready(3)
            first = shard.session_id
            sim.dispatch("MESSAGE_CREATE", {})
            await caught_up(sim, shard)
            await sim.send_reconnect()
            await sim.wait_ready(2)
            await caught_up(sim, shard)
            sim.dispatch("MESSAGE_CREATE", {}, session=shard.session_id)
            await caught_up(sim, shard)
            assert shard.session_id != first and len(sim.resumes) == 1
            assert rec.pairs() == [(e.seq, e.t) for e in sim.sessions[first].events] + session_log(sim)
        finally:
            await shard.close()
