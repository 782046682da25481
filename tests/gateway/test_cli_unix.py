"""``python -m gateway run`` as a Unix tool: in a pipeline (``| head -n 2``), under SIGINT and
SIGTERM, with a stalled reader, with bad arguments, with the session-start limit used up, and
never showing the token."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import pytest
from tests.gateway.test_cli import ROOT, _env, _gateway

from gateway import ZOMBIE_CLOSE_CODE
from gateway.testing import GatewaySimulator

SECRET = "sekrit-TOKEN-4711"


#: heartbeat interval of the simulator where heartbeats are not what a test checks: a 0.1 s one
#: turns any 100 ms scheduling hiccup of a loaded machine into a zombie reconnect the test did
#: not script
CALM = 0.5


def _args(sim: GatewaySimulator, *more: str) -> list[str]:
    return ["run", "--token", sim.token, "--api-url", sim.api_url, "--compress", "zlib-stream",
            *more]


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=_env(), cwd=str(ROOT))


async def _read_lines(proc: asyncio.subprocess.Process, n: int, timeout: float = 20) -> list[dict]:
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < n:
        line = await asyncio.wait_for(proc.stdout.readline(), max(0.1, deadline - time.monotonic()))
        if not line:
            break
        lines.append(json.loads(line))
    return lines


def _heartbeats_went_on(sim: GatewaySimulator, t0: float, t1: float) -> int:
    """Between t0 and t1 every connection that was open long enough heartbeated without a gap
    longer than two intervals plus 0.4 s (slack for a loaded machine) and none was closed as a
    zombie: the loop was never blocked."""
    bound = 2 * sim.heartbeat_interval + 0.4
    checked = 0
    for conn in sim.connections:
        start, end = max(t0, conn.opened_at), min(t1, conn.closed_at or t1)
        if end - start < bound:
            continue
        checked += 1
        beats = [p.time for p in conn.heartbeats if start <= p.time <= end]
        points = [start, *beats, end]
        gaps = [b - a for a, b in zip(points, points[1:])]
        assert max(gaps) < bound, (conn.id, gaps)
    assert all(c.client_close_code != ZOMBIE_CLOSE_CODE for c in sim.connections)
    return checked


def _saved(path) -> dict:
    return json.loads(path.read_text())["sessions"][0]


async def _resume_run(sim: GatewaySimulator, state, n: int = 5) -> list[dict]:
    rc, out, err = await _gateway(*_args(sim, "--state-file", str(state), "--max-events", str(n)))
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


async def test_head_closes_stdout_exit_141_clean_and_state_resumes(tmp_path):
    state = tmp_path / "state.json"
    async with GatewaySimulator(heartbeat_interval=CALM, token=SECRET) as sim:
        sim.start_traffic(300, seed=5)
        cmd = " ".join([sys.executable, "-m", "gateway", *_args(sim, "--state-file", str(state))])
        proc = await asyncio.create_subprocess_shell(
            f'{cmd} | head -n 2; echo "status=${{PIPESTATUS[0]}}" >&2', executable="/bin/bash",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(),
            cwd=str(ROOT))
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        err_s = err.decode()
        assert len(out.splitlines()) == 2
        assert "status=141" in err_s, err_s
        assert "stdout closed" in err_s
        assert "Traceback" not in err_s and "BrokenPipe" not in err_s
        assert "Unclosed" not in err_s
        saved = _saved(state)
        assert saved["session_id"] == sim.session_for_shard(0).id and saved["seq"] >= 2
        assert sim.connections[-1].client_close_code == 4901  # resumable
        resumes = len(sim.resumes)
        lines = await _resume_run(sim, state)
        assert len(sim.identifies) == 1 and len(sim.resumes) == resumes + 1
        assert [x["s"] for x in lines] == list(range(saved["seq"] + 1, saved["seq"] + 6))


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_signals_close_save_and_resume_without_gap(tmp_path, sig, status):
    state = tmp_path / "state.json"
    async with GatewaySimulator(heartbeat_interval=CALM) as sim:
        sim.start_traffic(200, seed=7)
        proc = await _spawn(*_args(sim, "--state-file", str(state)))
        lines = await _read_lines(proc, 20)
        assert len(lines) == 20
        proc.send_signal(sig)
        rest, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == status, err.decode()
        err_s = err.decode()
        assert "Traceback" not in err_s and "Unclosed" not in err_s
        lines += [json.loads(line) for line in rest.splitlines()]
        assert [x["s"] for x in lines] == list(range(1, len(lines) + 1))
        saved = _saved(state)
        assert saved["seq"] == lines[-1]["s"]  # exactly what was printed
        assert sim.connections[-1].client_close_code == 4901
        resumes = len(sim.resumes)
        more = await _resume_run(sim, state)
        assert len(sim.resumes) == resumes + 1
        assert [x["s"] for x in more] == list(range(lines[-1]["s"] + 1, lines[-1]["s"] + 6))


async def test_max_events_saves_what_was_printed(tmp_path):
    state = tmp_path / "state.json"
    async with GatewaySimulator(heartbeat_interval=CALM) as sim:
        sim.start_traffic(500, seed=9)
        rc, out, err = await _gateway(*_args(sim, "--state-file", str(state), "--max-events", "30"))
        assert rc == 0, err
        printed = [json.loads(line)["s"] for line in out.splitlines()]
        assert printed == list(range(1, 31))
        assert _saved(state)["seq"] == 30  # not the last event received
        more = await _resume_run(sim, state)
        assert [x["s"] for x in more] == [31, 32, 33, 34, 35]


async def test_stalled_reader_never_blocks_heartbeats_and_loses_nothing():
    async with GatewaySimulator(heartbeat_interval=0.3) as sim:
        sim.start_traffic(400, seed=11)
        proc = await _spawn(*_args(sim, "--full", "--max-events", "1500"))
        await sim.wait_ready(1, timeout=10)
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await asyncio.sleep(2.5)  # nobody reads stdout: the pipe is full
        t1 = time.monotonic()
        # Heartbeats went on (interval 0.3 s) on every connection while it was open. Once the
        # output buffer is past its bound the shard may close resumably (4901) and wait for the
        # output to drain; what must never happen is a heartbeat gap on an open connection or a
        # zombie close.
        _heartbeats_went_on(sim, t0, t1)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert [json.loads(line)["s"] for line in out.splitlines()] == list(range(1, 1501))


BAD_ARGS = [
    ["--shards", "0"], ["--shards", "-3"], ["--shards", "1", "--shard-count", "3"],
    ["--max-events", "0"], ["--max-events", "-1"], ["--shard-ids", "0,0", "--shard-count", "2"],
    ["--shard-ids", "0-1"], ["--shard-ids", "2", "--shard-count", "2"],
    ["--shard-ids", "x", "--shard-count", "2"], ["--shard-count", "2"],
    ["--duration", "0"], ["--duration", "-5"], ["--duration", "nan"], ["--intents", "-1"],
    ["--events", ","], ["--shards", "abc"],
]


async def test_every_bad_argument_exits_2_before_connecting():
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        results = await asyncio.gather(*(
            _gateway("run", "--token", sim.token, "--api-url", sim.api_url, *bad)
            for bad in BAD_ARGS))
        for bad, (rc, out, err) in zip(BAD_ARGS, results):
            assert rc == 2, (bad, err)
            assert "error" in err and out == "", bad
        assert sim.gateway_bot_requests == [] and sim.connections == []


async def test_help_states_the_contract():
    rc, out, err = await _gateway("run", "--help")
    assert rc == 0
    for needle in ('{"shard":0,"t":"MESSAGE_CREATE","s":42}', "stderr", "exit status", "130",
                   "141", "143", "state-file", "401", "4004", "--duration counts from the start"):
        assert needle in out, needle


async def test_session_start_wait_is_said_and_duration_counts_from_start():
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        sim.session_start_remaining = 0
        t0 = time.monotonic()
        rc, out, err = await _gateway(*_args(sim, "--duration", "2.5"))
        assert rc == 0, err
        assert time.monotonic() - t0 < 10
        assert "session_start_limit exhausted: waiting 14400s" in err
        assert sim.identifies == []


async def test_token_never_in_any_output_at_debug(tmp_path):
    state = tmp_path / "state.json"
    async with GatewaySimulator(heartbeat_interval=0.1, token=SECRET) as sim:
        async def faults():
            await sim.wait_caught_up(1, timeout=10)
            await sim.send_reconnect()
            await sim.wait_caught_up(2, timeout=10)
            await sim.close(4000)
            await sim.wait_caught_up(3, timeout=10)
            for i in range(10):  # READY, 3 GUILD_CREATE, 2 RESUMED, then these: exit at 8
                sim.dispatch("MESSAGE_CREATE", {"i": i})
        f = asyncio.ensure_future(faults())
        rc, out, err = await _gateway(*_args(sim, "-vv", "--full", "--state-file", str(state),
                                             "--max-events", "8"), timeout=40)
        await f
        assert rc == 0, err
        assert "DEBUG" in err, err
        # the faults ran after the client had read READY / RESUMED, so both were resumed
        assert len(sim.identifies) == 1 and len(sim.resumes) >= 2, err
        assert "op 7 RECONNECT" in err and "resumed" in err, err
        texts = [out, err, state.read_text()]
        rc, out, err = await _gateway("run", "--token", SECRET, "--api-url",
                                      "http://127.0.0.1:1/api/v10", "-vv")
        assert rc == 1
        texts += [out, err]
        rc, out, err = await _gateway("run", "--token", "Bot " + SECRET, "--api-url",
                                      sim.api_url.replace("/api/v10", "/nope"), "-vv")
        texts += [out, err]
    assert not [t for t in texts if SECRET in t]
    assert os.path.exists(state)


async def test_stalled_stderr_never_blocks_the_loop():
    import fcntl
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: a one-page pipe
    os.set_blocking(w, False)
    try:
        while True:  # fill it: the first line the process writes to stderr would block
            os.write(w, b"x" * 512)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    try:
        async with GatewaySimulator(heartbeat_interval=0.3) as sim:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", *_args(sim, "-vv", "--max-events", "400"),
                stdout=asyncio.subprocess.PIPE, stderr=w, env=_env(), cwd=str(ROOT))
            os.close(w)
            w = -1
            await sim.wait_ready(1, timeout=10)
            for _ in range(3):  # each reconnect writes more stderr lines nobody reads
                await sim.send_reconnect()
                await asyncio.sleep(0.3)
            await sim.wait_for(lambda: sim.live_connections() and sim.latest.ready, 10)
            t0 = time.monotonic()
            await asyncio.sleep(1.5)
            assert _heartbeats_went_on(sim, t0, time.monotonic()) >= 1  # although stderr is stuck
            for i in range(400):
                sim.dispatch("MESSAGE_CREATE", {"i": i})
            out, _ = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0
            seqs = [json.loads(line)["s"] for line in out.splitlines()]
            assert seqs == list(range(1, 401))
    finally:
        if w != -1:
            os.close(w)
        os.close(r)
