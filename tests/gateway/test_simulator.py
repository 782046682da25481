"""The simulator itself, driven by a raw aiohttp client and stdlib decompressors (so these
checks do not depend on the codec under test)."""
from __future__ import annotations

import json
import zlib

import aiohttp
import pytest

from gateway.testing import GatewaySimulator

try:
    from compression.zstd import ZstdDecompressor  # type: ignore
except ImportError:
    from backports.zstd import ZstdDecompressor  # type: ignore


class RawClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress
        self.z = zlib.decompressobj()
        self.zs = ZstdDecompressor()
        self.buf = b""

    async def recv(self) -> dict:
        while True:
            msg = await self.ws.receive(timeout=3)
            if msg.type == aiohttp.WSMsgType.TEXT:
                return json.loads(msg.data)
            if msg.type != aiohttp.WSMsgType.BINARY:
                return {"closed": self.ws.close_code, "reason": msg.extra}
            if self.compress == "zlib-stream":
                self.buf += msg.data
                if not self.buf.endswith(b"\x00\x00\xff\xff"):
                    continue
                data, self.buf = self.z.decompress(self.buf), b""
                return json.loads(data)
            return json.loads(self.zs.decompress(msg.data))

    async def send(self, op: int, d=None) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": d}))


async def _connect(http, sim, compress="zlib-stream", v="10", path="/gateway"):
    q = f"?v={v}&encoding=json" + (f"&compress={compress}" if compress else "")
    ws = await http.ws_connect(f"ws://127.0.0.1:{sim.port}{path}{q}", max_msg_size=0)
    return RawClient(ws, compress)


async def test_gateway_bot_and_time_scale():
    async with GatewaySimulator(time_scale=0.004, shards=3, max_concurrency=4) as sim:
        async with aiohttp.ClientSession() as http:
            r = await http.get(sim.api_url + "/gateway/bot", headers={"Authorization": "Bot test-token"})
            info = await r.json()
            assert info["url"] == sim.gateway_url and info["shards"] == 3
            assert info["session_start_limit"]["max_concurrency"] == 4
            assert set(info["session_start_limit"]) == {"total", "remaining", "reset_after",
                                                         "max_concurrency"}
            r = await http.get(sim.api_url + "/gateway/bot", headers={"Authorization": "Bot nope"})
            assert r.status == 401
            c = await _connect(http, sim)
            hello = await c.recv()
            assert hello["op"] == 10 and list(hello)[:3] == ["t", "s", "op"]
            assert hello["d"]["heartbeat_interval"] == 165  # 41250 ms * 0.004
            await c.ws.close()


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream", None])
async def test_identify_ready_heartbeat_and_resume_replay(compress):
    async with GatewaySimulator(heartbeat_interval=1.0) as sim:
        async with aiohttp.ClientSession() as http:
            c = await _connect(http, sim, compress)
            assert (await c.recv())["op"] == 10
            await c.send(1, None)
            assert await c.recv() == {"t": None, "s": None, "op": 11, "d": None}
            await c.send(2, {"token": sim.token, "intents": 1, "shard": [0, 1],
                             "properties": {}})
            ready = await c.recv()
            assert (ready["t"], ready["s"]) == ("READY", 1)
            sid = ready["d"]["session_id"]
            assert ready["d"]["resume_gateway_url"] == sim.resume_url
            for _ in range(3):
                assert (await c.recv())["t"] == "GUILD_CREATE"
            await c.ws.close(code=4900)
            sim.dispatch("MESSAGE_CREATE", {"x": 1})
            sim.dispatch("MESSAGE_CREATE", {"x": 2})
            c2 = await _connect(http, sim, compress, path="/resume")
            assert (await c2.recv())["op"] == 10
            await c2.send(6, {"token": sim.token, "session_id": sid, "seq": 3})
            got = [await c2.recv() for _ in range(4)]
            assert [(p["s"], p["t"]) for p in got] == [(4, "GUILD_CREATE"), (5, "MESSAGE_CREATE"),
                                                       (6, "MESSAGE_CREATE"), (7, "RESUMED")]
            assert sim.heartbeats()[0].d is None
            await c2.ws.close()
            await sim.wait_for(lambda: sim.connections[1].client_close_code == 1000, 2)
            assert not sim.sessions[sid].valid  # closing with 1000 ends the session


@pytest.mark.parametrize("case,code", [("version", 4012), ("unknown_op", 4001),
                                       ("not_authenticated", 4003), ("twice", 4005),
                                       ("bad_token", 4004), ("bad_shard", 4010),
                                       ("intents", 4014), ("too_big", 4002), ("not_json", 4002)])
async def test_protocol_errors_close_with_the_right_code(case, code):
    async with GatewaySimulator(heartbeat_interval=1.0, allowed_intents=1) as sim:
        async with aiohttp.ClientSession() as http:
            c = await _connect(http, sim, "zlib-stream", v="9" if case == "version" else "10")
            ident = {"token": sim.token, "intents": 1, "shard": [0, 1], "properties": {}}
            if case != "version":
                assert (await c.recv())["op"] == 10
            if case == "unknown_op":
                await c.send(99, None)
            elif case == "not_authenticated":
                await c.send(3, {"status": "online"})
            elif case == "twice":
                await c.send(2, ident)
                await c.send(2, ident)
            elif case == "bad_token":
                await c.send(2, dict(ident, token="nope"))
            elif case == "bad_shard":
                await c.send(2, dict(ident, shard=[2, 2]))
            elif case == "intents":
                await c.send(2, dict(ident, intents=3))
            elif case == "too_big":
                await c.send(3, {"x": "y" * 5000})
            elif case == "not_json":
                await c.ws.send_str("{nope")
            while True:
                p = await c.recv()
                if "closed" in p:
                    break
            assert p["closed"] == code


async def test_split_frames_cut_inside_the_suffix():
    async with GatewaySimulator(heartbeat_interval=1.0) as sim:
        sim.split_frames = True
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{sim.gateway_url}?v=10&encoding=json&compress=zlib-stream")
            parts = [(await ws.receive()).data for _ in range(3)]
            assert len(parts[-1]) == 2 and parts[-1] == b"\xff\xff"
            assert not parts[0].endswith(b"\x00\x00\xff\xff")
            hello = json.loads(zlib.decompressobj().decompress(b"".join(parts)))
            assert hello["op"] == 10
            await ws.close()


async def test_spacebar_zstd_closes_a_frame_per_payload():
    async with GatewaySimulator(heartbeat_interval=1.0, spacebar=True) as sim:
        async with aiohttp.ClientSession() as http:
            c = await _connect(http, sim, "zstd-stream")
            msg = await c.ws.receive()
            d = ZstdDecompressor()
            hello = json.loads(d.decompress(msg.data))
            assert d.eof  # a complete frame
            assert hello == {"op": 10, "d": {"heartbeat_interval": 1000}}
            await c.send(1, None)
            msg = await c.ws.receive()
            assert json.loads(ZstdDecompressor().decompress(msg.data)) == {"op": 11, "d": {}}
            await c.ws.close()
