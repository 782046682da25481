"""Many shards in one process: shard count from ``/gateway/bot`` or a given range of ids out
of a total, IDENTIFY in ``max_concurrency`` buckets, and session state save/restore."""
from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Callable, Iterable

import aiohttp

from .ratelimit import IdentifyLimiter
from .shard import DEFAULT_API_URL, GatewayClosedFatal, SessionState, Shard, fetch_gateway_bot

__all__ = ["ShardManager", "parse_shard_ids", "save_sessions", "load_sessions"]

log = logging.getLogger("gateway.manager")


def parse_shard_ids(spec: str) -> list[int]:
    """``"0-3"`` -> [0, 1, 2, 3]; ``"0,2,5-6"`` -> [0, 2, 5, 6]."""
    ids: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            lo, hi = int(a), int(b)
            if hi < lo:
                raise ValueError(f"bad shard range {part!r}")
            ids.extend(range(lo, hi + 1))
        else:
            ids.append(int(part))
    if not ids:
        raise ValueError("no shard ids")
    return ids


def save_sessions(path: str, states: Iterable[SessionState]) -> None:
    """Write session states as JSON (atomically)."""
    data = {"version": 1, "sessions": [s.to_dict() for s in states]}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def load_sessions(path: str) -> dict[int, SessionState]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    return {int(d["shard_id"]): SessionState.from_dict(d) for d in data.get("sessions", [])}


class ShardManager:
    """Runs ``shard_ids`` (default: all) out of ``shard_count`` (default: ``/gateway/bot``'s
    ``shards``).  IDENTIFYs share :class:`IdentifyLimiter` buckets sized by
    ``session_start_limit.max_concurrency``.  With ``state_file`` the session states are loaded
    at start (so a restarted process RESUMEs) and written on :meth:`close`."""

    def __init__(self, token: str, *, intents: int = 0, api_url: str = DEFAULT_API_URL,
                 shard_count: int | None = None, shard_ids: Iterable[int] | None = None,
                 state_file: str | None = None, http: aiohttp.ClientSession | None = None,
                 identify_limiter: IdentifyLimiter | None = None,
                 identify_period: float = 5.0,
                 sleep: Callable[[float], Any] = asyncio.sleep, **shard_kwargs: Any) -> None:
        self.token = token
        self.intents = intents
        self.api_url = api_url
        self.shard_count = shard_count
        self.shard_ids = list(shard_ids) if shard_ids is not None else None
        self.state_file = state_file
        self._http = http
        self._own_http = http is None
        self.identify_limiter = identify_limiter
        self.identify_period = identify_period
        self._sleep = sleep
        self.shard_kwargs = shard_kwargs
        self.shards: dict[int, Shard] = {}
        self.gateway_info: dict | None = None
        self._handlers: list[tuple[str, Callable]] = []
        self._tasks: dict[int, asyncio.Task] = {}
        self._started = False

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

    async def events(self, *names: str, lifecycle: bool = False):
        """Merged async iterator over every shard's events."""
        queue: asyncio.Queue = asyncio.Queue()
        subs = [shard.events(*names, lifecycle=lifecycle) for shard in self.shards.values()]

        async def pump(sub: Any) -> None:
            async for ev in sub:
                await queue.put(ev)
            await queue.put(None)

        pumps = [asyncio.ensure_future(pump(s)) for s in subs]
        remaining = len(pumps)
        try:
            while remaining:
                ev = await queue.get()
                if ev is None:
                    remaining -= 1
                    continue
                yield ev
        finally:
            for p in pumps:
                p.cancel()
            for s in subs:
                s.close()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Fetch ``/gateway/bot``, create the shards and start them."""
        if self._started:
            return
        self._started = True
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            await self._start()
        except BaseException:
            if self._own_http and self._http is not None:
                await self._http.close()
                self._http = None
            raise

    async def _start(self) -> None:
        assert self._http is not None
        info = await fetch_gateway_bot(self._http, self.api_url, self.token)
        self.gateway_info = info
        if self.shard_count is None:
            self.shard_count = int(info.get("shards") or 1)
        ids = self.shard_ids if self.shard_ids is not None else list(range(self.shard_count))
        for i in ids:
            if not 0 <= i < self.shard_count:
                raise ValueError(f"shard id {i} out of range for {self.shard_count} shards")
        limits = info.get("session_start_limit") or {}
        if self.identify_limiter is None:
            self.identify_limiter = IdentifyLimiter(int(limits.get("max_concurrency") or 1),
                                                    self.identify_period)
        saved = load_sessions(self.state_file) if self.state_file else {}
        remaining = limits.get("remaining")
        to_identify = sum(1 for i in ids if not (saved.get(i) and saved[i].session_id))
        if isinstance(remaining, int) and remaining < to_identify:
            # exceeding the daily IDENTIFY budget gets the token reset: wait for the reset
            wait = float(limits.get("reset_after") or 0) / 1000.0
            log.warning("session_start_limit.remaining=%d < %d identifies needed; waiting %.1fs "
                        "for the limit to reset", remaining, to_identify, wait)
            await self._sleep(wait)
        for i in ids:
            state = saved.get(i)
            if state is not None and state.shard_count != self.shard_count:
                state = None
            shard = Shard(self.token, shard_id=i, shard_count=self.shard_count,
                          intents=self.intents, api_url=self.api_url, gateway_url=info["url"],
                          http=self._http, session=state, identify_limiter=self.identify_limiter,
                          **self.shard_kwargs)
            for name, fn in self._handlers:
                shard.on(name, fn)
            self.shards[i] = shard
        for i in sorted(self.shards, key=lambda i: (self.identify_limiter.bucket(i), i)):
            self._tasks[i] = self.shards[i].start()

    async def run(self) -> None:
        """Start (if needed) and wait until every shard stopped; a fatal close of any shard
        stops the others (sessions kept) and is raised."""
        await self.start()
        pending = set(self._tasks.values())
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    exc = task.exception()
                    if isinstance(exc, GatewayClosedFatal):
                        await self.close(keep_sessions=True)
                        raise exc
                    if exc is not None:
                        await self.close(keep_sessions=True)
                        raise exc
        finally:
            if self._own_http and self._http is not None and not any(
                    s.running for s in self.shards.values()):
                await self._http.close()
                self._http = None

    async def close(self, keep_sessions: bool = True) -> None:
        """Stop every shard.  ``keep_sessions`` closes with a non-1000 code so the sessions
        stay resumable, and writes them to ``state_file``."""
        code = 4901 if keep_sessions else 1000
        await asyncio.gather(*(s.close(code) for s in self.shards.values()), return_exceptions=True)
        if self.state_file:
            if keep_sessions:
                self.save_state(self.state_file)
            else:
                save_sessions(self.state_file, [])
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
