"""``python -m gateway bridge`` / ``consume``: exit codes, --events, and consume's output."""
from __future__ import annotations

import asyncio
import os
import sys

import orjson

from gateway.testing import GatewaySimulator

from ._harness import ROOT, Bridge, read_streams, wait_published, wait_until


async def _gateway(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_exit_codes(redis_server):
    url = redis_server.url
    code, _, err = await _gateway("bridge", "--redis", url, "--api-url", "http://127.0.0.1:9")
    assert code == 2 and "no token" in err
    code, _, err = await _gateway("bridge", "--redis", url, "--token", "t", "--shard-ids", "0-3")
    assert code == 2 and "--shard-count" in err
    code, _, err = await _gateway("bridge", "--token", "t")
    assert code == 2 and "--redis" in err
    async with GatewaySimulator() as sim:
        code, _, err = await _gateway("bridge", "--redis", url, "--token", "wrong",
                                      "--api-url", sim.api_url)
        assert code == 3 and "401" in err
        code, _, err = await _gateway("bridge", "--redis", "redis://127.0.0.1:9/0", "--token",
                                      sim.token, "--api-url", sim.api_url)
        assert code == 1 and "cannot reach Redis" in err
    code, _, err = await _gateway("consume", "--redis", url)
    assert code == 2 and "--group" in err


async def test_events_filter_then_consume_prints_run_lines(redis_server, redis):
    async with GatewaySimulator(heartbeat_interval=1.0, shards=2, max_concurrency=2) as sim:
        b = Bridge(sim, redis_server.url, "--shards", "2", "--events",
                   "MESSAGE_CREATE,TYPING_START", identify_period=0.2)
        await b.start()
        try:
            await wait_until(lambda: sum(1 for c in sim.live_connections() if c.ready) == 2, 30,
                             "2 shards ready")
            sim.start_traffic(60.0, seed=7)
            await asyncio.sleep(1.5)
            await sim.stop_traffic()
            await wait_published(sim, redis, 20)
        finally:
            assert await b.stop() == 143, b.text()
            b.cleanup()
    entries = await read_streams(redis)
    names = {e[1] for e in entries}
    assert names == {"MESSAGE_CREATE", "TYPING_START"}
    want_all = [(s.shard[0], e.seq, e.t) for s in sim.sessions.values() for e in s.events
                if e.t in names]
    assert sorted((e[2], e[3], e[1]) for e in entries) == sorted(want_all)
    n = len(entries)
    code, out, err = await _gateway("consume", "--redis", redis_server.url, "--group", "g",
                                    "--max-events", str(n), "--full")
    assert code == 0, err
    lines = [orjson.loads(x) for x in out.splitlines()]
    assert len(lines) == n
    assert all(set(x) == {"shard", "t", "s", "d"} for x in lines)
    assert sorted((x["shard"], x["s"], x["t"]) for x in lines) == sorted(want_all)
    by_key = {(s.shard[0], e.seq): e.d for s in sim.sessions.values() for e in s.events}
    assert all(x["d"] == by_key[(x["shard"], x["s"])] for x in lines)
    # everything was acked: the same group has nothing more to give
    code, out, err = await _gateway("consume", "--redis", redis_server.url, "--group", "g",
                                    "--duration", "1.5")
    assert code == 0 and out == "", err
    # a new group reads everything again, lines as `run` prints them (no d without --full)
    code, out, _ = await _gateway("consume", "--redis", redis_server.url, "--group", "h",
                                  "--events", "TYPING_START", "--max-events", "3")
    assert code == 0
    first = [orjson.loads(x) for x in out.splitlines()]
    assert len(first) == 3 and all(set(x) == {"shard", "t", "s"} and x["t"] == "TYPING_START"
                                   for x in first)


async def test_fatal_close_code_exits_1_and_the_token_stays_secret(redis_server, redis):
    async with GatewaySimulator(token="s3cr3t-t0ken", heartbeat_interval=1.0,
                                allowed_intents=1) as sim:
        code, _, err = await _gateway("bridge", "--redis", redis_server.url, "--token", sim.token,
                                      "--api-url", sim.api_url, "--shards", "1", "-vv",
                                      "--lease-ttl", "1.5", "--intents", "513", timeout=60)
    assert code == 1, err
    assert "fatal: shard 0 closed with code 4014" in err
    assert "DEBUG" in err and "s3cr3t-t0ken" not in err
