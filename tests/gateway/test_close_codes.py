"""Every row of PROTOCOL.md's close-code table, against the simulator."""
from __future__ import annotations

import asyncio

import pytest

from gateway import FATAL_CLOSE_CODES, GatewayClosedFatal, classify_close

from tests.gateway._helpers import Recorder, caught_up, session_log

TABLE = {
    4000: "resume", 4001: "resume", 4002: "resume", 4003: "resume", 4004: "fatal",
    4005: "resume", 4007: "identify", 4008: "resume", 4009: "identify", 4010: "fatal",
    4011: "fatal", 4012: "fatal", 4013: "fatal", 4014: "fatal",
}


def test_classify_matches_protocol_table():
    for code, kind in TABLE.items():
        assert classify_close(code) == kind, code
    assert set(FATAL_CLOSE_CODES) == {c for c, k in TABLE.items() if k == "fatal"}
    for other in (1000, 1001, 1006, 1011, 3000, 4006, 4015, 4999, None):
        assert classify_close(other) == "resume"


@pytest.mark.parametrize("code", sorted(TABLE) + [1000, 1011, 4999])
async def test_close_code_behaviour(sim, shard_factory, code):
    shard = shard_factory()
    rec = Recorder(shard)
    task = shard.start()
    await shard.wait_until_ready(5)
    sim.dispatch("MESSAGE_CREATE", {"n": 1})
    await caught_up(sim, shard)
    first_session = shard.session_id
    seq_before = shard.seq
    await sim.close(code, f"scripted {code}")
    kind = classify_close(code)
    if kind == "fatal":
        with pytest.raises(GatewayClosedFatal) as ei:
            await asyncio.wait_for(task, 5)
        assert ei.value.code == code
        assert ei.value.reason == f"scripted {code}"
        assert str(code) in str(ei.value) and f"scripted {code}" in str(ei.value)
        await asyncio.sleep(0.2)
        assert len(sim.connections) == 1  # no retry
        assert rec.names()[-1] == "closed"
        return
    conn2 = await sim.wait_ready(2)
    sim.dispatch("MESSAGE_CREATE", {"n": 2})
    await caught_up(sim, shard)
    disc = [e for e in rec.lifecycle if e.name == "disconnected"]
    assert disc[0].code == code and disc[0].by == "server"
    if kind == "identify":
        assert len(sim.identifies) == 2 and not sim.resumes
        assert shard.session_id != first_session
        assert conn2.path == "/gateway"
    else:
        assert len(sim.identifies) == 1 and len(sim.resumes) == 1
        resume = sim.resumes[0].d
        assert resume == {"token": sim.token, "session_id": first_session, "seq": seq_before}
        assert conn2.path == sim.resume_path  # RESUME goes to resume_gateway_url
        assert shard.session_id == first_session
        assert rec.pairs() == session_log(sim)  # nothing lost or doubled
    assert not task.done()
