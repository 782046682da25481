"""Sending: encode refusals before anything is sent, helpers for ops 3/4/8/31/43, the send
limit against a simulator that enforces it, and IDENTIFY's contents."""
from __future__ import annotations

import asyncio

import pytest
from tests.gateway._helpers import Recorder

from gateway import SendLimiter
from mijcodec import EncodeError, Opcode, PayloadTooLarge


async def test_identify_payload(sim, shard_factory):
    presence = {"since": None, "activities": [], "status": "idle", "afk": False}
    shard = shard_factory(intents=513, large_threshold=100, presence=presence,
                          shard_id=0, shard_count=1)
    shard.start()
    await shard.wait_until_ready(3)
    d = sim.identifies[0].d
    assert d["token"] == sim.token and d["intents"] == 513
    assert d["shard"] == [0, 1] and d["large_threshold"] == 100
    assert d["presence"] == presence
    assert set(d["properties"]) == {"os", "browser", "device"}
    assert sim.gateway_bot_requests[0]["Authorization"] == f"Bot {sim.token}"


def test_large_threshold_range():
    from gateway import Shard
    with pytest.raises(ValueError):
        Shard("t", large_threshold=251)
    with pytest.raises(ValueError):
        Shard("t", large_threshold=49)


@pytest.mark.parametrize("op", [Opcode.VOICE_PING, Opcode.GUILD_SYNC, Opcode.DISPATCH,
                                Opcode.RECONNECT, Opcode.INVALIDATE_SESSION, Opcode.HELLO,
                                Opcode.HEARTBEAT_ACK])
async def test_unsendable_opcodes_refused_before_sending(sim, shard_factory, op):
    shard = shard_factory()
    shard.start()
    await shard.wait_until_ready(3)
    before = len(sim.latest.received)
    with pytest.raises(EncodeError):
        await shard.send(op, {})
    await asyncio.sleep(0.05)
    assert all(p.op in (1,) for p in sim.latest.received[before:])


async def test_payload_over_4096_bytes_refused_before_sending(sim, shard_factory):
    shard = shard_factory()
    shard.start()
    await shard.wait_until_ready(3)
    with pytest.raises(PayloadTooLarge):
        await shard.update_presence(activities=[{"name": "x" * 5000, "type": 0}])
    await asyncio.sleep(0.05)
    assert not [p for p in sim.latest.received if p.op == 3]
    assert sim.latest.open and len(sim.connections) == 1  # no 4002 from the server


async def test_helpers_send_ops_3_4_31_43(sim, shard_factory):
    shard = shard_factory()
    shard.start()
    await shard.wait_until_ready(3)
    await shard.update_presence("dnd", [{"name": "tests", "type": 0}])
    await shard.update_voice_state(1000000, 42, self_mute=True)
    await shard.update_voice_state("1000000", None)
    await shard.request_soundboard_sounds([1000000])
    await shard.request_channel_info(1000000)
    conn = sim.latest
    await sim.wait_for(lambda: len([p for p in conn.received if p.op != 1]) >= 6, 2)
    sent = {p.op: p.d for p in conn.received if p.op not in (1, 2, 6, 4)}
    assert sent[3] == {"since": None, "activities": [{"name": "tests", "type": 0}],
                       "status": "dnd", "afk": False}
    voice = [p.d for p in conn.received if p.op == 4]
    assert voice[0] == {"guild_id": "1000000", "channel_id": "42", "self_mute": True,
                        "self_deaf": False}
    assert voice[1]["channel_id"] is None
    assert sent[31] == {"guild_ids": ["1000000"]}
    assert sent[43]["guild_id"] == "1000000" and sent[43]["fields"]
    assert conn.open  # the simulator accepted every opcode


async def test_request_members_assembles_chunks_by_nonce(sim, shard_factory):
    sim.members_per_guild = 2500
    shard = shard_factory()
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    a, b = await asyncio.gather(shard.request_members(1000000, limit=0),
                                shard.request_members(1000000, query="user0001"))
    assert len(a) == 2500  # 3 chunks of <= 1000
    assert [m["user"]["username"] for m in a] == [f"user{i:05d}" for i in range(2500)]
    assert len(b) == 10 and all(m["user"]["username"].startswith("user0001") for m in b)
    chunks = [e.d for e in rec.dispatches if e.t == "GUILD_MEMBERS_CHUNK"]
    assert {c["nonce"] for c in chunks} == {p.d["nonce"] for p in sim.latest.received if p.op == 8}
    ids = await shard.request_members(1000000, user_ids=[5, 6])
    assert [m["user"]["id"] for m in ids] == ["5", "6"]


async def test_send_limit_prevents_4008(sim, shard_factory):
    sim.heartbeat_interval = 0.5
    sim.send_limit = (20, 1.0)  # a scaled-down 120 / 60 s
    # the client's window is a little longer than the server's: scheduling delays on a loaded
    # machine can bunch arrivals at the server (on Discord, 60 s dwarfs network jitter)
    shard = shard_factory(send_limiter=SendLimiter(20, 1.25, reserved=5))
    shard.start()
    await shard.wait_until_ready(3)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(40):
        await shard.update_presence("online", [{"name": f"n{i}", "type": 0}])
    elapsed = loop.time() - t0
    await asyncio.sleep(0.3)
    first = sim.connections[0]
    assert len(sim.connections) == 1, (first.server_close_code, first.client_close_code)
    assert first.server_close_code is None
    assert len([p for p in sim.latest.received if p.op == 3]) == 40
    assert elapsed >= 1.25  # had to wait for the window


async def test_without_limiter_the_simulator_closes_4008(sim, shard_factory):
    # proves the previous test's simulator enforcement is real
    sim.send_limit = (20, 1.0)
    sim.heartbeat_interval = 0.5
    shard = shard_factory(send_limiter=SendLimiter(1000, 1.0, reserved=1))
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(25):
        try:
            await asyncio.wait_for(shard.update_presence("online"), 1)
        except asyncio.TimeoutError:
            break
    await sim.wait_for(lambda: any(e.name == "disconnected" for e in rec.lifecycle), 2)
    disc = [e for e in rec.lifecycle if e.name == "disconnected"][0]
    assert disc.code == 4008
    await sim.wait_ready(2)
    assert len(sim.resumes) == 1  # 4008 is resumable
