"""One gateway shard: an asyncio connection on aiohttp built on ``mijcodec.Decoder``.

Guarantees: every dispatch of a session is delivered to handlers / iterators (and offered to
the sink) exactly once and in sequence order across reconnects, resumes, zombie kills and
decompression errors; ``seq`` only advances past an event once it was handed on, so an event
that could not be handed on is replayed by the next RESUME instead of lost.  See the README's
behaviour table.

The parts, each in its own module:

* :mod:`gateway.policy`: the shard states, the close-code table and :class:`Ending` (why a
  connection ended and what follows) as data;
* :mod:`gateway.heartbeat`: heartbeats, zombie detection, the event-loop watchdog;
* :mod:`gateway.session`: session id, acknowledged seq, resume URL, de-duplication;
* :mod:`gateway.subscriptions`: handlers, iterators and the delivery task;
* :mod:`gateway.members`: op 8 requests matched to chunks and RATE_LIMITED by nonce;
* :mod:`gateway.metrics`, :mod:`gateway.rest` (``/gateway/bot``), :mod:`gateway.decoder_view`;
* this module: the connection loop (connect, HELLO, IDENTIFY/RESUME, read, end, reconnect
  decision) and sending.

The shard reads packets from the return value of ``Decoder.feed`` and dispatches by opcode
itself instead of registering ``Decoder.on`` handlers: handlers run inside ``feed`` before the
shard de-duplicated a replay or acknowledged the event (see :mod:`gateway.session` for why
``Decoder.seq`` is not the shard's ``seq``).  The decoder is private (``shard.decoder`` is a
read-only view: counters, compression, and ``on``/``off`` that register de-duplicated dispatch
handlers on the shard), so nothing can observe a replayed duplicate.
"""
from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from typing import Any, AsyncIterator, Callable

import aiohttp
import orjson
from yarl import URL

import mijcodec
from mijcodec import Decoder, Opcode, encode

from .errors import (GatewayAuthError, GatewayClosedFatal, GatewayError, GatewayProtocolError,
                     RequestRateLimited)
from .decoder_view import DecoderView
from .heartbeat import Heartbeat, LoopWatchdog, validate_interval
from .members import MemberRequests
from .metrics import ShardMetrics
from .policy import (FATAL_CLOSE_CODES, IDENTIFY_ANEW_CLOSE_CODES, RECONNECT_CLOSE_CODE,
                     ZOMBIE_CLOSE_CODE, Ending, Next, ShardState, classify_close)
from .protocols import DispatchRecord, EventSink, IdentifyQueue, SessionState, SessionStore
from .ratelimit import Backoff, IdentifyLimiter, SendLimiter
from .rest import DEFAULT_API_URL, _bare_token, fetch_gateway_bot
from .session import SessionTracker
from .subscriptions import (DEFAULT_MAX_PENDING, LIFECYCLE_EVENTS, Delivery, GatewayEvent,
                            LifecycleEvent, Subscription)

__all__ = [
    "Shard", "GatewayEvent", "LifecycleEvent", "ShardMetrics", "SessionState", "ShardState",
    "GatewayError", "GatewayClosedFatal", "GatewayAuthError", "GatewayProtocolError",
    "RequestRateLimited", "FATAL_CLOSE_CODES", "IDENTIFY_ANEW_CLOSE_CODES", "ZOMBIE_CLOSE_CODE",
    "RECONNECT_CLOSE_CODE", "DEFAULT_API_URL", "default_compress", "fetch_gateway_bot",
    "classify_close", "LIFECYCLE_EVENTS",
]

log = logging.getLogger("gateway.shard")

GATEWAY_VERSION = 10


def default_compress() -> str:
    """``zstd-stream`` when the codec can decode it, else ``zlib-stream``."""
    try:
        Decoder("zstd-stream")
        return "zstd-stream"
    except Exception:  # pragma: no cover - zstd is a dependency
        return "zlib-stream"


def _ws_timeout_kwargs(close_timeout: float) -> dict:
    if hasattr(aiohttp, "ClientWSTimeout"):  # aiohttp >= 3.11
        return {"timeout": aiohttp.ClientWSTimeout(ws_receive=None, ws_close=close_timeout)}
    return {"timeout": close_timeout, "receive_timeout": None}  # pragma: no cover


class _Connection:
    """What lives exactly as long as one websocket."""

    def __init__(self, url: str, on_resume_url: bool) -> None:
        self.url = url
        self.on_resume_url = on_resume_url
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ending: asyncio.Future = asyncio.get_running_loop().create_future()
        self.tasks: set[asyncio.Task] = set()
        self.heartbeat: Heartbeat | None = None
        self.established_at: float | None = None
        self.acks_at_established = 0
        self.progress_at = time.monotonic()  # last READY/RESUMED progress (any dispatch)
        self.session_started = False

    def end(self, ending: Ending) -> None:
        if not self.ending.done():
            self.ending.set_result(ending)


# ---------------------------------------------------------------------------- the shard
class Shard:
    """A single gateway shard.

    ``await shard.run()`` connects and keeps the session alive until :meth:`close` (returns)
    or a fatal close code (raises :class:`GatewayClosedFatal`).  ``shard.start()`` runs it as a
    task (a second call returns the same task).  Time-related behaviour is injectable for
    tests: ``rng`` (first-beat jitter and backoff jitter), ``invalid_session_delay`` (op 9
    wait, default uniform 1-5 s), ``backoff``, ``identify_queue`` (alias ``identify_limiter``),
    ``send_limiter``, and the timeouts (``connect_timeout``, ``hello_timeout``,
    ``ready_timeout``, ``close_timeout``, ``stable_after``, ``min_connect_interval``,
    ``heartbeat_interval_range``).

    Pluggable parts (:mod:`gateway.protocols`): ``identify_queue`` is awaited before every
    IDENTIFY; ``session_store`` is loaded at start, saved when a session is established and
    when the shard stops resumably, cleared when the session is gone; ``sink.offer(record)`` is
    called for every dispatch before its ``s`` is acknowledged.
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
                 identify_limiter: IdentifyQueue | None = None,
                 send_limiter: SendLimiter | None = None,
                 stable_after: float = 5.0, connect_timeout: float = 10.0,
                 close_timeout: float = 2.0, hello_timeout: float = 20.0,
                 ready_timeout: float = 30.0, min_connect_interval: float = 0.5,
                 heartbeat_interval_range: tuple[float, float] = (0.01, 600.0),
                 loop_block_threshold: float | None = None,
                 max_payload_size: int | None = None,
                 identify_queue: IdentifyQueue | None = None,
                 session_store: SessionStore | None = None,
                 sink: EventSink | None = None) -> None:
        if not 50 <= large_threshold <= 250:
            raise ValueError("large_threshold must be in 50..250")
        if not 0 <= shard_id < shard_count:
            raise ValueError("shard_id must be in [0, shard_count)")
        if isinstance(intents, bool) or not isinstance(intents, int) or intents < 0:
            raise ValueError("intents must be a non-negative int")
        if compress == "default":
            compress = default_compress()
        if compress == "none":
            compress = None
        self._token = token
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
        self.identify_queue: IdentifyQueue = identify_queue or identify_limiter or IdentifyLimiter(1)
        # 120 / 60 s, measured over 61 s: arrival-time jitter must not let two bursts of
        # sends fall into one of the server's 60 s windows
        self.send_limiter = send_limiter or SendLimiter(120, 61.0, reserved=10)
        self.session_store = session_store
        self.sink = sink
        self.stable_after = stable_after
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.hello_timeout = hello_timeout
        self.ready_timeout = ready_timeout
        self.min_connect_interval = min_connect_interval
        self.heartbeat_interval_range = heartbeat_interval_range
        self.loop_block_threshold = loop_block_threshold

        kw = {} if max_payload_size is None else {"max_payload_size": max_payload_size}
        self._decoder = Decoder(compress, **kw)
        self.decoder = DecoderView(self)

        self.session = SessionTracker(shard_id, shard_count)
        if session is not None:
            self.restore(session)
        self.metrics = ShardMetrics()
        self.delivery = Delivery(shard_id)
        self._members = MemberRequests(shard_id)
        self._nonce_counter = 0

        self.state = ShardState.IDLE
        self._conn: _Connection | None = None
        self._run_task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._established = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stop_code = 1000
        self._sink_blocked = False
        self._last_connect_at: float | None = None
        self.running = False
        self.fatal: GatewayClosedFatal | None = None

    def __repr__(self) -> str:
        return (f"<Shard {self.shard_id}/{self.shard_count} state={self.state.value} "
                f"session={self.session_id} seq={self.seq}>")

    # ------------------------------------------------------------------ session shortcuts
    @property
    def token(self) -> str:
        return self._token

    @property
    def session_id(self) -> str | None:
        return self.session.session_id

    @property
    def seq(self) -> int | None:
        return self.session.seq

    @property
    def resume_gateway_url(self) -> str | None:
        return self.session.resume_gateway_url

    @property
    def identify_limiter(self) -> IdentifyQueue:
        """The name before the identify queue protocol existed."""
        return self.identify_queue

    @identify_limiter.setter
    def identify_limiter(self, value: IdentifyQueue) -> None:
        self.identify_queue = value

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
        self.delivery.on(name, fn)
        return fn

    def off(self, name: str, fn: Callable | None = None) -> None:
        self.delivery.off(name, fn)

    def events(self, *names: str, lifecycle: bool = False,
               max_pending: int | None = DEFAULT_MAX_PENDING) -> Subscription:
        """``async for ev in shard.events("MESSAGE_CREATE")``: dispatches (and lifecycle events
        with ``lifecycle=True``) from the moment of the call until the shard stops, the
        iterator is closed, or it is dropped (``break``).  An iterator ``max_pending`` events
        behind stops taking events and, after the ones it took, raises
        :class:`~gateway.errors.SubscriptionOverflow` (None: no bound)."""
        return self.delivery.subscribe(frozenset(names) if names else None, lifecycle,
                                       max_pending)

    def __aiter__(self) -> AsyncIterator[GatewayEvent]:
        return self.events().__aiter__()

    @property
    def latency(self) -> float | None:
        return self.metrics.latency

    def snapshot_metrics(self) -> ShardMetrics:
        """Metrics with the decoder counters folded in."""
        m = self.metrics
        m.payloads_in = self._decoder.payloads
        m.bytes_in = self._decoder.bytes_in
        m.bytes_decompressed = self._decoder.bytes_out
        return m

    # ------------------------------------------------------------------ public: session state
    def session_state(self) -> SessionState:
        return self.session.state()

    def restore(self, state: SessionState) -> None:
        self.session.restore(state)

    # ------------------------------------------------------------------ public: running
    def start(self) -> asyncio.Task:
        """Run the shard as a task; while it runs, calling again returns the same task."""
        if self._run_task is not None and not self._run_task.done():
            return self._run_task
        self.running = True
        self._run_task = asyncio.ensure_future(self.run())
        return self._run_task

    async def wait_until_ready(self, timeout: float | None = None) -> None:
        """Wait until a session is established (READY or RESUMED) on the current connection.
        Raises ``asyncio.TimeoutError`` after ``timeout`` (also before :meth:`start`), the
        :class:`GatewayClosedFatal` when the shard stopped on a fatal close, and
        :class:`GatewayError` when it was closed."""
        if self._established.is_set():
            return
        ready = asyncio.ensure_future(self._established.wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            done, _ = await asyncio.wait({ready, stopped}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            stopped.cancel()
        if self._established.is_set() or ready in done:
            return
        if self.fatal is not None:
            raise self.fatal
        if stopped in done:
            raise GatewayError(f"shard {self.shard_id} stopped before a session was established")
        raise asyncio.TimeoutError(f"shard {self.shard_id}: no session within {timeout}s")

    async def close(self, code: int = 1000) -> None:
        """Stop the shard.  ``code`` 1000 (or 1001) ends the session (it is forgotten and
        cleared from the session store); any other code, e.g. 4901, keeps it resumable (saved
        to the store, :meth:`session_state`).  Interrupts every wait (backoff, identify queue,
        session-start-limit, sink)."""
        self._stop_code = code
        self._stop.set()
        if self.state not in (ShardState.STOPPED, ShardState.FATAL, ShardState.IDLE):
            self.state = ShardState.CLOSING
        if self._conn is not None:
            self._conn.end(Ending(Next.STOP, "closed by user", send_code=code))
        task = self._run_task
        current = asyncio.current_task()
        # awaiting the run from one of our own handler tasks would deadlock: run() waits for them
        if task is not None and task is not current and current not in self.delivery.handler_tasks:
            # asyncio.wait, not ``await task``: a cancellation of *our caller* must propagate
            # (catching CancelledError around ``await task`` swallowed it and left a cancelled
            # lease watchdog looping forever); the run's own outcome is only retrieved here
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()
        elif task is None and code in (1000, 1001):
            await self._session_gone()

    async def run(self) -> None:
        current = asyncio.current_task()
        if self._run_task is not None and not self._run_task.done() and self._run_task is not current:
            raise GatewayError(f"shard {self.shard_id} is already running")
        self._run_task = current
        self.running = True
        self.fatal = None
        self._stopped.clear()
        self.delivery.start()
        try:
            if self._http is None:
                self._http = aiohttp.ClientSession()
            if self.gateway_url is None:
                fetch = asyncio.ensure_future(fetch_gateway_bot(self._http, self.api_url,
                                                                self._token))
                await self._until_stopped(asyncio.shield(fetch))
                if not fetch.done():  # close() came first
                    fetch.cancel()
                    await asyncio.gather(fetch, return_exceptions=True)
                    return
                self.gateway_url = fetch.result()["url"]
            if not self.session.resumable and self.session_store is not None:
                state = await self.session_store.load(self.shard_id, self.shard_count)
                if state is not None:
                    self.session.restore(state)
            while not self._stop.is_set():
                ending = await self._connection()
                if ending.next is Next.STOP:
                    break
                if ending.next is Next.FATAL:
                    self.fatal = GatewayClosedFatal(ending.code or 0, ending.reason, self.shard_id)
                    raise self.fatal
                await self._between_connections(ending)
        finally:
            await self._finish_run()

    async def _between_connections(self, ending: Ending) -> None:
        self.state = ShardState.DISCONNECTED
        if self._was_stable():
            self.backoff.reset()
        if ending.next is Next.IDENTIFY:
            await self._session_gone()
        # every reconnect counts toward the backoff; after a stable connection the first is 0
        delay = ending.delay if ending.delay is not None else self.backoff.next_delay()
        if self._last_connect_at is not None:  # never more than one connect per interval
            floor = self._last_connect_at + self.min_connect_interval - time.monotonic()
            delay = max(delay, floor)
        delay = max(0.0, delay)
        resume = self.session.resumable
        self.metrics.reconnects += 1
        self._emit(LifecycleEvent("reconnecting", self.shard_id,
                                  {"resume": resume, "delay": round(delay, 3), "why": ending.why}))
        log.info("shard %d: reconnecting in %.2fs (%s, %s)", self.shard_id, delay,
                 "resume" if resume else "identify", ending.why)
        if self._sink_blocked and self.sink is not None:
            await self._until_stopped(self.sink.wait_writable())
            self._sink_blocked = False
        if delay > 0:
            await self._until_stopped(asyncio.sleep(delay))

    async def _until_stopped(self, aw: Any) -> None:
        """Await ``aw`` unless :meth:`close` comes first."""
        if self._stop.is_set():
            if asyncio.iscoroutine(aw):
                aw.close()
            return
        task = asyncio.ensure_future(aw)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, stop):
                t.cancel()
            await asyncio.gather(task, stop, return_exceptions=True)

    async def _finish_run(self) -> None:
        self.running = False
        self.state = ShardState.FATAL if self.fatal is not None else ShardState.STOPPED
        self._established.clear()
        try:
            if self.fatal is None and self._stop.is_set() and self._stop_code in (1000, 1001):
                await self._session_gone()  # close(1000): the session is over
            elif self.session.resumable and self.session_store is not None:
                await self.session_store.save(self.session.state())
        except Exception as exc:  # a failing store must not hide why the run ended
            log.warning("shard %d: session store failed: %s", self.shard_id, exc)
        self._emit(LifecycleEvent("closed", self.shard_id,
                                  {"fatal": str(self.fatal) if self.fatal else None}))
        await self.delivery.stop()
        self._members.fail_all(GatewayError("shard stopped"))
        self._stop.clear()
        self._stop_code = 1000
        self._stopped.set()
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    async def _session_gone(self) -> None:
        self.session.forget()
        if self.session_store is not None:
            try:
                await self.session_store.clear(self.shard_id)
            except Exception as exc:
                log.warning("shard %d: session store clear failed: %s", self.shard_id, exc)

    async def _session_established(self, conn: _Connection) -> None:
        if self.session_store is not None:
            try:
                await self.session_store.save(self.session.state())
            except Exception as exc:
                log.warning("shard %d: session store save failed: %s", self.shard_id, exc)

    def _was_stable(self) -> bool:
        """The last connection established a session and proved alive: an ACK after that, or
        ``stable_after`` seconds up."""
        conn = self._conn
        if conn is None or conn.established_at is None:
            return False
        hb = conn.heartbeat
        acked = hb is not None and hb.acks > conn.acks_at_established
        return acked or time.monotonic() - conn.established_at >= self.stable_after

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
        in chunk order.  Raises :class:`RequestRateLimited` (with ``retry_after``) when the
        gateway answers with a ``RATE_LIMITED`` dispatch for this nonce."""
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
        fut = self._members.open(nonce)
        try:
            await self.send(Opcode.REQUEST_MEMBERS, d)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._members.discard(nonce)

    async def _send_raw(self, payload: bytes) -> None:
        conn = self._conn
        ws = conn.ws if conn is not None else None
        if ws is None or ws.closed:
            raise ConnectionResetError("not connected")
        await ws.send_str(payload.decode())
        self.metrics.payloads_out += 1
        self.metrics.bytes_out += len(payload)

    async def _send_ordinary(self, payload: bytes) -> None:
        while True:
            if not self._established.is_set():
                if not self.running:
                    raise GatewayError("shard is not running")
                ready = asyncio.ensure_future(self._established.wait())
                stopped = asyncio.ensure_future(self._stopped.wait())
                try:
                    await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    ready.cancel()
                    stopped.cancel()
                continue
            conn = self._conn
            await self.send_limiter.acquire()
            if conn is None or conn is not self._conn or not self._established.is_set():
                continue
            try:
                await self._send_raw(payload)
                return
            except (ConnectionError, RuntimeError):
                await asyncio.sleep(0)

    # ------------------------------------------------------------------ the connection
    def _ws_url(self, url: str) -> URL:
        query = {"v": str(GATEWAY_VERSION), "encoding": "json"}
        if self.compress:
            query["compress"] = self.compress
        return URL(url).update_query(query)

    def _spawn(self, conn: _Connection, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        conn.tasks.add(task)
        task.add_done_callback(lambda t: self._conn_task_done(conn, t))
        return task

    def _conn_task_done(self, conn: _Connection, task: asyncio.Task) -> None:
        conn.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, (ConnectionError, aiohttp.ClientConnectionError)):
            return  # the connection is going away; the reader reports how
        if exc is not None:
            log.error("shard %d: connection task failed: %r", self.shard_id, exc, exc_info=exc)
            conn.end(Ending(Next.RESUME, f"internal error: {exc!r}"))

    async def _connection(self) -> Ending:
        assert self._http is not None and self.gateway_url is not None
        resume_url = self.session.resume_url()
        conn = _Connection(resume_url or self.gateway_url, resume_url is not None)
        self._conn = conn
        self._established.clear()
        self.state = ShardState.CONNECTING
        self._last_connect_at = time.monotonic()
        ending = await self._open(conn)
        if ending is None:
            self.metrics.connects += 1
            self._emit(LifecycleEvent("connected", self.shard_id,
                                      {"url": conn.url, "resume": self.session.resumable}))
            self.state = ShardState.WAITING_HELLO
            self._spawn(conn, self._read_loop(conn))
            self._spawn(conn, self._hello_watchdog(conn))
            ending = Ending(Next.RESUME, "cancelled")
            try:
                ending = await conn.ending
            finally:  # also on cancellation of run(): never leak the connection's tasks
                await self._teardown(conn, ending)
            self._emit(LifecycleEvent("disconnected", self.shard_id, {
                "code": ending.close_code, "reason": ending.reason,
                "by": "server" if ending.send_code is None else "client", "why": ending.why}))
        self.metrics.close_codes.append(ending.close_code)
        if (conn.on_resume_url and conn.established_at is None and ending.next is not Next.STOP
                and not ending.backpressure):
            # any resume-URL connection that ends before RESUMED: that URL failed
            self.session.resume_url_failed = True
            self.metrics.resume_url_fallbacks += 1
            log.warning("shard %d: resume URL %s failed (%s); falling back to the gateway URL",
                        self.shard_id, conn.url, ending.why)
        return ending

    async def _open(self, conn: _Connection) -> Ending | None:
        """Connect (racing :meth:`close` and ``connect_timeout``); an Ending when it failed."""
        assert self._http is not None
        if self._stop.is_set():
            return Ending(Next.STOP, "closed by user", send_code=None)
        connect = asyncio.ensure_future(self._http.ws_connect(
            self._ws_url(conn.url), max_msg_size=0, autoping=True, autoclose=True,
            **_ws_timeout_kwargs(self.close_timeout)))
        try:
            await asyncio.wait({connect, conn.ending}, timeout=self.connect_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            connect.cancel()
            raise
        if not connect.done():
            connect.cancel()
            await asyncio.gather(connect, return_exceptions=True)
            if conn.ending.done():
                return conn.ending.result()
            return Ending(Next.RESUME, f"connect timed out after {self.connect_timeout}s",
                          send_code=None)
        exc = connect.exception()
        if exc is not None:
            if not isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
                raise exc
            return Ending(Next.RESUME, f"connect failed: {exc!r}", send_code=None)
        conn.ws = connect.result()
        if conn.ending.done():  # close() while the handshake finished
            await self._close_ws(conn.ws, conn.ending.result().send_code)
            return conn.ending.result()
        self._decoder.reset()
        self.send_limiter.reset()
        return None

    async def _teardown(self, conn: _Connection, ending: Ending) -> None:
        self._established.clear()
        for task in list(conn.tasks):
            task.cancel()
        if conn.tasks:
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        conn.tasks.clear()
        if conn.ws is not None:
            await self._close_ws(conn.ws, ending.send_code)

    async def _close_ws(self, ws: aiohttp.ClientWebSocketResponse, code: int | None) -> None:
        # aiohttp drops the TCP connection itself when the close handshake times out
        # (ws_close timeout = close_timeout)
        if ws.closed:
            return
        try:
            await asyncio.wait_for(ws.close(code=code or RECONNECT_CLOSE_CODE),
                                   self.close_timeout + 1.0)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError, aiohttp.ClientError):
            pass

    async def _hello_watchdog(self, conn: _Connection) -> None:
        await asyncio.sleep(self.hello_timeout)
        if conn.heartbeat is None:
            conn.end(Ending(Next.RESUME, f"no HELLO within {self.hello_timeout}s"))

    async def _ready_watchdog(self, conn: _Connection) -> None:
        """No READY/RESUMED (and no dispatch at all) for ``ready_timeout`` after the
        IDENTIFY/RESUME: close resumably and reconnect with backoff."""
        while conn.established_at is None:
            wait = conn.progress_at + self.ready_timeout - time.monotonic()
            if wait <= 0:
                self.metrics.ready_timeouts += 1
                log.warning("shard %d: no READY/RESUMED within %.1fs; reconnecting",
                            self.shard_id, self.ready_timeout)
                conn.end(Ending(Next.RESUME, f"no READY/RESUMED within {self.ready_timeout}s"))
                return
            await asyncio.sleep(wait)

    async def _read_loop(self, conn: _Connection) -> None:
        ws = conn.ws
        assert ws is not None
        feed = self._decoder.feed
        while True:
            try:
                msg = await ws.receive()
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                conn.end(Ending(Next.RESUME, f"receive failed: {exc!r}", send_code=None, code=1006))
                return
            if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                try:
                    pkt = feed(msg.data)
                except mijcodec.CodecError as exc:
                    self.metrics.codec_errors += 1
                    log.warning("shard %d: %s: %s; reconnecting to resume", self.shard_id,
                                type(exc).__name__, exc)
                    conn.end(Ending(Next.RESUME, f"{type(exc).__name__}: {exc}"))
                    return
                if pkt is None:
                    continue
                ending = self._on_packet(conn, pkt)
                if ending is not None:
                    conn.end(ending)
                    return
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.CLOSED):
                code = ws.close_code
                if msg.type == aiohttp.WSMsgType.CLOSE and isinstance(msg.data, int):
                    code = msg.data
                reason = msg.extra if isinstance(msg.extra, str) else ""
                conn.end(Ending.server_closed(code, reason or ""))
                return
            elif msg.type == aiohttp.WSMsgType.ERROR:
                conn.end(Ending(Next.RESUME, f"websocket error: {ws.exception()!r}",
                                send_code=None, code=1006))
                return

    # ------------------------------------------------------------------ packets by opcode
    def _on_packet(self, conn: _Connection, pkt: Any) -> Ending | None:
        op = pkt.op
        if op == Opcode.DISPATCH:
            return self._on_dispatch(conn, pkt)
        if op == Opcode.HEARTBEAT_ACK:
            self._on_ack(conn)
        elif op == Opcode.HEARTBEAT:
            self._spawn(conn, self._send_heartbeat() if conn.heartbeat is None
                        else conn.heartbeat.beat())
        elif op == Opcode.HELLO:
            return self._on_hello(conn, pkt)
        elif op == Opcode.RECONNECT:
            return Ending(Next.RESUME, "op 7 RECONNECT")
        elif op == Opcode.INVALIDATE_SESSION:
            try:
                resumable = pkt.d is True
            except mijcodec.CodecError:
                resumable = False
            self.metrics.invalid_sessions += 1
            self._emit(LifecycleEvent("invalid_session", self.shard_id, {"resumable": resumable}))
            return Ending(Next.RESUME if resumable else Next.IDENTIFY,
                          f"op 9 INVALIDATE_SESSION {str(resumable).lower()}",
                          delay=self._invalid_session_delay())
        return None

    def _protocol_error(self, what: str) -> Ending:
        """A bad server payload: one warning line, a reconnect with backoff."""
        self.metrics.protocol_errors += 1
        log.warning("shard %d: bad payload from the gateway: %s; reconnecting with backoff",
                    self.shard_id, what)
        return Ending(Next.RESUME, f"protocol error: {what}")

    def _on_hello(self, conn: _Connection, pkt: Any) -> Ending | None:
        if conn.heartbeat is not None:
            return None  # a second HELLO changes nothing
        try:
            d = pkt.d
        except mijcodec.CodecError as exc:
            return self._protocol_error(f"HELLO d does not parse ({exc})")
        lo, hi = self.heartbeat_interval_range
        try:
            if not isinstance(d, dict):
                raise ValueError(f"HELLO d is not an object: {type(d).__name__}")
            interval = validate_interval(d.get("heartbeat_interval"), lo, hi)
        except ValueError as exc:
            return self._protocol_error(str(exc))
        conn.heartbeat = Heartbeat(interval, self._send_heartbeat, lambda: self._on_zombie(conn),
                                   self._rng())
        self._spawn(conn, conn.heartbeat.run())
        threshold = self.loop_block_threshold
        if threshold is None:
            threshold = max(0.05, interval / 4)
        self._spawn(conn, LoopWatchdog(threshold, lambda lag: self._on_loop_block(lag, interval)).run())
        self._spawn(conn, self._start_session(conn))
        return None

    def _on_ack(self, conn: _Connection) -> None:
        self.metrics.heartbeat_acks += 1
        rtt = conn.heartbeat.ack() if conn.heartbeat is not None else None
        if rtt is not None:
            self.metrics.latency = rtt
            avg = self.metrics.latency_avg
            self.metrics.latency_avg = rtt if avg is None else 0.8 * avg + 0.2 * rtt

    def _on_zombie(self, conn: _Connection) -> None:
        self.metrics.zombies += 1
        self._emit(LifecycleEvent("zombie", self.shard_id, {}))
        log.warning("shard %d: no HEARTBEAT_ACK since the last heartbeat: zombie connection, "
                    "closing with %d and resuming", self.shard_id, ZOMBIE_CLOSE_CODE)
        conn.end(Ending(Next.RESUME, "zombie: missed HEARTBEAT_ACK", send_code=ZOMBIE_CLOSE_CODE))

    def _on_loop_block(self, lag: float, interval: float) -> None:
        self.metrics.loop_blocked += 1
        self.metrics.max_loop_lag = max(self.metrics.max_loop_lag, lag)
        log.warning("shard %d: the event loop was blocked for %.3fs (heartbeat interval "
                    "%.3fs); heartbeats are in danger", self.shard_id, lag, interval)
        self._emit(LifecycleEvent("loop_blocked", self.shard_id, {"lag": lag}))

    def _on_dispatch(self, conn: _Connection, pkt: Any) -> Ending | None:
        t = pkt.t
        s = pkt.s
        conn.progress_at = time.monotonic()
        if t == "READY":
            try:
                d = pkt.d
            except mijcodec.CodecError as exc:
                return self._protocol_error(f"READY d does not parse ({exc})")
            if not isinstance(d, dict) or not isinstance(d.get("session_id"), str):
                return self._protocol_error("READY d is not an object with a session_id")
            url = d.get("resume_gateway_url")
            self.session.established(d["session_id"], url if isinstance(url, str) else None)
        if self.session.is_duplicate(s):
            self.metrics.duplicates += 1
            return None
        if self.session.is_gap(s):
            self.metrics.seq_gaps += 1
            log.warning("shard %d: sequence gap %s -> %s", self.shard_id, self.session.seq, s)
        # hand the event on: sink first (it may refuse), then the delivery queue; only then
        # is `s` acknowledged (heartbeats, RESUME)
        if self.sink is not None and not self.sink.offer(self._record(pkt)):
            self.metrics.sink_full += 1
            self._sink_blocked = True
            log.warning("shard %d: event sink is full at s=%s; closing to resume once it drains",
                        self.shard_id, s)
            # our own backpressure, not a failure of the server: no backoff step (the wait for
            # the sink to drain paces it; min_connect_interval still applies)
            return Ending(Next.RESUME, "event sink is full", delay=0.0, backpressure=True)
        self.metrics.dispatches += 1
        self.delivery.put(GatewayEvent(self.shard_id, pkt))
        self.session.acknowledge(s)
        # side effects after the hand-off: none of them can lose the event
        if t == "READY":
            self._established_now(conn)
            self._emit(LifecycleEvent("ready", self.shard_id, {"session_id": self.session_id}))
        elif t == "RESUMED":
            self.metrics.resumes += 1
            self._established_now(conn)
            self._emit(LifecycleEvent("resumed", self.shard_id, {"seq": self.seq}))
        elif t == "GUILD_MEMBERS_CHUNK":
            self._members.on_chunk(pkt)
        elif t == "RATE_LIMITED":
            self._members.on_rate_limited(pkt)
        return None

    def _record(self, pkt: Any) -> DispatchRecord:
        raw_d = getattr(pkt, "raw_d", None)
        if raw_d is None and not getattr(self.sink, "wants_raw_d", True):
            raw_d = b""  # the sink said it reads the packet itself: no serialisation
        if raw_d is None:
            try:
                raw_d = orjson.dumps(pkt.d)
            except (mijcodec.CodecError, TypeError) as exc:
                log.warning("shard %d: dispatch s=%s d does not parse (%s); sink gets null",
                            self.shard_id, pkt.s, exc)
                raw_d = b"null"
        elif isinstance(raw_d, str):
            raw_d = raw_d.encode()
        return DispatchRecord(self.shard_id, self.session_id, pkt.s, pkt.t, bytes(raw_d), pkt)

    def _established_now(self, conn: _Connection) -> None:
        conn.established_at = time.monotonic()
        conn.acks_at_established = conn.heartbeat.acks if conn.heartbeat is not None else 0
        self.state = ShardState.ACTIVE
        self._established.set()
        self._spawn(conn, self._session_established(conn))

    # ------------------------------------------------------------------ IDENTIFY / RESUME
    async def _start_session(self, conn: _Connection) -> None:
        if self.session.resumable:
            self.state = ShardState.RESUMING
            payload = encode(Opcode.RESUME, {"token": _bare_token(self._token),
                                             "session_id": self.session_id, "seq": self.seq})
            self.metrics.resume_attempts += 1
        else:
            self.state = ShardState.IDENTIFYING
            await self.identify_queue.acquire(self.shard_id)
            self.session.start_identify()
            d: dict[str, Any] = {
                "token": _bare_token(self._token),
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
        conn.progress_at = time.monotonic()
        conn.session_started = True
        self._spawn(conn, self._ready_watchdog(conn))

    async def _send_heartbeat(self) -> None:
        self.send_limiter.acquire_priority()
        self.metrics.heartbeats_sent += 1
        await self._send_raw(encode(Opcode.HEARTBEAT, self.seq))

    # ------------------------------------------------------------------ delivery
    def _emit(self, ev: LifecycleEvent) -> None:
        self.delivery.put(ev)

    # compatibility for code that looked at the old private attributes
    @property
    def _conn_tasks(self) -> set:
        return self._conn.tasks if self._conn is not None and self.running else set()

    @property
    def _handler_tasks(self) -> set:
        return self.delivery.handler_tasks
