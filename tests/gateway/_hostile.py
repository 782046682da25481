"""A small scripted, misbehaving gateway for the hostile-server tests.

Deliberately separate from ``gateway.testing`` (so the client is not only tested against the
simulator it was written with): a plain aiohttp web server on 127.0.0.1, plain JSON text
frames (clients connect with ``compress="none"``), one session, and switches for each way a
server can misbehave.  It records every connection (time, path) and every payload received,
and writes dispatches from its own log so tests can check "exactly once, in order".
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Conn:
    path: str
    opened: float
    received: list[dict] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None


class HostileGateway:
    TOKEN = "hostile-token-Zq8"

    def __init__(self, *, hello: Any = 45000, hello_missing: bool = False,
                 answer_identify: bool = True, answer_resume: bool = True,
                 ready_d: Any = None, op7_after_hello: bool = False,
                 op7_after_ready: bool = False, resume_mode: str | None = None,
                 rate_limit_op8: bool = False, extra_raw: list[tuple[str, str]] | None = None,
                 ack: bool = True, chunk_answer: str | None = None, session_start_remaining: int = 1000,
                 session_start_reset_after: int = 3_600_000) -> None:
        self.hello = hello                  # heartbeat_interval value sent (any JSON value)
        self.hello_missing = hello_missing  # HELLO d without heartbeat_interval
        self.answer_identify = answer_identify
        self.answer_resume = answer_resume
        self.ready_d = ready_d              # replace READY's d (e.g. [] or "x")
        self.op7_after_hello = op7_after_hello
        self.op7_after_ready = op7_after_ready
        self.resume_mode = resume_mode      # None | "silent" | "close": what the resume URL does
        self.rate_limit_op8 = rate_limit_op8
        self.extra_raw = extra_raw or []    # (t, raw d text) dispatches after READY
        self.ack = ack
        self.chunk_answer = chunk_answer    # raw d of the GUILD_MEMBERS_CHUNK answering op 8
        self.session_start_remaining = session_start_remaining
        self.session_start_reset_after = session_start_reset_after
        self.bot_hangs = False  # GET /gateway/bot never answers (until the server stops)
        self._released = asyncio.Event()
        self.conns: list[Conn] = []
        self.log: list[tuple[int, str, str]] = []  # (seq, t, raw d) of the one session
        self.session_id = "hostile-session"
        self.gateway_bot_requests = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._live: set[web.WebSocketResponse] = set()
        self._active: set[web.WebSocketResponse] = set()  # identified / resumed

    # -- addresses
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def connection_times(self) -> list[float]:
        return [c.opened for c in self.conns]

    def max_rate(self, window: float = 1.0) -> int:
        """The most connections opened within any ``window`` seconds."""
        times = self.connection_times()
        return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)

    def identifies(self) -> list[dict]:
        return [p for c in self.conns for p in c.received if p.get("op") == 2]

    def resumes(self) -> list[dict]:
        return [p for c in self.conns for p in c.received if p.get("op") == 6]

    # -- lifecycle
    async def __aenter__(self) -> "HostileGateway":
        app = web.Application()
        app.router.add_get("/api/v10/gateway/bot", self._bot)
        for path in ("/gateway", "/resume"):
            app.router.add_get(path, self._ws)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._released.set()
        for ws in list(self._live):
            await ws.close(code=1001)
        assert self._runner is not None
        await self._runner.cleanup()

    async def _bot(self, request: web.Request) -> web.Response:
        self.gateway_bot_requests += 1
        if self.bot_hangs:
            await self._released.wait()
        return web.json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": self.session_start_remaining,
            "reset_after": self.session_start_reset_after, "max_concurrency": 1}})

    # -- the websocket
    async def _send(self, ws: web.WebSocketResponse, op: int, d: Any = None, *,
                    raw_d: str | None = None, t: str | None = None, s: int | None = None) -> None:
        d_text = raw_d if raw_d is not None else json.dumps(d)
        text = (f'{{"t":{json.dumps(t)},"s":{json.dumps(s)},"op":{op},"d":{d_text}}}')
        await ws.send_str(text)

    def _append(self, t: str, raw_d: str) -> None:
        self.log.append((len(self.log) + 1, t, raw_d))

    async def dispatch(self, t: str, d: Any) -> None:
        """Log a dispatch and write it on the live connections."""
        self._append(t, json.dumps(d))
        for ws in list(self._active):
            if not ws.closed:
                await self._write_from(ws, len(self.log) - 1)

    async def invalidate(self, resumable: bool = False) -> None:
        """Op 9 on the identified / resumed connections."""
        for ws in list(self._active):
            if not ws.closed:
                await self._send(ws, 9, resumable)

    async def close_live(self, code: int = 4000) -> None:
        for ws in list(self._live):
            await ws.close(code=code)

    async def _write_from(self, ws: web.WebSocketResponse, after: int) -> None:
        for seq, t, raw_d in self.log[after:]:
            await self._send(ws, 0, raw_d=raw_d, t=t, s=seq)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(request.path, time.monotonic(), ws=ws)
        self.conns.append(conn)
        self._live.add(ws)
        try:
            if request.path == "/resume" and self.resume_mode == "close":
                await ws.close(code=4000)
                return ws
            if request.path == "/resume" and self.resume_mode == "silent":
                async for _ in ws:  # accepts, never says anything
                    pass
                return ws
            hello: dict[str, Any] = {} if self.hello_missing else {"heartbeat_interval": self.hello}
            await self._send(ws, 10, hello)
            if self.op7_after_hello:
                await self._send(ws, 7)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                p = json.loads(msg.data)
                conn.received.append(p)
                await self._on(ws, p)
        finally:
            self._live.discard(ws)
            self._active.discard(ws)
        return ws

    async def _on(self, ws: web.WebSocketResponse, p: dict) -> None:
        op, d = p.get("op"), p.get("d")
        if op == 1 and self.ack:
            await self._send(ws, 11)
        elif op == 2 and self.answer_identify:
            self.session_start_remaining = max(0, self.session_start_remaining - 1)
            self.log.clear()
            ready = self.ready_d if self.ready_d is not None else {
                "v": 10, "session_id": self.session_id, "user": {"id": "1"}, "guilds": [],
                "resume_gateway_url": f"ws://127.0.0.1:{self.port}/resume"}
            self._append("READY", json.dumps(ready))
            for t, raw_d in self.extra_raw:
                self._append(t, raw_d)
            await self._write_from(ws, 0)
            self._active.add(ws)
            if self.op7_after_ready:
                await self._send(ws, 7)
        elif op == 6 and self.answer_resume:
            seq = d.get("seq") or 0
            await self._write_from(ws, seq)
            self._append("RESUMED", "{}")
            await self._write_from(ws, len(self.log) - 1)
            self._active.add(ws)
            if self.op7_after_ready:
                await self._send(ws, 7)
        elif op == 8:
            if self.rate_limit_op8:
                self._append("RATE_LIMITED", json.dumps(
                    {"opcode": 8, "retry_after": 2.5, "meta": {"guild_id": d.get("guild_id"),
                                                              "nonce": d.get("nonce")}}))
                await self._write_from(ws, len(self.log) - 1)
            elif self.chunk_answer is not None:
                self._append("GUILD_MEMBERS_CHUNK", self.chunk_answer.replace("NONCE", d["nonce"]))
                await self._write_from(ws, len(self.log) - 1)
