"""Rate limiting and backoff, with injectable clocks so tests need no real time."""
from __future__ import annotations

import asyncio
import collections
import random
import time
from typing import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

__all__ = ["SendLimiter", "IdentifyLimiter", "Backoff"]


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


class IdentifyLimiter:
    """IDENTIFY concurrency: shards share a bucket by ``shard_id % max_concurrency`` and each
    bucket allows one IDENTIFY per ``period`` (5 s)."""

    def __init__(self, max_concurrency: int = 1, period: float = 5.0, *,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.max_concurrency = max(1, int(max_concurrency))
        self.period = period
        self.clock = clock
        self.sleep = sleep
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.log: list[tuple[float, int, int]] = []  # (time, bucket, shard_id) per grant

    def bucket(self, shard_id: int) -> int:
        return shard_id % self.max_concurrency

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
            now = self.clock()
            self._last[key] = now
            self.log.append((now, key, shard_id))


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
