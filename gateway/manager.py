"""Many shards in one process: shard count from ``/gateway/bot`` or a given range of ids out
of a total, IDENTIFY through one identify queue (``max_concurrency`` buckets and the
``session_start_limit`` budget), sessions in a session store, dispatches to an optional sink,
and shards added / removed while running (for a lease loop)."""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Callable, Iterable

import aiohttp

from .errors import GatewayError, SubscriptionOverflow
from .protocols import EventSink, IdentifyQueue, SessionState, SessionStore
from .ratelimit import IdentifyLimiter
from .shard import DEFAULT_API_URL, Shard, fetch_gateway_bot
from .stores import FileSessionStore, load_sessions, save_sessions
from .subscriptions import DEFAULT_MAX_PENDING

__all__ = ["ShardManager", "parse_shard_ids", "save_sessions", "load_sessions"]

log = logging.getLogger("gateway.manager")


def parse_shard_ids(spec: str) -> list[int]:
    """``"0-3"`` -> [0, 1, 2, 3]; ``"0,2,5-6"`` -> [0, 2, 5, 6].  ``ValueError`` on a bad
    part, a negative id or an id given twice."""
    ids: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ValueError(f"bad shard id or range {part!r} (ids are >= 0: N or A-B)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad shard range {part!r}")
        ids.extend(range(lo, hi + 1))
    if not ids:
        raise ValueError("no shard ids")
    if len(set(ids)) != len(ids):
        raise ValueError("a shard id is given twice")
    return ids


class ShardManager:
    """Runs ``shard_ids`` (default: all) out of ``shard_count`` (default: ``/gateway/bot``'s
    ``shards``).

    Pluggable parts (:mod:`gateway.protocols`), shared by every shard: ``identify_queue``
    (default: a :class:`~gateway.ratelimit.MemoryIdentifyQueue` configured from
    ``session_start_limit``; ``identify_limiter`` is the old name), ``session_store``
    (default: a :class:`~gateway.stores.FileSessionStore` on ``state_file`` when given, so a
    restarted process RESUMEs), ``sink``.  Parts passed in are the caller's to close.

    :meth:`add_shard` / :meth:`remove_shard` change the running set (a lease loop drives them;
    start such a manager with ``shard_ids=[]``); once they were used (or with ``shard_ids=[]``),
    :meth:`run` returns only on :meth:`close` or a fatal close."""

    def __init__(self, token: str, *, intents: int = 0, api_url: str = DEFAULT_API_URL,
                 shard_count: int | None = None, shard_ids: Iterable[int] | None = None,
                 state_file: str | None = None, http: aiohttp.ClientSession | None = None,
                 identify_limiter: IdentifyQueue | None = None,
                 identify_queue: IdentifyQueue | None = None,
                 session_store: SessionStore | None = None,
                 sink: EventSink | None = None,
                 identify_period: float = 5.0,
                 sleep: Callable[[float], Any] = asyncio.sleep, **shard_kwargs: Any) -> None:
        self._token = token
        self.intents = intents
        self.api_url = api_url
        self.shard_count = shard_count
        self.shard_ids = list(shard_ids) if shard_ids is not None else None
        self.state_file = state_file
        self._http = http
        self._own_http = http is None
        self.identify_queue: IdentifyQueue | None = identify_queue or identify_limiter
        if session_store is None and state_file:
            session_store = FileSessionStore(state_file)
        self.session_store = session_store
        self.sink = sink
        self.identify_period = identify_period
        self._sleep = sleep
        self.shard_kwargs = shard_kwargs
        self.shards: dict[int, Shard] = {}
        self.gateway_info: dict | None = None
        self._handlers: list[tuple[str, Callable]] = []
        self._tasks: dict[int, asyncio.Task] = {}
        self._started = False
        self._start_task: asyncio.Future | None = None
        # shard_ids=[]: the running set is driven by add_shard/remove_shard (a lease loop)
        self._dynamic = self.shard_ids == []
        self._closed = asyncio.Event()
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<ShardManager shards={sorted(self.shards)} of {self.shard_count}>"

    @property
    def token(self) -> str:
        return self._token

    @property
    def identify_limiter(self) -> IdentifyQueue | None:
        """The name before the identify queue protocol existed."""
        return self.identify_queue

    # ------------------------------------------------------------------ events
    def on(self, name: str, fn: Callable | None = None) -> Any:
        """Like :meth:`Shard.on`, for every shard (also those created later)."""
        if fn is None:
            def deco(f: Callable) -> Callable:
                self.on(name, f)
                return f
            return deco
        self._handlers.append((name, fn))
        for shard in self.shards.values():
            shard.on(name, fn)
        return fn

    async def events(self, *names: str, lifecycle: bool = False,
                     max_pending: int | None = DEFAULT_MAX_PENDING):
        """Merged async iterator over every shard's events (the shards running when it
        starts).  ``max_pending`` bounds each shard's unread events as in :meth:`Shard.events`;
        the first shard to overflow ends the iteration with
        :class:`~gateway.errors.SubscriptionOverflow` after the events it had taken."""
        # bounded, so a slow reader leaves the events in the shards' own (bounded) queues
        queue: asyncio.Queue = asyncio.Queue(1 if max_pending is not None else 0)
        subs = [shard.events(*names, lifecycle=lifecycle, max_pending=max_pending)
                for shard in self.shards.values()]

        async def pump(sub: Any) -> None:
            try:
                async for ev in sub:
                    await queue.put(ev)
            except SubscriptionOverflow as exc:
                await queue.put(exc)
            await queue.put(None)

        pumps = [asyncio.ensure_future(pump(s)) for s in subs]
        remaining = len(pumps)
        try:
            while remaining:
                ev = await queue.get()
                if ev is None:
                    remaining -= 1
                    continue
                if isinstance(ev, SubscriptionOverflow):
                    raise ev
                yield ev
        finally:
            for p in pumps:
                p.cancel()
            for s in subs:
                s.close()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Fetch ``/gateway/bot``, configure the identify queue, create the shards and start
        them.  Waits of the identify queue (buckets, ``session_start_limit``) happen in the
        shards, so this returns at once and :meth:`close` interrupts them."""
        if self._start_task is None:
            self._started = True
            self._closed.clear()
            self._start_task = asyncio.ensure_future(self._start_once())
        await asyncio.shield(self._start_task)

    async def _start_once(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            await self._start()
        except BaseException:
            await self._close_http()
            raise

    async def _fetch_info(self) -> dict:
        assert self._http is not None
        return await fetch_gateway_bot(self._http, self.api_url, self._token)

    async def _refresh_limits(self) -> dict:
        info = await self._fetch_info()
        return info.get("session_start_limit") or {}

    async def _start(self) -> None:
        info = await self._fetch_info()
        self.gateway_info = info
        if self.shard_count is None:
            self.shard_count = int(info.get("shards") or 1)
        ids = self.shard_ids if self.shard_ids is not None else list(range(self.shard_count))
        for i in ids:
            if not 0 <= i < self.shard_count:
                raise ValueError(f"shard id {i} out of range for {self.shard_count} shards")
        limits = info.get("session_start_limit") or {}
        if self.identify_queue is None:
            self.identify_queue = IdentifyLimiter(int(limits.get("max_concurrency") or 1),
                                                  self.identify_period, sleep=self._sleep)
        # every queue takes the limits (budget, max_concurrency) and how to re-read them
        await self.identify_queue.configure(limits, self._refresh_limits)
        for i in sorted(ids, key=lambda i: (self.identify_queue.bucket(i), i)):
            await self._launch(i)

    def _make_shard(self, shard_id: int) -> Shard:
        assert self.gateway_info is not None and self.shard_count is not None
        shard = Shard(self._token, shard_id=shard_id, shard_count=self.shard_count,
                      intents=self.intents, api_url=self.api_url,
                      gateway_url=self.gateway_info["url"], http=self._http,
                      identify_queue=self.identify_queue, session_store=self.session_store,
                      sink=self.sink, **self.shard_kwargs)
        for name, fn in self._handlers:
            shard.on(name, fn)
        return shard

    async def _launch(self, shard_id: int) -> Shard:
        if self._closed.is_set():
            raise GatewayError("the shard manager is closed")
        shard = self._make_shard(shard_id)
        self.shards[shard_id] = shard
        self._tasks[shard_id] = shard.start()  # RESUMEs from the session store when it can
        self._changed.set()
        return shard

    async def add_shard(self, shard_id: int) -> Shard:
        """Create and start ``shard_id`` (it RESUMEs when the session store has its state).
        Returns the running shard (the existing one if it runs already)."""
        if not self._started:
            await self.start()
        assert self.shard_count is not None
        if not 0 <= shard_id < self.shard_count:
            raise ValueError(f"shard id {shard_id} out of range for {self.shard_count} shards")
        self._dynamic = True
        task = self._tasks.get(shard_id)
        if shard_id in self.shards and task is not None and not task.done():
            return self.shards[shard_id]
        return await self._launch(shard_id)

    async def remove_shard(self, shard_id: int, resumable: bool = True) -> SessionState | None:
        """Stop ``shard_id``: with ``resumable`` it closes with 4901 and its session is saved
        to the session store (and returned); else it closes with 1000 (session ended)."""
        self._dynamic = True
        shard = self.shards.pop(shard_id, None)
        task = self._tasks.pop(shard_id, None)
        self._changed.set()
        if shard is None:
            return None
        await shard.close(4901 if resumable else 1000)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return shard.session_state() if resumable and shard.session_id else None

    async def run(self) -> None:
        """Start (if needed) and wait until every shard stopped; a fatal close of any shard
        stops the others (sessions kept) and is raised.  Cancelling it closes every shard
        (resumably, sessions saved) and the HTTP session."""
        await self.start()
        try:
            await self._watch()
        except asyncio.CancelledError:
            await asyncio.shield(self.close(keep_sessions=True))
            raise
        finally:
            if not any(s.running for s in self.shards.values()):
                await self._close_http()

    async def _watch(self) -> None:
        while True:
            pending = {t for t in self._tasks.values() if not t.done()}
            for i, task in list(self._tasks.items()):
                if task.done() and not task.cancelled():
                    exc = task.exception()
                    if exc is not None:
                        await self.close(keep_sessions=True)
                        raise exc
            if self._closed.is_set() or (not pending and not self._dynamic):
                return
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            closed = asyncio.ensure_future(self._closed.wait())
            try:
                await asyncio.wait(pending | {changed, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                closed.cancel()

    async def close(self, keep_sessions: bool = True) -> None:
        """Stop every shard.  ``keep_sessions`` closes with a non-1000 code so the sessions
        stay resumable and are saved to the session store (``state_file``); else they are
        ended (1000) and cleared."""
        code = 4901 if keep_sessions else 1000
        self._closed.set()
        await asyncio.gather(*(s.close(code) for s in self.shards.values()), return_exceptions=True)
        if self.state_file and not keep_sessions:
            save_sessions(self.state_file, [])
        await self._close_http()

    async def _close_http(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------------ state
    def session_states(self) -> list[SessionState]:
        return [s.session_state() for s in self.shards.values()]

    def save_state(self, path: str | None = None) -> None:
        path = path or self.state_file
        if not path:
            raise ValueError("no state file")
        save_sessions(path, self.session_states())

    def metrics(self) -> dict[int, Any]:
        return {i: s.snapshot_metrics() for i, s in self.shards.items()}

