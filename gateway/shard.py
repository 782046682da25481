"""One gateway shard: an asyncio connection on aiohttp built on ``mijcodec.Decoder``.

Guarantees: every dispatch of a session is delivered to handlers / iterators exactly once and
in sequence order across reconnects, resumes, zombie kills and decompression errors (replays
are de-duplicated by ``s``).  See ``gateway/README-section.md`` for the behaviour table.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
from yarl import URL

import mijcodec
from mijcodec import Decoder, Opcode, encode

from .ratelimit import Backoff, IdentifyLimiter, SendLimiter

__all__ = [
    "Shard", "GatewayEvent", "LifecycleEvent", "ShardMetrics", "SessionState",
    "GatewayError", "GatewayClosedFatal", "GatewayAuthError", "FATAL_CLOSE_CODES",
    "IDENTIFY_ANEW_CLOSE_CODES", "ZOMBIE_CLOSE_CODE", "RECONNECT_CLOSE_CODE",
    "DEFAULT_API_URL", "default_compress", "fetch_gateway_bot", "classify_close",
]

log = logging.getLogger("gateway.shard")

DEFAULT_API_URL = "https://discord.com/api/v10"
GATEWAY_VERSION = 10

#: close codes after which the shard stops with :class:`GatewayClosedFatal` (no retry)
FATAL_CLOSE_CODES: dict[int, str] = {
    4004: "authentication failed",
    4010: "invalid shard",
    4011: "sharding required",
    4012: "invalid API version",
    4013: "invalid intents",
    4014: "disallowed intents",
}
#: close codes after which the session is gone: reconnect and IDENTIFY anew
IDENTIFY_ANEW_CLOSE_CODES: dict[int, str] = {4007: "invalid seq", 4009: "session timed out"}
#: codes this client closes with; anything but 1000/1001 keeps the session resumable
ZOMBIE_CLOSE_CODE = 4900
RECONNECT_CLOSE_CODE = 4901

LIFECYCLE_EVENTS = ("connected", "ready", "resumed", "disconnected", "reconnecting",
                    "invalid_session", "zombie", "loop_blocked", "closed")


def default_compress() -> str:
    """``zstd-stream`` when the codec can decode it, else ``zlib-stream``."""
    try:
        Decoder("zstd-stream")
        return "zstd-stream"
    except Exception:  # pragma: no cover - zstd is a dependency
        return "zlib-stream"


class GatewayError(Exception):
    """Base class of the gateway errors."""


class GatewayClosedFatal(GatewayError):
    """The gateway closed the connection with a code after which reconnecting is pointless."""

    def __init__(self, code: int, reason: str = "", shard_id: int | None = None) -> None:
        self.code = code
        self.reason = reason
        self.shard_id = shard_id
        meaning = FATAL_CLOSE_CODES.get(code, "fatal close")
        where = f"shard {shard_id}: " if shard_id is not None else ""
        super().__init__(f"{where}gateway closed with {code} ({meaning}): {reason or '-'}")


class GatewayAuthError(GatewayError):
    """REST ``/gateway/bot`` refused the token (HTTP 401)."""


def classify_close(code: int | None) -> str:
    """``"fatal"``, ``"identify"`` (session gone) or ``"resume"`` for a close code from the
    server (None = dropped connection)."""
    if code in FATAL_CLOSE_CODES:
        return "fatal"
    if code in IDENTIFY_ANEW_CLOSE_CODES:
        return "identify"
    return "resume"


def _ws_timeout_kwargs(close_timeout: float) -> dict:
    if hasattr(aiohttp, "ClientWSTimeout"):  # aiohttp >= 3.11
        return {"timeout": aiohttp.ClientWSTimeout(ws_receive=None, ws_close=close_timeout)}
    return {"timeout": close_timeout, "receive_timeout": None}  # pragma: no cover


def _auth_header(token: str) -> str:
    return token if token.startswith("Bot ") else f"Bot {token}"


def _bare_token(token: str) -> str:
    return token[4:] if token.startswith("Bot ") else token


async def fetch_gateway_bot(http: aiohttp.ClientSession, api_url: str, token: str) -> dict:
    """GET ``{api_url}/gateway/bot``."""
    url = api_url.rstrip("/") + "/gateway/bot"
    async with http.get(url, headers={"Authorization": _auth_header(token)}) as resp:
        if resp.status == 401:
            raise GatewayAuthError(f"GET {url}: 401 Unauthorized (bad token)")
        resp.raise_for_status()
        return await resp.json(content_type=None)


# ---------------------------------------------------------------------------- data types
class GatewayEvent:
    """A dispatch (op 0) as delivered to handlers and iterators."""

    __slots__ = ("shard_id", "t", "s", "packet")

    def __init__(self, shard_id: int, packet: Any) -> None:
        self.shard_id = shard_id
        self.packet = packet
        self.t: str | None = packet.t
        self.s: int | None = packet.s

    @property
    def d(self) -> Any:
        return self.packet.d

    @property
    def raw(self) -> bytes:
        return self.packet.raw

    def __repr__(self) -> str:
        return f"<GatewayEvent shard={self.shard_id} t={self.t} s={self.s}>"


@dataclass
class LifecycleEvent:
    """``connected``, ``ready``, ``resumed``, ``disconnected`` (code, reason, by), ``reconnecting``
    (resume, delay, why), ``invalid_session`` (resumable), ``zombie``, ``loop_blocked`` (lag),
    ``closed``."""

    name: str
    shard_id: int
    data: dict = field(default_factory=dict)

    def __getattr__(self, item: str) -> Any:
        try:
            return self.__dict__["data"][item]
        except KeyError:
            raise AttributeError(item) from None


@dataclass
class SessionState:
    """What a restarted process needs to RESUME instead of IDENTIFY."""

    shard_id: int
    shard_count: int
    session_id: str | None
    seq: int | None
    resume_gateway_url: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "SessionState":
        return cls(int(d["shard_id"]), int(d["shard_count"]), d.get("session_id"), d.get("seq"),
                   d.get("resume_gateway_url"))


@dataclass
class ShardMetrics:
    latency: float | None = None          # last heartbeat round trip, seconds
    latency_avg: float | None = None      # exponential moving average
    heartbeats_sent: int = 0
    heartbeat_acks: int = 0
    connects: int = 0
    reconnects: int = 0
    identifies: int = 0
    resume_attempts: int = 0
    resumes: int = 0                      # RESUMED received
    invalid_sessions: int = 0
    zombies: int = 0
    codec_errors: int = 0
    resume_url_fallbacks: int = 0
    dispatches: int = 0                   # delivered (after de-duplication)
    duplicates: int = 0                   # replayed dispatches dropped
    seq_gaps: int = 0
    payloads_in: int = 0
    bytes_in: int = 0                     # on the wire (compressed)
    bytes_decompressed: int = 0
    payloads_out: int = 0
    bytes_out: int = 0
    loop_blocked: int = 0
    max_loop_lag: float = 0.0
    close_codes: list = field(default_factory=list)

    @property
    def compression_ratio(self) -> float | None:
        return self.bytes_decompressed / self.bytes_in if self.bytes_in else None


@dataclass
class _Outcome:
    kind: str                 # "resume" | "identify" | "fatal" | "stop"
    why: str
    send_code: int | None = RECONNECT_CLOSE_CODE   # code we close with (None: server closed)
    code: int | None = None   # close code received
    reason: str = ""
    delay: float | None = None  # fixed delay (op 9) instead of the backoff
    immediate: bool = False


class _Control(Exception):
    def __init__(self, outcome: _Outcome) -> None:
        self.outcome = outcome


class _Subscription:
    def __init__(self, shard: "Shard", names: frozenset[str] | None, lifecycle: bool) -> None:
        self.shard = shard
        self.names = names
        self.lifecycle = lifecycle
        self.queue: asyncio.Queue = asyncio.Queue()
        self.ended = False
        shard._subscribers.append(self)

    def wants(self, item: Any) -> bool:
        if isinstance(item, LifecycleEvent):
            return self.lifecycle
        return self.names is None or item.t in self.names

    def __aiter__(self) -> "_Subscription":
        return self

    async def __anext__(self) -> Any:
        if self.ended:
            raise StopAsyncIteration
        item = await self.queue.get()
        if item is None:
            self.ended = True
            if self in self.shard._subscribers:
                self.shard._subscribers.remove(self)
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        if self in self.shard._subscribers:
            self.shard._subscribers.remove(self)


# ---------------------------------------------------------------------------- the shard
class Shard:
    """A single gateway shard.

    ``await shard.run()`` connects and keeps the session alive until :meth:`close` (returns)
    or a fatal close code (raises :class:`GatewayClosedFatal`).  ``shard.start()`` runs it as a
    task.  Time-related behaviour is injectable for tests: ``rng`` (first-beat jitter and
    backoff jitter), ``invalid_session_delay`` (op 9 wait, default uniform 1-5 s),
    ``backoff``, ``identify_limiter``, ``send_limiter``.
    """

    def __init__(self, token: str, *, shard_id: int = 0, shard_count: int = 1,
                 intents: int = 0, api_url: str = DEFAULT_API_URL,
                 gateway_url: str | None = None, compress: str | None = "default",
                 large_threshold: int = 250, presence: dict | None = None,
                 properties: dict | None = None,
                 http: aiohttp.ClientSession | None = None,
                 session: SessionState | None = None,
                 rng: Callable[[], float] | None = None,
                 invalid_session_delay: Callable[[], float] | None = None,
                 backoff: Backoff | None = None,
                 identify_limiter: IdentifyLimiter | None = None,
                 send_limiter: SendLimiter | None = None,
                 stable_after: float = 5.0, connect_timeout: float = 10.0,
                 close_timeout: float = 2.0, hello_timeout: float = 20.0,
                 loop_block_threshold: float | None = None,
                 max_payload_size: int | None = None) -> None:
        if not 50 <= large_threshold <= 250:
            raise ValueError("large_threshold must be in 50..250")
        if not 0 <= shard_id < shard_count:
            raise ValueError("shard_id must be in [0, shard_count)")
        if compress == "default":
            compress = default_compress()
        if compress == "none":
            compress = None
        self.token = token
        self.shard_id = shard_id
        self.shard_count = shard_count
        self.intents = intents
        self.api_url = api_url
        self.gateway_url = gateway_url
        self.compress = compress
        self.large_threshold = large_threshold
        self.presence = presence
        self.properties = properties or {"os": sys.platform, "browser": "mijcodec-gateway",
                                         "device": "mijcodec-gateway"}
        self._http = http
        self._own_http = http is None
        self._rng = rng if rng is not None else (lambda: random.random())
        self._invalid_session_delay = invalid_session_delay or (lambda: 1.0 + 4.0 * random.random())
        self.backoff = backoff or Backoff(rng=self._rng)
        self.identify_limiter = identify_limiter or IdentifyLimiter(1)
        # 120 / 60 s, measured over 61 s: arrival-time jitter must not let two bursts of
        # sends fall into one of the server's 60 s windows
        self.send_limiter = send_limiter or SendLimiter(120, 61.0, reserved=10)
        self.stable_after = stable_after
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.hello_timeout = hello_timeout
        self.loop_block_threshold = loop_block_threshold

        kw = {} if max_payload_size is None else {"max_payload_size": max_payload_size}
        self.decoder = Decoder(compress, **kw)
        self.decoder.on(Opcode.HELLO, self._on_hello)
        self.decoder.on(Opcode.HEARTBEAT, self._on_heartbeat_request)
        self.decoder.on(Opcode.HEARTBEAT_ACK, self._on_heartbeat_ack)
        self.decoder.on(Opcode.RECONNECT, self._on_reconnect)
        self.decoder.on(Opcode.INVALIDATE_SESSION, self._on_invalid_session)
        self.decoder.on(Opcode.DISPATCH, self._on_dispatch)

        # session
        self.session_id: str | None = None
        self.seq: int | None = None
        self.resume_gateway_url: str | None = None
        self._resume_url_failed = False
        if session is not None:
            self.restore(session)

        self.metrics = ShardMetrics()
        self._handlers: dict[str, list[Callable]] = {}
        self._subscribers: list[_Subscription] = []
        self._queue: asyncio.Queue | None = None
        self._handler_tasks: set[asyncio.Task] = set()
        self._conn_tasks: set[asyncio.Task] = set()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outcome: asyncio.Future | None = None
        self._established: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._run_task: asyncio.Task | None = None
        self._stop_code = 1000
        self._heartbeat_interval: float | None = None
        self._ack_pending = False
        self._last_beat: float | None = None
        self._conn_established_at: float | None = None
        self._conn_acks = 0
        self._member_requests: dict[str, tuple[asyncio.Future, dict[int, list]]] = {}
        self._nonce_counter = 0
        self.running = False
        self._closing = False
        self.fatal: GatewayClosedFatal | None = None

    # ------------------------------------------------------------------ public: events
    def on(self, name: str, fn: Callable | None = None) -> Any:
        """Register ``fn(event)`` (sync or async) for a dispatch name (``"MESSAGE_CREATE"``),
        ``"*"`` for every dispatch, or a lifecycle name (``"ready"``, ``"disconnected"``...).
        Usable as a decorator."""
        if fn is None:
            def deco(f: Callable) -> Callable:
                self.on(name, f)
                return f
            return deco
        self._handlers.setdefault(name, []).append(fn)
        return fn

    def off(self, name: str, fn: Callable | None = None) -> None:
        if fn is None:
            self._handlers.pop(name, None)
        else:
            self._handlers.get(name, []).remove(fn)

    def events(self, *names: str, lifecycle: bool = False) -> _Subscription:
        """``async for ev in shard.events("MESSAGE_CREATE")``: dispatches (and lifecycle events
        with ``lifecycle=True``) from the moment of the call until the shard stops."""
        return _Subscription(self, frozenset(names) if names else None, lifecycle)

    def __aiter__(self) -> AsyncIterator[GatewayEvent]:
        return self.events().__aiter__()

    @property
    def latency(self) -> float | None:
        return self.metrics.latency

    def snapshot_metrics(self) -> ShardMetrics:
        """Metrics with the decoder counters folded in."""
        m = self.metrics
        m.payloads_in = self.decoder.payloads
        m.bytes_in = self.decoder.bytes_in
        m.bytes_decompressed = self.decoder.bytes_out
        return m

    # ------------------------------------------------------------------ public: session state
    def session_state(self) -> SessionState:
        return SessionState(self.shard_id, self.shard_count, self.session_id, self.seq,
                            self.resume_gateway_url)

    def restore(self, state: SessionState) -> None:
        if state.shard_id != self.shard_id or state.shard_count != self.shard_count:
            raise ValueError("session state belongs to another shard")
        self.session_id = state.session_id
        self.seq = state.seq
        self.resume_gateway_url = state.resume_gateway_url
        self._resume_url_failed = False

    # ------------------------------------------------------------------ public: running
    def start(self) -> asyncio.Task:
        self.running = True
        self._run_task = asyncio.ensure_future(self.run())
        return self._run_task

    async def wait_until_ready(self, timeout: float | None = None) -> None:
        """Wait until a session is established (READY or RESUMED) on the current connection."""
        while self._established is None:
            await asyncio.sleep(0.001)
        await asyncio.wait_for(self._established.wait(), timeout)

    async def close(self, code: int = 1000) -> None:
        """Stop the shard.  ``code`` 1000 ends the session; pass e.g. 4901 to keep it resumable
        (for :meth:`session_state` / a restarted process)."""
        self._stop_code = code
        self._closing = True
        if self._stop is not None:
            self._stop.set()
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(_Outcome("stop", "closed by user", send_code=code))
        task = self._run_task
        current = asyncio.current_task()
        # awaiting the run from one of our own handler tasks would deadlock: run() waits for them
        if task is not None and task is not current and current not in self._handler_tasks:
            try:
                await task
            except (GatewayError, asyncio.CancelledError):
                pass

    async def run(self) -> None:
        self.running = True
        self._queue = asyncio.Queue()
        self._stop = asyncio.Event()
        if self._closing:
            self._stop.set()
        self._established = asyncio.Event()
        deliver = asyncio.ensure_future(self._deliver_loop())
        try:
            if self._http is None:
                self._http = aiohttp.ClientSession()
            if self.gateway_url is None:
                info = await fetch_gateway_bot(self._http, self.api_url, self.token)
                self.gateway_url = info["url"]
            while not self._stop.is_set():
                outcome = await self._connection()
                if outcome.kind == "stop":
                    break
                if outcome.kind == "fatal":
                    self.fatal = GatewayClosedFatal(outcome.code or 0, outcome.reason, self.shard_id)
                    raise self.fatal
                # stable: a session was established on it and it proved alive (an ACK)
                # or stayed up for stable_after seconds
                stable = self._conn_established_at is not None and (
                    self._conn_acks > 0
                    or time.monotonic() - self._conn_established_at >= self.stable_after)
                if stable:
                    self.backoff.reset()
                if outcome.kind == "identify":
                    self._forget_session()
                if outcome.delay is not None:
                    delay = outcome.delay
                elif outcome.immediate:
                    delay = 0.0
                else:
                    delay = self.backoff.next_delay()
                resume = self.session_id is not None
                self.metrics.reconnects += 1
                self._emit(LifecycleEvent("reconnecting", self.shard_id,
                                          {"resume": resume, "delay": delay, "why": outcome.why}))
                log.info("shard %d: reconnecting in %.2fs (%s, %s)", self.shard_id, delay,
                         "resume" if resume else "identify", outcome.why)
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._stop.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
        finally:
            self.running = False
            self._closing = False
            self._emit(LifecycleEvent("closed", self.shard_id,
                                      {"fatal": str(self.fatal) if self.fatal else None}))
            # deliver what is queued, then end iterators
            await self._queue.put(None)
            try:
                await asyncio.wait_for(asyncio.shield(deliver), 5.0)
            except asyncio.TimeoutError:  # pragma: no cover
                deliver.cancel()
            if self._handler_tasks:
                await asyncio.wait(list(self._handler_tasks), timeout=5.0)
            for fut, _ in self._member_requests.values():
                if not fut.done():
                    fut.set_exception(GatewayError("shard stopped"))
            self._member_requests.clear()
            if self._own_http and self._http is not None:
                await self._http.close()
                self._http = None

    # ------------------------------------------------------------------ public: sending
    async def send(self, op: int, d: Any = None) -> None:
        """Send one payload once a session is established.  ``mijcodec.encode`` refuses
        receive-only and unsendable opcodes (5, 12) and payloads over 4096 bytes *before*
        anything is sent.  Ordinary payloads go through the per-connection send limit."""
        payload = encode(op, d)
        await self._send_ordinary(payload)

    async def update_presence(self, status: str = "online", activities: list | None = None,
                              afk: bool = False, since: int | None = None) -> None:
        """Op 3."""
        await self.send(Opcode.PRESENCE, {"since": since, "activities": activities or [],
                                          "status": status, "afk": afk})

    async def update_voice_state(self, guild_id: int | str, channel_id: int | str | None,
                                 self_mute: bool = False, self_deaf: bool = False) -> None:
        """Op 4 (``channel_id=None`` leaves voice)."""
        await self.send(Opcode.VOICE_STATE, {
            "guild_id": str(guild_id), "channel_id": None if channel_id is None else str(channel_id),
            "self_mute": self_mute, "self_deaf": self_deaf})

    async def request_soundboard_sounds(self, guild_ids: list) -> None:
        """Op 31 (answered by ``SOUNDBOARD_SOUNDS`` dispatches)."""
        await self.send(Opcode.REQUEST_SOUNDBOARD_SOUNDS, {"guild_ids": [str(g) for g in guild_ids]})

    async def request_channel_info(self, guild_id: int | str,
                                   fields: list[str] | None = None) -> None:
        """Op 43 (answered by a ``CHANNEL_INFO`` dispatch)."""
        await self.send(Opcode.REQUEST_CHANNEL_INFO,
                        {"guild_id": str(guild_id), "fields": fields or ["status", "voice_start_time"]})

    async def request_members(self, guild_id: int | str, *, query: str | None = "",
                              limit: int = 0, user_ids: list | None = None,
                              presences: bool = False, nonce: str | None = None,
                              timeout: float | None = 60.0) -> list[dict]:
        """Op 8; returns the members of every ``GUILD_MEMBERS_CHUNK`` carrying our nonce,
        in chunk order."""
        if nonce is None:
            self._nonce_counter += 1
            nonce = f"{self.shard_id}.{self._nonce_counter}.{random.getrandbits(32):x}"
        if len(nonce) > 32:
            raise ValueError("nonce longer than 32 characters")
        d: dict[str, Any] = {"guild_id": str(guild_id), "limit": limit, "presences": presences,
                             "nonce": nonce}
        if user_ids is not None:
            d["user_ids"] = [str(u) for u in user_ids]
        else:
            d["query"] = query or ""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._member_requests[nonce] = (fut, {})
        try:
            await self.send(Opcode.REQUEST_MEMBERS, d)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._member_requests.pop(nonce, None)

    # ------------------------------------------------------------------ internals: connection
    def _ws_url(self, url: str) -> URL:
        query = {"v": str(GATEWAY_VERSION), "encoding": "json"}
        if self.compress:
            query["compress"] = self.compress
        return URL(url).update_query(query)

    def _forget_session(self) -> None:
        self.session_id = None
        self.seq = None
        self.resume_gateway_url = None
        self._resume_url_failed = False

    def _finish(self, outcome: _Outcome) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    def _spawn(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._conn_tasks.add(task)
        task.add_done_callback(self._conn_task_done)
        return task

    def _conn_task_done(self, task: asyncio.Task) -> None:
        self._conn_tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, (ConnectionError, aiohttp.ClientConnectionError)):
            return  # the connection is going away; the reader reports how
        if exc is not None:
            log.error("shard %d: connection task failed: %r", self.shard_id, exc, exc_info=exc)
            self._finish(_Outcome("resume", f"internal error: {exc!r}"))

    async def _connection(self) -> _Outcome:
        assert self._http is not None and self.gateway_url is not None
        resume = self.session_id is not None
        use_resume_url = resume and bool(self.resume_gateway_url) and not self._resume_url_failed
        url = self.resume_gateway_url if use_resume_url else self.gateway_url
        assert url is not None
        self._conn_established_at = None
        self._conn_acks = 0
        try:
            ws = await asyncio.wait_for(self._http.ws_connect(
                self._ws_url(url), max_msg_size=0, autoping=True, autoclose=True,
                **_ws_timeout_kwargs(self.close_timeout)), self.connect_timeout)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            if use_resume_url:
                self._resume_url_failed = True
                self.metrics.resume_url_fallbacks += 1
                log.warning("shard %d: resume URL %s failed (%r); falling back to %s",
                            self.shard_id, url, exc, self.gateway_url)
                return _Outcome("resume", f"resume URL failed to connect: {exc!r}",
                                send_code=None, immediate=True)
            return _Outcome("resume", f"connect failed: {exc!r}", send_code=None)

        self._ws = ws
        self.decoder.reset()
        self.send_limiter.reset()
        self._ack_pending = False
        self._last_beat = None
        self._heartbeat_interval = None
        self._established.clear()
        self._outcome = asyncio.get_running_loop().create_future()
        self.metrics.connects += 1
        self._emit(LifecycleEvent("connected", self.shard_id, {"url": str(url), "resume": resume}))
        if self._stop.is_set():
            self._finish(_Outcome("stop", "closed by user", send_code=self._stop_code))
        self._spawn(self._read_loop(ws))
        self._spawn(self._hello_watchdog())
        outcome = _Outcome("resume", "cancelled", send_code=RECONNECT_CLOSE_CODE)
        try:
            outcome = await self._outcome
        finally:  # also on cancellation of run(): never leak the connection's tasks
            for task in list(self._conn_tasks):
                task.cancel()
            if self._conn_tasks:
                await asyncio.gather(*self._conn_tasks, return_exceptions=True)
            self._conn_tasks.clear()
            self._established.clear()
            await self._close_ws(ws, outcome.send_code)
            self._ws = None
        code = outcome.code if outcome.code is not None else outcome.send_code
        self.metrics.close_codes.append(code)
        self._emit(LifecycleEvent("disconnected", self.shard_id, {
            "code": code, "reason": outcome.reason, "by": "server" if outcome.send_code is None else "client",
            "why": outcome.why}))
        return outcome

    async def _close_ws(self, ws: aiohttp.ClientWebSocketResponse, code: int | None) -> None:
        clean = ws.closed
        if not ws.closed and code is not None:
            try:
                await asyncio.wait_for(ws.close(code=code), self.close_timeout)
                clean = True
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                pass
        if not clean:  # no close handshake: drop the TCP connection
            resp = getattr(ws, "_response", None)
            if resp is not None:
                resp.close()

    async def _hello_watchdog(self) -> None:
        await asyncio.sleep(self.hello_timeout)
        if self._heartbeat_interval is None:
            self._finish(_Outcome("resume", "no HELLO"))

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        feed = self.decoder.feed
        while True:
            try:
                msg = await ws.receive()
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                self._finish(_Outcome("resume", f"receive failed: {exc!r}", send_code=None,
                                      code=1006))
                return
            if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                try:
                    feed(msg.data)
                except _Control as ctl:
                    self._finish(ctl.outcome)
                    return
                except mijcodec.CodecError as exc:
                    self.metrics.codec_errors += 1
                    log.warning("shard %d: %s: %s; reconnecting to resume", self.shard_id,
                                type(exc).__name__, exc)
                    self._finish(_Outcome("resume", f"{type(exc).__name__}: {exc}",
                                          send_code=RECONNECT_CLOSE_CODE))
                    return
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.CLOSED):
                code = ws.close_code
                if msg.type == aiohttp.WSMsgType.CLOSE and isinstance(msg.data, int):
                    code = msg.data
                reason = msg.extra if isinstance(msg.extra, str) else ""
                kind = classify_close(code)
                self._finish(_Outcome(kind, f"server closed with {code}", send_code=None,
                                      code=code, reason=reason or ""))
                return
            elif msg.type == aiohttp.WSMsgType.ERROR:
                self._finish(_Outcome("resume", f"websocket error: {ws.exception()!r}",
                                      send_code=None, code=1006))
                return

    async def _send_raw(self, payload: bytes) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionResetError("not connected")
        await ws.send_str(payload.decode())
        self.metrics.payloads_out += 1
        self.metrics.bytes_out += len(payload)

    async def _send_ordinary(self, payload: bytes) -> None:
        while True:
            while self._established is None or not self._established.is_set():
                if not self.running:
                    raise GatewayError("shard is not running")
                await asyncio.sleep(0.01)
            ws = self._ws
            await self.send_limiter.acquire()
            if ws is None or ws is not self._ws or ws.closed or not self._established.is_set():
                continue
            try:
                await self._send_raw(payload)
                return
            except (ConnectionError, RuntimeError):
                await asyncio.sleep(0)

    # ------------------------------------------------------------------ internals: opcodes
    def _on_hello(self, pkt: Any) -> None:
        d = pkt.d or {}
        interval = float(d["heartbeat_interval"]) / 1000.0
        first = self._heartbeat_interval is None
        self._heartbeat_interval = interval
        if first:
            self._spawn(self._heartbeat_loop(interval))
            self._spawn(self._loop_watchdog(interval))
            self._spawn(self._start_session())

    def _on_heartbeat_request(self, pkt: Any) -> None:
        self._spawn(self._send_heartbeat())

    def _on_heartbeat_ack(self, pkt: Any) -> None:
        self._ack_pending = False
        self._conn_acks += 1
        self.metrics.heartbeat_acks += 1
        if self._last_beat is not None:
            rtt = time.monotonic() - self._last_beat
            self.metrics.latency = rtt
            avg = self.metrics.latency_avg
            self.metrics.latency_avg = rtt if avg is None else 0.8 * avg + 0.2 * rtt

    def _on_reconnect(self, pkt: Any) -> None:
        raise _Control(_Outcome("resume", "op 7 RECONNECT", send_code=RECONNECT_CLOSE_CODE,
                                immediate=True))

    def _on_invalid_session(self, pkt: Any) -> None:
        resumable = bool(pkt.d)
        self.metrics.invalid_sessions += 1
        self._emit(LifecycleEvent("invalid_session", self.shard_id, {"resumable": resumable}))
        raise _Control(_Outcome("resume" if resumable else "identify",
                                f"op 9 INVALIDATE_SESSION {str(resumable).lower()}",
                                send_code=RECONNECT_CLOSE_CODE,
                                delay=self._invalid_session_delay()))

    def _on_dispatch(self, pkt: Any) -> None:
        s = pkt.s
        t = pkt.t
        if t == "READY" and (pkt.d or {}).get("session_id") != self.session_id:
            self.seq = None  # a new session numbers from 1 (even if we had sent RESUME)
        if isinstance(s, int):
            last = self.seq
            if last is not None and s <= last:
                self.metrics.duplicates += 1
                return
            if last is not None and s != last + 1:
                self.metrics.seq_gaps += 1
                log.warning("shard %d: sequence gap %s -> %s", self.shard_id, last, s)
            self.seq = s
        if t == "READY":
            d = pkt.d or {}
            self.session_id = d.get("session_id")
            self.resume_gateway_url = d.get("resume_gateway_url") or None
            self._resume_url_failed = False
            self._session_established()
        elif t == "RESUMED":
            self.metrics.resumes += 1
            self._session_established()
        elif t == "GUILD_MEMBERS_CHUNK":
            self._on_members_chunk(pkt)
        self.metrics.dispatches += 1
        self._queue.put_nowait(GatewayEvent(self.shard_id, pkt))
        if t == "READY":
            self._emit(LifecycleEvent("ready", self.shard_id, {"session_id": self.session_id}))
        elif t == "RESUMED":
            self._emit(LifecycleEvent("resumed", self.shard_id, {"seq": self.seq}))

    def _session_established(self) -> None:
        self._conn_established_at = time.monotonic()
        self._established.set()

    def _on_members_chunk(self, pkt: Any) -> None:
        d = pkt.d or {}
        entry = self._member_requests.get(d.get("nonce"))
        if entry is None:
            return
        fut, chunks = entry
        chunks[int(d.get("chunk_index", 0))] = d.get("members") or []
        if len(chunks) >= int(d.get("chunk_count", 1)) and not fut.done():
            fut.set_result([m for i in sorted(chunks) for m in chunks[i]])

    # ------------------------------------------------------------------ internals: session start
    async def _start_session(self) -> None:
        if self.session_id is not None:
            payload = encode(Opcode.RESUME, {"token": _bare_token(self.token),
                                             "session_id": self.session_id, "seq": self.seq})
            self.metrics.resume_attempts += 1
            self.send_limiter.acquire_priority()
            await self._send_raw(payload)
            return
        await self.identify_limiter.acquire(self.shard_id)
        self.seq = None
        d: dict[str, Any] = {
            "token": _bare_token(self.token),
            "intents": self.intents,
            "properties": self.properties,
            "shard": [self.shard_id, self.shard_count],
            "large_threshold": self.large_threshold,
        }
        if self.presence is not None:
            d["presence"] = self.presence
        payload = encode(Opcode.IDENTIFY, d)
        self.metrics.identifies += 1
        self.send_limiter.acquire_priority()
        await self._send_raw(payload)

    # ------------------------------------------------------------------ internals: heartbeats
    async def _send_heartbeat(self) -> None:
        self._last_beat = time.monotonic()
        self.send_limiter.acquire_priority()
        self.metrics.heartbeats_sent += 1
        await self._send_raw(encode(Opcode.HEARTBEAT, self.seq))

    async def _heartbeat_loop(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        jitter = self._rng()
        next_at = loop.time() + interval * jitter
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self._ack_pending:
                self.metrics.zombies += 1
                self._emit(LifecycleEvent("zombie", self.shard_id, {}))
                log.warning("shard %d: no HEARTBEAT_ACK since the last heartbeat: zombie "
                            "connection, closing with %d and resuming", self.shard_id,
                            ZOMBIE_CLOSE_CODE)
                self._finish(_Outcome("resume", "zombie: missed HEARTBEAT_ACK",
                                      send_code=ZOMBIE_CLOSE_CODE, immediate=True))
                return
            self._ack_pending = True
            await self._send_heartbeat()
            next_at += interval
            now = loop.time()
            if next_at < now:  # we are late by more than an interval; do not burst
                next_at = now + interval

    async def _loop_watchdog(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        threshold = self.loop_block_threshold
        if threshold is None:
            threshold = max(0.05, interval / 4)
        # a block of `threshold` shows as a lag of at least threshold - tick
        tick = max(0.01, min(1.0, threshold / 4))
        while True:
            start = loop.time()
            await asyncio.sleep(tick)
            lag = loop.time() - start - tick
            if lag > threshold:
                self.metrics.loop_blocked += 1
                self.metrics.max_loop_lag = max(self.metrics.max_loop_lag, lag)
                log.warning("shard %d: the event loop was blocked for %.3fs (heartbeat interval "
                            "%.3fs); heartbeats are in danger", self.shard_id, lag, interval)
                self._emit(LifecycleEvent("loop_blocked", self.shard_id, {"lag": lag}))

    # ------------------------------------------------------------------ internals: delivery
    def _emit(self, ev: LifecycleEvent) -> None:
        if self._queue is not None:
            self._queue.put_nowait(ev)

    async def _deliver_loop(self) -> None:
        """Calls handlers in order; async handlers run as tasks, so a slow one delays
        neither reading nor heartbeats nor the next events."""
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if item is None:
                for sub in list(self._subscribers):
                    sub.queue.put_nowait(None)
                return
            name = item.name if isinstance(item, LifecycleEvent) else item.t
            fns = list(self._handlers.get(name, ()))
            if not isinstance(item, LifecycleEvent):
                fns += self._handlers.get("*", ())
            for fn in fns:
                try:
                    res = fn(item)
                    if inspect.isawaitable(res):
                        task = asyncio.ensure_future(res)
                        self._handler_tasks.add(task)
                        task.add_done_callback(self._handler_done)
                except Exception:
                    log.exception("shard %d: handler %r for %s failed", self.shard_id, fn, name)
            for sub in self._subscribers:
                if sub.wants(item):
                    sub.queue.put_nowait(item)

    def _handler_done(self, task: asyncio.Task) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("shard %d: async handler failed", self.shard_id, exc_info=task.exception())
