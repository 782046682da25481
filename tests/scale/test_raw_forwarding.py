"""The bridge forwards ``d`` as the gateway sent it: never parsed, never re-serialised."""
from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from gateway.redis import RedisEventSink, RedisSessionStore, RedisShardLeases
from gateway.shard import Shard

READY = (b'{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"raw-session",'
         b'"resume_gateway_url":"ws://127.0.0.1:9/","user":{"id":"1","username":"b",'
         b'"discriminator":"0","bot":true},"guilds":[],"shard":[0,1]}}')
# spaces, an escaped character, a float with a trailing zero and an integer no 64-bit parser
# takes: any parse + dump on the way would change (or fail on) this text
ODD_D = b'{ "content" : "caf\\u00e9 \\"q\\"" ,  "n":1.50, "big": 123456789012345678901234567890 }'
ODD = b'{"t":"MESSAGE_CREATE","s":2,"op":0,"d":' + ODD_D + b'}'


async def test_raw_d_reaches_the_stream_byte_for_byte(redis):
    identified = asyncio.Event()

    async def ws_handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":45000}}')
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and '"op":2' in msg.data.replace(" ", ""):
                identified.set()
                await ws.send_str(READY.decode())
                await ws.send_str(ODD.decode())
        return ws

    app = web.Application()
    app.router.add_get("/gateway", ws_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    leases = RedisShardLeases(redis, ttl=10)
    assert await leases.try_acquire(0)
    sink = RedisEventSink(redis, leases=leases)
    store = RedisSessionStore(redis, seq_from_sink=True, leases=leases)
    shard = Shard("t", shard_id=0, shard_count=1, gateway_url=f"ws://127.0.0.1:{port}/gateway",
                  compress="none", sink=sink, session_store=store)
    task = shard.start()
    try:
        await asyncio.wait_for(identified.wait(), 10)
        for _ in range(500):
            if await redis.exists("gateway:events:MESSAGE_CREATE"):
                break
            await asyncio.sleep(0.01)
        entries = await redis.xrange("gateway:events:MESSAGE_CREATE")
        assert len(entries) == 1
        f = entries[0][1]
        assert f[b"d"] == ODD_D
        assert (f[b"shard"], f[b"s"], f[b"session"]) == (b"0", b"2", b"raw-session")
        assert await redis.hmget("gateway:session:0", "pub_session", "pub_seq") == [
            b"raw-session", b"2"]
    finally:
        await shard.close(4901)
        await asyncio.gather(task, return_exceptions=True)
        await sink.close()
        await runner.cleanup()
