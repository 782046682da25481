"""Rate limiting and backoff, with injectable clocks so tests need no real time."""
from __future__ import annotations

import asyncio
import collections
import random
import time
import logging
from typing import Any, Awaitable, Callable, Mapping

from .protocols import LimitsRefresher

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

__all__ = ["SendLimiter", "MemoryIdentifyQueue", "IdentifyLimiter", "Backoff"]

log = logging.getLogger("gateway.ratelimit")


class SendLimiter:
    """At most ``limit`` payloads per ``per`` seconds on one connection (Discord: 120 / 60 s,
    else close 4008).  ``reserved`` of them are kept for heartbeats: ordinary payloads wait
    once ``limit - reserved`` were sent in the window; priority payloads (heartbeats,
    IDENTIFY/RESUME) never wait (they are still counted)."""

    def __init__(self, limit: int = 120, per: float = 60.0, reserved: int = 10, *,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        if not 0 <= reserved < limit:
            raise ValueError("reserved must be in [0, limit)")
        self.limit = limit
        self.per = per
        self.reserved = reserved
        self.clock = clock
        self.sleep = sleep
        self._times: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()
        self.waited = 0.0  # total seconds ordinary sends spent waiting

    def _prune(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.per:
            self._times.popleft()

    @property
    def used(self) -> int:
        self._prune(self.clock())
        return len(self._times)

    def reset(self) -> None:
        """A new connection starts a new window."""
        self._times.clear()

    def acquire_priority(self) -> None:
        self._prune(self.clock())
        self._times.append(self.clock())

    async def acquire(self) -> None:
        """Wait until an ordinary payload may be sent, then count it."""
        async with self._lock:  # FIFO among ordinary senders
            budget = self.limit - self.reserved
            while True:
                now = self.clock()
                self._prune(now)
                if len(self._times) < budget:
                    self._times.append(now)
                    return
                # the oldest entries must leave the window before one more fits
                excess = len(self._times) - budget
                delay = self._times[excess] + self.per - now if excess < len(self._times) \
                    else self._times[0] + self.per - now
                delay = max(delay, 0.0)
                self.waited += delay
                await self.sleep(delay if delay > 0 else 0.001)


class MemoryIdentifyQueue:
    """The in-process :class:`~gateway.protocols.IdentifyQueue`.

    IDENTIFY concurrency: shards share a bucket by ``shard_id % max_concurrency`` and each
    bucket allows one IDENTIFY per ``period`` (5 s).  The daily budget: after
    :meth:`configure` with ``/gateway/bot``'s ``session_start_limit`` every IDENTIFY counts
    against ``remaining``; when it is used up the limit is re-read (``refresh``) and, if it is
    still 0, :meth:`acquire` waits until ``reset_after`` has passed (``on_wait(seconds)`` is
    called first, and a warning is logged).  Every wait is cancellable."""

    def __init__(self, max_concurrency: int = 1, period: float = 5.0, *,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep,
                 on_wait: Callable[[float], None] | None = None) -> None:
        self.max_concurrency = max(1, int(max_concurrency))
        self.period = period
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self.total: int | None = None
        self.remaining: int | None = None  # None: not configured, no budget is enforced
        self._reset_at: float | None = None
        self._refresh: LimitsRefresher | None = None
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._budget_lock = asyncio.Lock()
        self.log: list[tuple[float, int, int]] = []  # (time, bucket, shard_id) per grant
        self.waits: list[float] = []  # budget waits, seconds

    def bucket(self, shard_id: int) -> int:
        return shard_id % self.max_concurrency

    def _apply(self, limits: Mapping[str, Any]) -> None:
        if limits.get("max_concurrency"):
            self.max_concurrency = max(1, int(limits["max_concurrency"]))
        if isinstance(limits.get("total"), int):
            self.total = limits["total"]
        if isinstance(limits.get("remaining"), int):
            self.remaining = limits["remaining"]
        reset_after = limits.get("reset_after")
        if isinstance(reset_after, (int, float)):
            self._reset_at = self.clock() + float(reset_after) / 1000.0

    async def configure(self, session_start_limit: Mapping[str, Any],
                        refresh: LimitsRefresher | None = None) -> None:
        self._apply(session_start_limit or {})
        if refresh is not None:
            self._refresh = refresh

    async def _take_budget(self) -> None:
        async with self._budget_lock:
            if self.remaining is None:
                return
            if self.remaining <= 0 and self._refresh is not None:
                try:
                    self._apply(await self._refresh())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the wait below is the safe fallback
                    log.warning("re-reading session_start_limit failed: %s", exc)
            if self.remaining <= 0:
                wait = max(0.0, (self._reset_at or self.clock()) - self.clock())
                log.warning("session_start_limit exhausted (remaining 0): waiting %.1fs for "
                            "the limit to reset before the next IDENTIFY", wait)
                if self.on_wait is not None:
                    self.on_wait(wait)
                self.waits.append(wait)
                await self.sleep(wait)
                self.remaining = self.total if self.total else 1
                self._reset_at = None
            self.remaining -= 1

    async def acquire(self, shard_id: int) -> None:
        key = self.bucket(shard_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            last = self._last.get(key)
            if last is not None:
                while True:
                    wait = last + self.period - self.clock()
                    if wait <= 0:
                        break
                    await self.sleep(wait)
            await self._take_budget()
            now = self.clock()
            self._last[key] = now
            self.log.append((now, key, shard_id))


#: the name before the identify queue protocol existed
IdentifyLimiter = MemoryIdentifyQueue


class Backoff:
    """Exponential backoff with full jitter and a cap.  The first retry after a stable
    connection is immediate; the n-th consecutive one waits ``uniform(0, min(cap, base*2**(n-2)))``
    (at least ``base / 2`` so a flapping server is never hammered)."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, *,
                 rng: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self.rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        if self.failures == 1:
            return 0.0
        ceiling = min(self.cap, self.base * 2 ** (self.failures - 2))
        return min(self.cap, max(self.base / 2, ceiling * self.rng()))

    def reset(self) -> None:
        self.failures = 0
