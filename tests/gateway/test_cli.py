"""``python -m gateway run`` against the simulator and ``python -m gateway demo`` (subprocesses)."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys

import pytest

from gateway.testing import GatewaySimulator

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DISCORD_TOKEN", None)
    env.update(extra)
    return env


async def _gateway(*args: str, env: dict | None = None, timeout: float = 30.0):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env or _env(), cwd=str(ROOT))
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"timed out; stderr:\n{err.decode()}")
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_run_prints_every_dispatch_once_in_order(compress):
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        sim.start_traffic(300, seed=3)

        async def faults():
            await sim.wait_caught_up(1, timeout=10)
            await sim.send_reconnect()
            await sim.wait_caught_up(2, timeout=10)
            sim.corrupt_next()
        f = asyncio.ensure_future(faults())
        rc, out, err = await _gateway("run", "--token", sim.token, "--api-url", sim.api_url,
                                      "--compress", compress, "--max-events", "300")
        f.cancel()
        assert rc == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert len(lines) == 300
        assert all(set(x) == {"shard", "t", "s"} and x["shard"] == 0 for x in lines)
        assert [x["s"] for x in lines] == list(range(1, 301))
        log = sim.session_for_shard(0).events
        assert [x["t"] for x in lines] == [e.t for e in log[:300]]
        assert "ready" in err and "resumed" in err  # lifecycle lines on stderr
        assert len(sim.resumes) >= 2


async def test_run_events_filter_full_and_env_token():
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        async def feed():
            await sim.wait_ready(1, timeout=10)
            for i in range(10):
                sim.dispatch("TYPING_START", {"i": i})
                sim.dispatch("MESSAGE_CREATE", {"i": i})
        f = asyncio.ensure_future(feed())
        rc, out, err = await _gateway("run", "--api-url", sim.api_url, "--compress", "none",
                                      "--events", "MESSAGE_CREATE", "--full", "--max-events", "5",
                                      env=_env(DISCORD_TOKEN=sim.token))
        await f
        assert rc == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert [x["t"] for x in lines] == ["MESSAGE_CREATE"] * 5
        assert [x["d"]["i"] for x in lines] == [0, 1, 2, 3, 4]
        assert sim.connections[0].query.get("compress") is None


async def test_run_duration_exits_zero():
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        rc, out, err = await _gateway("run", "--token", sim.token, "--api-url", sim.api_url,
                                      "--duration", "1")
        assert rc == 0, err
        assert json.loads(out.splitlines()[0])["t"] == "READY"
        assert sim.connections[0].query["compress"] == "zstd-stream"  # the default
        assert sim.connections[0].client_close_code == 1000


@pytest.mark.parametrize("code", [4004, 4014])
async def test_run_fatal_close_exits_non_zero_with_code_and_reason(code):
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        async def fatal():
            await sim.wait_ready(1, timeout=10)
            await sim.close(code)
        f = asyncio.ensure_future(fatal())
        rc, out, err = await _gateway("run", "--token", sim.token, "--api-url", sim.api_url)
        await f
        assert rc == 1
        assert str(code) in err
        from gateway.testing import FATAL_REASONS
        assert FATAL_REASONS[code] in err
        assert len(sim.connections) == 1  # no retry


async def test_run_shard_ids_and_count():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=1, max_concurrency=4) as sim:
        rc, out, err = await _gateway("run", "--token", sim.token, "--api-url", sim.api_url,
                                      "--shard-ids", "1-2", "--shard-count", "4",
                                      "--events", "READY", "--max-events", "2")
        assert rc == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert sorted(x["shard"] for x in lines) == [1, 2]
        assert sorted(p.d["shard"][0] for p in sim.identifies) == [1, 2]
        assert all(p.d["shard"][1] == 4 for p in sim.identifies)


async def test_run_usage_errors():
    rc, out, err = await _gateway("run")
    assert rc == 2 and "token" in err
    rc, out, err = await _gateway("run", "--token", "x", "--shard-ids", "0-1")
    assert rc == 2 and "--shard-count" in err


async def test_run_bad_token_on_rest():
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        rc, out, err = await _gateway("run", "--token", "wrong", "--api-url", sim.api_url)
        assert rc == 3 and "401" in err and not sim.connections


async def test_demo_exits_zero_and_proves_delivery():
    rc, out, err = await _gateway("demo", "--duration", "4", "--rate", "200", timeout=60)
    assert rc == 0, err
    # piped: plain periodic status lines, no carriage returns
    assert "\r" not in err and "events" in err and "codec" in err
    assert sum(1 for line in err.splitlines() if line.startswith("events ")) >= 2
    assert "OK: all" in err and "exactly once and in order" in err
    assert "faults injected (10)" in err


async def test_run_state_file_resumes_next_run(tmp_path):
    state = tmp_path / "state.json"
    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        args = ("run", "--token", sim.token, "--api-url", sim.api_url, "--state-file", str(state))
        rc, out, err = await _gateway(*args, "--events", "READY", "--max-events", "1")
        assert rc == 0, err
        saved = json.loads(state.read_text())["sessions"][0]
        assert saved["session_id"] == sim.session_for_shard(0).id
        sim.dispatch("MESSAGE_CREATE", {"missed": True})
        rc, out, err = await _gateway(*args, "--events", "MESSAGE_CREATE", "--max-events", "1",
                                      "--full")
        assert rc == 0, err
        assert len(sim.identifies) == 1 and len(sim.resumes) == 1
        assert json.loads(out.splitlines()[0])["d"] == {"missed": True}


async def test_demo_refreshes_with_cr_only_on_a_terminal():
    import pty
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--duration", "2", "--rate", "100",
        stdout=asyncio.subprocess.DEVNULL, stderr=slave, env=_env(), cwd=str(ROOT))
    os.close(slave)
    chunks = []
    loop = asyncio.get_running_loop()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)
    reader = loop.run_in_executor(None, read)
    rc = await asyncio.wait_for(proc.wait(), 60)
    await asyncio.wait_for(reader, 10)
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert rc == 0, text
    # the tty turns \n into \r\n: look for a carriage return that starts a refreshed line
    assert "\revents " in text and "\x1b[K" in text and "OK: all" in text
