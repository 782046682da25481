"""Events per second from one gateway connection: ``python -m gateway bridge`` publishing to
Redis Streams, against hikari's own shard (``GatewayShardImpl``) with a no-op consumer and
``python -m gateway run`` (JSON lines on stdout), on the same firehose, in one run.

The firehose is a small gateway in its own process (``python benches/test_bridge.py
firehose``): it serves ``/gateway/bot`` and a websocket that sends the recorded HELLO, waits
for IDENTIFY, then, when the benchmark says go, sends the rest of the ``realistic`` mix
(READY, 18 GUILD_CREATEs up to ~1 MB, 4400 dispatches; ``traffic.zlib_stream``: compressed
once, the same bytes for every connection) as fast as the client reads.  Each client runs in
its own process, started (and connected, identified) in the untimed setup of each round; a
round is timed from "go" until:

* bridge: the session's published seq in Redis reached the mix's last ``s`` (every dispatch
  XADDed, with its seq, by the atomic script; a fresh Redis each round so it IDENTIFYs);
* hikari: its event manager's ``consume_raw_event`` was called for the last dispatch
  (hikari parses every payload with orjson; the consumer does nothing);
* run: the last JSON line was read from its stdout.

``benchmark.extra_info["events_per_s"]`` is dispatches / mean round time.  Keep it short:
five rounds per client, about 35 s in all.
"""
from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MIX = "realistic"
ROUNDS = 5
TOKEN = "bench-token"


# ---------------------------------------------------------------------------- the firehose
def _firehose_main() -> None:
    sys.path.insert(0, HERE)
    import traffic
    from aiohttp import WSMsgType, web

    msgs = traffic.zlib_stream(MIX)
    state = {"waiting": 0, "go": asyncio.Event(), "sent": 0}

    async def gateway_bot(request):
        host = request.host
        return web.json_response({"url": f"ws://{host}/gateway", "shards": 1,
                                  "session_start_limit": {"total": 1000, "remaining": 1000,
                                                          "reset_after": 1000,
                                                          "max_concurrency": 1}})

    async def go(request):
        state["go"].set()
        return web.json_response({"ok": True})

    async def status(request):
        return web.json_response({"waiting": state["waiting"], "sent": state["sent"]})

    async def ws_handler(request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_bytes(msgs[0])  # HELLO
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) and json.loads(msg.data).get("op") == 2:
                break
        else:
            return ws
        state["waiting"] += 1
        await state["go"].wait()
        state["go"] = asyncio.Event()
        state["waiting"] -= 1
        for m in msgs[1:]:
            await ws.send_bytes(m)
        state["sent"] += 1
        async for msg in ws:  # heartbeats go unanswered: the round ends long before a zombie
            pass
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/v10/gateway/bot", gateway_bot)
        app.router.add_get("/gateway", ws_handler)
        app.router.add_get("/go", go)
        app.router.add_get("/status", status)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# ---------------------------------------------------------------------------- hikari client
def _hikari_main(url: str, n: int) -> None:
    import hikari
    from hikari.api import shard as shard_api
    from hikari.impl import config
    from hikari.impl import shard as shard_impl

    class NoOp:
        count = 0

        def consume_raw_event(self, name, shard, payload):
            NoOp.count += 1
            if NoOp.count == n:
                sys.stdout.write("done\n")
                sys.stdout.flush()

        async def dispatch(self, event, *, return_tasks=False):  # connected / disconnected
            return []

    class Factory:  # the shard only asks for its lifecycle events
        def deserialize_connected_event(self, shard):
            return None

        def deserialize_disconnected_event(self, shard):
            return None

    async def main() -> None:
        shard = shard_impl.GatewayShardImpl(
            compression=shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM,
            intents=hikari.Intents.ALL_UNPRIVILEGED, http_settings=config.HTTPSettings(),
            proxy_settings=config.ProxySettings(), event_manager=NoOp(), event_factory=Factory(),
            token=TOKEN, url=url)
        await shard.start()
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    if sys.argv[1] == "firehose":
        _firehose_main()
    elif sys.argv[1] == "hikari":
        _hikari_main(sys.argv[2], int(sys.argv[3]))
    sys.exit(0)


# ---------------------------------------------------------------------------- the benchmark
import traffic  # noqa: E402  (benches/ is on sys.path through conftest.py)


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def firehose():
    proc = subprocess.Popen([sys.executable, __file__, "firehose"], stdout=subprocess.PIPE,
                            cwd=ROOT, env=_env())
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def bench_redis():
    from tests.scale.conftest import running_redis

    yield from running_redis()


def _dispatches() -> tuple[int, int]:
    ps = traffic.payloads(MIX)
    n = sum(1 for p in ps if p.startswith(b'{"t":"'))
    return n, traffic.expected_last_seq(MIX)


@pytest.mark.parametrize("client", ["bridge", "hikari", "gateway-run"])
def test_firehose_events_per_second(benchmark, firehose, bench_redis, client):
    import redis as redis_sync

    n, last_s = _dispatches()
    api = f"{firehose}/api/v10"
    ws_url = f"{firehose.replace('http', 'ws')}/gateway"
    r = redis_sync.Redis.from_url(bench_redis.url)
    procs: list[subprocess.Popen] = []

    def stop_clients() -> None:
        while procs:
            p = procs.pop()
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def setup():
        stop_clients()
        if client == "bridge":
            r.flushall()  # a fresh session each round: IDENTIFY, not RESUME
            cmd = [sys.executable, "-m", "gateway", "bridge", "--redis", bench_redis.url,
                   "--token", TOKEN, "--api-url", api, "--shards", "1",
                   "--compress", "zlib-stream", "--lease-ttl", "1.5"]
        elif client == "hikari":
            cmd = [sys.executable, __file__, "hikari", ws_url, str(n)]
        else:
            cmd = [sys.executable, "-m", "gateway", "run", "--token", TOKEN, "--api-url", api,
                   "--shards", "1", "--compress", "zlib-stream", "--max-events", str(n)]
        p = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(p)
        deadline = time.monotonic() + 30
        while _get(f"{firehose}/status")["waiting"] < 1:  # connected and identified
            assert p.poll() is None, f"{client} exited with {p.returncode}"
            assert time.monotonic() < deadline, f"{client} did not identify"
            time.sleep(0.01)

    def target():
        p = procs[-1]
        _get(f"{firehose}/go")
        deadline = time.monotonic() + 60
        if client == "bridge":
            while True:
                seq = r.hget("gateway:session:0", "pub_seq")
                if seq is not None and int(seq) >= last_s:
                    return
                assert time.monotonic() < deadline, "bridge did not publish everything"
                time.sleep(0.002)
        want = 1 if client == "hikari" else n
        fd = p.stdout.fileno()
        got = 0
        while got < want:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"{client}: {got} of {want} lines in 60 s"
            chunk = os.read(fd, 1 << 16)
            assert chunk, f"{client} ended early"
            got += chunk.count(b"\n")

    benchmark.group = f"bridge: one connection's firehose ({MIX}, zlib-stream, {n} dispatches)"
    try:
        benchmark.pedantic(target, setup=setup, rounds=ROUNDS, iterations=1)
        if client == "bridge":
            streams = list(r.scan_iter(match="gateway:events:*", _type="stream"))
            assert sum(r.xlen(k) for k in streams) == n  # every dispatch published, once
    finally:
        stop_clients()
        r.close()
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        mean = stats.stats.mean
        benchmark.extra_info.update({"dispatches": n, "events_per_s": round(n / mean),
                                     "client": client})
