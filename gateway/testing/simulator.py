"""An in-process Discord gateway simulator for tests and the demo.

``GatewaySimulator`` is an aiohttp application on 127.0.0.1 (random free port) serving

* ``GET /api/v10/gateway/bot`` (``url``, ``shards``, ``session_start_limit``), and
* the gateway websocket (on ``/gateway`` and on the resume path, ``/resume`` by default)
  honouring ``v``, ``encoding`` and ``compress`` (``zlib-stream``, ``zstd-stream`` or none).

The gateway simulator (see the package docstring). It speaks HELLO / heartbeat / ACK / IDENTIFY / RESUME / READY / RESUMED, keeps a per-session
event log so that RESUME replays every missed dispatch, records everything the clients send,
and has scripted faults (op 7, op 9 both ways, closes with any code, dropped ACKs, op 1
requests, corrupt frames, zlib frames split across messages, refused resumes, a resume URL
that does not connect, op 7 before HELLO).  Only the standard library compressors
(``zlib``, ``backports.zstd``) are used, so it does not depend on the codec under test.

Usage::

    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        shard = Shard(sim.token, api_url=sim.api_url, ...)
        sim.dispatch("MESSAGE_CREATE", {...})
        await sim.send_reconnect()
"""
from __future__ import annotations

import asyncio
import collections
import json
import random
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from aiohttp import WSMsgType, web

from .traffic import EventSource, guild_create, member

try:  # Python 3.14+
    from compression.zstd import ZstdCompressor  # type: ignore
except ImportError:  # pragma: no cover - depends on the interpreter
    from backports.zstd import ZstdCompressor  # type: ignore

__all__ = ["GatewaySimulator", "SimSession", "SimConnection", "ClientPayload", "SimEvent",
           "FATAL_REASONS"]

ZLIB_SUFFIX = b"\x00\x00\xff\xff"
FATAL_REASONS = {
    4000: "Unknown error.",
    4001: "Unknown opcode.",
    4002: "Error while decoding payload.",
    4003: "Not authenticated.",
    4004: "Authentication failed.",
    4005: "Already authenticated.",
    4007: "Invalid seq.",
    4008: "Rate limited.",
    4009: "Session timed out.",
    4010: "Invalid shard.",
    4011: "Sharding required.",
    4012: "Invalid API version.",
    4013: "Invalid intent(s).",
    4014: "Disallowed intent(s).",
}
_KNOWN_CLIENT_OPS = {1, 2, 3, 4, 5, 6, 8, 12, 31, 43}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ClientPayload:
    """One payload a client sent to the simulator."""

    conn_id: int
    time: float  # time.monotonic()
    op: int
    d: Any
    size: int


@dataclass
class SimEvent:
    """One logged dispatch; ``d`` is kept as its JSON text (``raw``), compact for long runs."""

    seq: int
    t: str
    raw: bytes

    @classmethod
    def make(cls, seq: int, t: str, d: Any) -> "SimEvent":
        return cls(seq, t, _dumps(d))

    @property
    def d(self) -> Any:
        return json.loads(self.raw)


@dataclass
class SimSession:
    """One session's event log.  ``events`` holds the kept events (``events[i].seq ==
    base + i + 1``); with the simulator's ``keep_payloads`` only the newest are kept (a
    RESUME from before them gets op 9 ``false``), and with ``trim_acknowledged`` the events the
    client acknowledged (heartbeat / RESUME ``seq``) are dropped, while
    ``seq`` and ``digest`` (a running hash of every ``(seq, t)``) cover the whole session, so
    delivery can still be verified in bounded memory (:class:`DeliveryVerifier`)."""

    id: str
    token: str
    shard: list[int]
    intents: int
    events: list[SimEvent] = field(default_factory=list)
    valid: bool = True
    conn: "SimConnection | None" = None
    resumes: int = 0
    keep: int | None = None
    base: int = 0          # events trimmed from the front
    digest: int = 0

    @property
    def seq(self) -> int:
        return self.base + len(self.events)

    def event_at(self, seq: int) -> SimEvent | None:
        i = seq - self.base - 1
        return self.events[i] if 0 <= i < len(self.events) else None

    def trim(self, upto: int) -> None:
        """Forget the payloads of events ``<= upto`` (they stay in ``seq`` and ``digest``)."""
        cut = min(upto - self.base, len(self.events))
        if cut > 0:
            del self.events[:cut]
            self.base += cut

    def append(self, t: str, d: Any) -> SimEvent:
        ev = SimEvent.make(self.seq + 1, t, d)
        self.events.append(ev)
        self.digest = hash((self.digest, ev.seq, t))
        if self.keep is not None and len(self.events) > 2 * self.keep:
            cut = len(self.events) - self.keep
            del self.events[:cut]
            self.base += cut
        if self.conn is not None:
            self.conn.wakeup.set()
        return ev


class _Encoder:
    """Turns one payload into the websocket messages the chosen ``compress`` mode produces."""

    def __init__(self, compress: str | None, *, spacebar: bool) -> None:
        self.compress = compress
        self.spacebar = spacebar
        if compress == "zlib-stream":
            self._z = zlib.compressobj()
        elif compress == "zstd-stream":
            self._zs = ZstdCompressor()

    def encode(self, payload: bytes) -> bytes | str:
        if self.compress == "zlib-stream":
            return self._z.compress(payload) + self._z.flush(zlib.Z_SYNC_FLUSH)
        if self.compress == "zstd-stream":
            mode = ZstdCompressor.FLUSH_FRAME if self.spacebar else ZstdCompressor.FLUSH_BLOCK
            return self._zs.compress(payload, mode)
        return payload.decode()


class SimConnection:
    """One websocket connection on the simulator."""

    def __init__(self, sim: "GatewaySimulator", conn_id: int, ws: web.WebSocketResponse,
                 request: web.Request) -> None:
        self.sim = sim
        self.id = conn_id
        self.ws = ws
        self.request = request
        self.path = request.path
        self.query = dict(request.query)
        compress = request.query.get("compress") or None
        self.compress = compress
        self.encoder: _Encoder | None = _Encoder(compress, spacebar=sim.spacebar)
        self.session: SimSession | None = None
        self.ready = False  # identified/resumed: dispatches flow
        self.sent_upto = 0  # last session seq written on this connection
        self.wakeup = asyncio.Event()
        self.lock = asyncio.Lock()
        self.received: list[ClientPayload] = []
        # (op, t, s) as sent; bounded with the simulator's keep_payloads
        self.sent_ops: collections.deque[tuple[int, str | None, int | None]] = \
            collections.deque(maxlen=sim.keep_payloads or (1_000 if sim.trim_acknowledged else None))
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.client_close_code: int | None = None  # code the client closed with
        self.server_close_code: int | None = None  # code the simulator closed with
        self._send_times: list[float] = []
        self.heartbeat_interval: float = sim.heartbeat_interval

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def send_payload(self, obj: dict, *, corrupt: bool = False,
                           payload: bytes | None = None) -> None:
        if payload is None:
            payload = _dumps(obj)
        async with self.lock:
            if self.ws.closed or self.encoder is None:
                return
            if corrupt:
                data = self._garbage()
            else:
                data = self.encoder.encode(payload)
            try:
                if isinstance(data, str):
                    await self.ws.send_str(data)
                else:
                    for part in self._split(data):
                        await self.ws.send_bytes(part)
            except (ConnectionError, RuntimeError):
                return
            self.sent_ops.append((obj.get("op"), obj.get("t"), obj.get("s")))

    def _garbage(self) -> bytes | str:
        if self.compress == "zlib-stream":
            # 0xff: BFINAL=1, BTYPE=11 (reserved) -> "invalid block type"
            return b"\xff\xff\xff\xff\xff" + ZLIB_SUFFIX
        if self.compress == "zstd-stream":
            if self.sim.spacebar:
                return b"\x00\x01\x02\x03garbage, not a zstd frame"
            # a block header with Block_Type = 3 (reserved) inside the open frame
            return b"\xff\xff\xff\xff\xff\xff"
        return '{"op":0,"t":"MESSAGE_CREATE","s":'  # not JSON

    def _split(self, data: bytes) -> Iterable[bytes]:
        mode = self.sim.split_frames
        if self.compress != "zlib-stream" or not mode or len(data) < 6:
            return (data,)
        if mode == "bytes":
            return [data[i:i + 1] for i in range(len(data))]
        # three messages; the last boundary falls inside the 00 00 ff ff suffix
        n = len(data)
        cut1 = max(1, (n - 2) // 2)
        return (data[:cut1], data[cut1:n - 2], data[n - 2:])

    async def send_dispatch(self, ev: SimEvent) -> None:
        corrupt = False
        if self.sim._corrupt_next > 0:
            self.sim._corrupt_next -= 1
            corrupt = True
        payload = b'{"t":%s,"s":%d,"op":0,"d":%s}' % (_dumps(ev.t), ev.seq, ev.raw)
        await self.send_payload({"t": ev.t, "s": ev.seq, "op": 0}, corrupt=corrupt, payload=payload)

    async def writer(self) -> None:
        """Writes the session's events in sequence order, each at most once per connection."""
        while not self.ws.closed:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.ready and self.session is not None and not self.ws.closed \
                    and self.sent_upto < self.session.seq and self.session.conn is self:
                ev = self.session.event_at(self.sent_upto + 1)
                if ev is None:  # trimmed: cannot happen once the resume checked the window
                    break
                self.sent_upto = ev.seq
                await self.send_dispatch(ev)
                if self.sim.dispatch_delay:
                    await asyncio.sleep(self.sim.dispatch_delay)

    async def close(self, code: int, reason: str = "") -> None:
        self.server_close_code = code
        self.ready = False
        if not reason:
            reason = FATAL_REASONS.get(code, "")
        try:
            await self.ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError):  # pragma: no cover
            pass

    @property
    def heartbeats(self) -> list[ClientPayload]:
        return [p for p in self.received if p.op == 1]


class GatewaySimulator:
    """A Discord-compatible gateway on loopback with scripted faults.

    ``heartbeat_interval`` is in seconds (it is sent to clients in milliseconds); use
    ``time_scale`` to derive it from Discord's 41.25 s instead.  ``spacebar=True`` imitates
    Spacebar: HELLO without ``t``/``s``, ACK with ``d`` ``{}``, zstd-stream as one closed frame
    per payload, and every RESUME refused with op 9 ``false``.
    """

    def __init__(self, *, token: str = "test-token", heartbeat_interval: float | None = None,
                 time_scale: float = 1.0, shards: int = 1, max_concurrency: int = 1,
                 spacebar: bool = False, resume_path: str = "/resume",
                 guilds: int = 3, members_per_guild: int = 2500, seed: int | None = None,
                 send_limit: tuple[int, float] | None = None,
                 allowed_intents: int | None = None, max_shard_guilds: bool = False) -> None:
        self.token = token
        if heartbeat_interval is None:
            heartbeat_interval = 41.25 * time_scale
        self.heartbeat_interval = heartbeat_interval
        self.shards = shards
        self.max_concurrency = max_concurrency
        self.spacebar = spacebar
        self.resume_path = resume_path
        self.guild_count = guilds
        self.members_per_guild = members_per_guild
        self.rng = random.Random(seed)
        self.send_limit = send_limit  # (payloads, seconds) per connection, else close 4008
        self.allowed_intents = allowed_intents  # intents outside the mask -> close 4014
        self.sharding_required = max_shard_guilds  # True -> close 4011 on identify

        # scripted faults / knobs
        self.split_frames: str | bool = False  # True: 3 messages, cut inside the suffix; "bytes"
        self.refuse_resume = spacebar
        self.break_resume_url = False
        self.ack_drop = 0  # heartbeats whose ACK is dropped
        self.drop_all_acks = False
        self.reconnect_before_hello = 0  # next N connections get op 7 before HELLO
        self.invalid_seq_on_resume = False
        self.dispatch_delay = 0.0
        self.session_start_remaining = 999  # /gateway/bot session_start_limit.remaining
        self.session_start_reset_after = 14_400_000  # ms
        self.replay_overlap = 0  # RESUME replays this many already-acknowledged events again
        self.keep_payloads: int | None = None  # per session: keep only the newest N payloads
        # forget payloads the client acknowledged (heartbeat d, RESUME seq) minus replay_overlap
        self.trim_acknowledged = False
        self._corrupt_next = 0

        # records
        self.connections: list[SimConnection] = []
        self.sessions: dict[str, SimSession] = {}
        self.gateway_bot_requests: list[dict[str, str]] = []
        self.identifies: list[ClientPayload] = []
        self.resumes: list[ClientPayload] = []

        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0
        self._tasks: set[asyncio.Task] = set()
        self._session_counter = 0
        self._dead_port = _free_port()
        self._traffic: EventSource | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> "GatewaySimulator":
        app = web.Application()
        app.router.add_get("/api/v10/gateway/bot", self._gateway_bot)
        app.router.add_get("/api/v10/gateway", self._gateway)
        app.router.add_get("/gateway", self._ws_handler)
        app.router.add_get(self.resume_path, self._ws_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._traffic is not None:
            await self._traffic.stop()
        for conn in self.connections:
            if conn.open:
                await conn.close(1001, "simulator stopping")
        for t in list(self._tasks):
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "GatewaySimulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """REST base to give clients (``--api-url``)."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_url(self) -> str:
        if self.break_resume_url:
            return f"ws://127.0.0.1:{self._dead_port}{self.resume_path}"
        return f"ws://127.0.0.1:{self.port}{self.resume_path}"

    # ------------------------------------------------------------------ REST
    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth in (f"Bot {self.token}", self.token)

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        self.gateway_bot_requests.append(dict(request.headers))
        if not self._authorized(request):
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return web.json_response({
            "url": self.gateway_url,
            "shards": self.shards,
            "session_start_limit": {"total": 1000, "remaining": self.session_start_remaining,
                                    "reset_after": self.session_start_reset_after,
                                    "max_concurrency": self.max_concurrency},
        })

    async def _gateway(self, request: web.Request) -> web.Response:
        return web.json_response({"url": self.gateway_url})

    # ------------------------------------------------------------------ queries
    @property
    def latest(self) -> SimConnection | None:
        return self.connections[-1] if self.connections else None

    def live_connections(self) -> list[SimConnection]:
        return [c for c in self.connections if c.open]

    def session_for_shard(self, shard_id: int = 0) -> SimSession | None:
        found = [s for s in self.sessions.values() if s.shard[0] == shard_id]
        return found[-1] if found else None

    def heartbeats(self) -> list[ClientPayload]:
        return [p for c in self.connections for p in c.received if p.op == 1]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0,
                       what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator: timed out waiting for {what}")
            await asyncio.sleep(0.005)

    async def wait_connections(self, n: int, timeout: float = 5.0) -> SimConnection:
        await self.wait_for(lambda: len(self.connections) >= n, timeout, f"{n} connections")
        return self.connections[n - 1]

    async def wait_ready(self, n: int = 1, timeout: float = 5.0) -> SimConnection:
        """Wait until the ``n``-th connection has identified or resumed."""
        await self.wait_for(lambda: len(self.connections) >= n and self.connections[n - 1].ready,
                            timeout, f"connection {n} ready")
        return self.connections[n - 1]

    async def wait_caught_up(self, n: int = 1, timeout: float = 5.0) -> SimConnection:
        """Wait until the ``n``-th connection is ready and its client has heartbeated a seq at
        least the session's seq at that moment: the client has read READY (or RESUMED) and
        everything queued before it, so a fault sent now cannot overtake them."""
        conn = await self.wait_ready(n, timeout)
        target = conn.session.seq if conn.session is not None else 0
        await self.wait_for(
            lambda: any(isinstance(p.d, int) and p.d >= target for p in conn.heartbeats),
            timeout, f"connection {n} to acknowledge s={target}")
        return conn

    # ------------------------------------------------------------------ events
    def dispatch(self, t: str, d: Any = None, *, session: SimSession | str | None = None) -> list[SimEvent]:
        """Append a dispatch to one session's log (default: every valid session); it is sent
        at once to a connected client and replayed on RESUME otherwise."""
        if isinstance(session, str):
            targets = [self.sessions[session]]
        elif session is not None:
            targets = [session]
        else:
            targets = [s for s in self.sessions.values() if s.valid]
        return [s.append(t, d) for s in targets]

    def start_traffic(self, rate: float = 200.0, *, seed: int | None = None) -> "EventSource":
        self._traffic = EventSource(self, rate, seed=seed)
        self._traffic.start()
        return self._traffic

    async def stop_traffic(self) -> None:
        if self._traffic is not None:
            await self._traffic.stop()

    # ------------------------------------------------------------------ faults
    def _targets(self, conn: SimConnection | None) -> list[SimConnection]:
        if conn is not None:
            return [conn]
        live = self.live_connections()
        return live

    async def send_reconnect(self, conn: SimConnection | None = None) -> None:
        """Op 7 on ``conn`` (default: every live connection)."""
        for c in self._targets(conn):
            await c.send_payload(self._envelope(7, None))

    async def _end_session(self, c: SimConnection) -> None:
        """Discard ``c``'s session after writing what it already logged (so the client got
        every event of the session that ends)."""
        s = c.session
        if s is None:
            return
        s.valid = False
        deadline = time.monotonic() + 2.0
        while c.ready and c.open and s.conn is c and c.sent_upto < s.seq \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def invalidate_session(self, resumable: bool, conn: SimConnection | None = None) -> None:
        """Op 9 ``resumable``; with ``False`` the session is discarded."""
        for c in self._targets(conn):
            if not resumable:
                await self._end_session(c)
            c.ready = False
            await c.send_payload(self._envelope(9, resumable))

    async def close(self, code: int, reason: str = "", conn: SimConnection | None = None) -> None:
        """Close ``conn`` (default: every live connection) with ``code``.  Codes 4007 and 4009
        also discard the session, like Discord."""
        for c in self._targets(conn):
            if code in (4007, 4009):
                await self._end_session(c)
            await c.close(code, reason)

    async def request_heartbeat(self, conn: SimConnection | None = None) -> None:
        """Op 1 from the server: the client must answer at once."""
        for c in self._targets(conn):
            await c.send_payload(self._envelope(1, None))

    def drop_acks(self, n: int = 1) -> None:
        """Do not answer the next ``n`` heartbeats."""
        self.ack_drop += n

    def corrupt_next(self, n: int = 1) -> None:
        """Replace the next ``n`` dispatches on the wire by undecodable bytes (the events stay
        in the session log, so a RESUME replays them)."""
        self._corrupt_next += n

    async def kill(self, conn: SimConnection | None = None) -> None:
        """Drop the TCP connection without a close frame."""
        for c in self._targets(conn):
            c.ready = False
            transport = c.request.transport
            if transport is not None:
                transport.abort()

    # ------------------------------------------------------------------ protocol
    def _envelope(self, op: int, d: Any) -> dict:
        if self.spacebar:
            return {"op": op, "d": d}
        return {"t": None, "s": None, "op": op, "d": d}

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        conn = SimConnection(self, len(self.connections) + 1, ws, request)
        self.connections.append(conn)
        writer = asyncio.ensure_future(conn.writer())
        self._tasks.add(writer)
        try:
            if request.query.get("v", "10") != "10":
                await conn.close(4012)
                return ws
            if request.query.get("encoding", "json") != "json":
                await conn.close(4002, "Only JSON encoding is supported by the simulator.")
                return ws
            if conn.compress not in (None, "zlib-stream", "zstd-stream"):
                await conn.close(4002, "Unknown compression.")
                return ws
            if self.reconnect_before_hello > 0:
                self.reconnect_before_hello -= 1
                await conn.send_payload(self._envelope(7, None))
            hello = {"heartbeat_interval": round(self.heartbeat_interval * 1000)}
            if not self.spacebar:
                hello["_trace"] = ['["gateway-sim",{"micros":1}]']
            await conn.send_payload(self._envelope(10, hello))
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._on_client_message(conn, msg.data)
                    if ws.closed:
                        break
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn.closed_at = time.monotonic()
            conn.ready = False
            conn.client_close_code = ws.close_code if conn.server_close_code is None else None
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
                if conn.client_close_code in (1000, 1001):
                    conn.session.valid = False  # a clean close ends the session
            writer.cancel()
            conn.wakeup.set()
            self._tasks.discard(writer)
            conn.encoder = None  # a compression context holds megabytes; the record stays
        return ws

    async def _on_client_message(self, conn: SimConnection, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        now = time.monotonic()
        try:
            obj = json.loads(raw)
            op = obj["op"]
            if not isinstance(op, int):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            await conn.close(4002)
            return
        d = obj.get("d")
        record = ClientPayload(conn.id, now, op, d, len(raw))
        conn.received.append(record)
        if len(raw) > 4096:
            await conn.close(4002)
            return
        if self.send_limit is not None:
            limit, per = self.send_limit
            conn._send_times = [t for t in conn._send_times if now - t < per]
            conn._send_times.append(now)
            if len(conn._send_times) > limit:
                await conn.close(4008)
                return
        if op not in _KNOWN_CLIENT_OPS:
            await conn.close(4001)
            return
        if op == 1:
            if self.trim_acknowledged and conn.session is not None and isinstance(d, int) \
                    and conn.session.conn is conn:
                conn.session.trim(d - self.replay_overlap)
            if self.drop_all_acks:
                return
            if self.ack_drop > 0:
                self.ack_drop -= 1
                return
            await conn.send_payload(self._envelope(11, {} if self.spacebar else None))
            return
        if op == 2:
            self.identifies.append(record)
            self.session_start_remaining = max(0, self.session_start_remaining - 1)
            await self._identify(conn, d)
            return
        if op == 6:
            self.resumes.append(record)
            await self._resume(conn, d)
            return
        if conn.session is None:
            await conn.close(4003)
            return
        if op == 8:
            self._request_members(conn.session, d)

    async def _refused(self, conn: SimConnection, d: Any) -> bool:
        """IDENTIFY/RESUME on a connection that has a session already (4005) or
        with a wrong token (4004): closes it and says True."""
        if conn.session is not None:
            await conn.close(4005)
            return True
        if not isinstance(d, dict) or d.get("token") != self.token:
            await conn.close(4004)
            return True
        return False

    async def _identify(self, conn: SimConnection, d: Any) -> None:
        if await self._refused(conn, d):
            return
        shard = d.get("shard") or [0, 1]
        if (not isinstance(shard, list) or len(shard) != 2 or not 0 <= shard[0] < shard[1]):
            await conn.close(4010)
            return
        if self.sharding_required:
            await conn.close(4011)
            return
        intents = d.get("intents", 0)
        if self.allowed_intents is not None and intents & ~self.allowed_intents:
            await conn.close(4014)
            return
        self._session_counter += 1
        sid = f"sim{self._session_counter:04d}{self.rng.getrandbits(40):010x}"
        if self.keep_payloads is not None or self.trim_acknowledged:
            # ended sessions of this shard: only seq and digest are needed
            for old in self.sessions.values():
                if not old.valid and old.shard == list(shard) and old.events:
                    old.base += len(old.events)
                    old.events = []
        session = SimSession(sid, d["token"], list(shard), intents, keep=self.keep_payloads)
        self.sessions[sid] = session
        conn.session = session
        session.conn = conn
        guild_ids = [str(1_000_000 + g * shard[1] + shard[0]) for g in range(self.guild_count)]
        session.append("READY", {
            "v": 10,
            "user": {"id": "100000000000000001", "username": "simbot", "discriminator": "0",
                     "global_name": None, "avatar": None, "bot": True, "flags": 0,
                     "verified": True, "mfa_enabled": False},
            "guilds": [{"id": g, "unavailable": True} for g in guild_ids],
            "session_id": sid,
            "resume_gateway_url": self.resume_url,
            "shard": list(shard),
            "application": {"id": "100000000000000001", "flags": 0},
        })
        for g in guild_ids:
            session.append("GUILD_CREATE", guild_create(self.rng, g))
        conn.ready = True
        conn.wakeup.set()

    async def _resume(self, conn: SimConnection, d: Any) -> None:
        if await self._refused(conn, d):
            return
        session = self.sessions.get(d.get("session_id"))
        seq = d.get("seq")
        replay_from = max(0, (seq if isinstance(seq, int) else 0) - self.replay_overlap)
        if self.refuse_resume or session is None or not session.valid or \
                (session.base and replay_from < session.base):  # beyond the replay buffer
            if session is not None and session.base and replay_from < session.base:
                session.valid = False
            await asyncio.sleep(0)
            await conn.send_payload(self._envelope(9, False))
            return
        if self.invalid_seq_on_resume or (seq is not None and (not isinstance(seq, int) or seq > session.seq)):
            session.valid = False
            await conn.close(4007)
            return
        old = session.conn
        if old is not None and old is not conn and old.open:
            await old.close(4000, "session resumed elsewhere")
        session.conn = conn
        session.resumes += 1
        conn.session = session
        conn.sent_upto = replay_from
        session.append("RESUMED", {"_trace": ['["gateway-sim",{"micros":1}]']})
        conn.ready = True
        conn.wakeup.set()

    def _request_members(self, session: SimSession, d: Any) -> None:
        if not isinstance(d, dict):
            return
        guild_id = str(d.get("guild_id"))
        nonce = d.get("nonce")
        user_ids = d.get("user_ids")
        query = d.get("query", "")
        limit = d.get("limit") or 0
        if user_ids:
            ids = user_ids if isinstance(user_ids, list) else [user_ids]
            members = [member(int(u), f"user{u}") for u in ids]
        else:
            members = [member(2_000_000 + i, f"user{i:05d}") for i in range(self.members_per_guild)]
            if query:
                members = [m for m in members if m["user"]["username"].startswith(query)]
            if limit:
                members = members[:limit]
        chunk = 1000
        chunks = [members[i:i + chunk] for i in range(0, len(members), chunk)] or [[]]
        for i, part in enumerate(chunks):
            payload = {"guild_id": guild_id, "members": part, "chunk_index": i,
                       "chunk_count": len(chunks)}
            if nonce is not None:
                payload["nonce"] = nonce
            if d.get("presences"):
                payload["presences"] = []
            session.append("GUILD_MEMBERS_CHUNK", payload)


