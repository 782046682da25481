"""Heartbeats and zombie detection for one connection, and the event-loop watchdog.

:class:`Heartbeat` sends a beat after ``interval * jitter`` and then every ``interval`` on an
absolute schedule; a beat due while the previous one is still unacknowledged means a zombie
connection (``on_zombie`` is called once and the loop ends).  :class:`LoopWatchdog` notices a
blocked event loop (a stall longer than a quarter of the interval).
"""
from __future__ import annotations

import asyncio
import math
import time
from typing import Awaitable, Callable

__all__ = ["Heartbeat", "LoopWatchdog", "validate_interval"]


def validate_interval(value: object, lo: float, hi: float) -> float:
    """HELLO's ``heartbeat_interval`` (ms) as seconds; ``ValueError`` unless it is a finite
    number with ``lo <= seconds <= hi``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"heartbeat_interval is not a number: {value!r}")
    seconds = float(value) / 1000.0
    if not math.isfinite(seconds) or not lo <= seconds <= hi:
        raise ValueError(f"heartbeat_interval {value!r} ms is outside {lo * 1000:g}..{hi * 1000:g} ms")
    return seconds


class Heartbeat:
    """The heartbeat state of one connection."""

    def __init__(self, interval: float, send: Callable[[], Awaitable[None]],
                 on_zombie: Callable[[], None], jitter: float) -> None:
        self.interval = interval
        self._send = send
        self._on_zombie = on_zombie
        self._jitter = jitter
        self.ack_pending = False
        self.acks = 0                      # ACKs on this connection
        self.last_beat: float | None = None
        self.latency: float | None = None  # last round trip, seconds

    async def beat(self) -> None:
        """Send one heartbeat now (also the answer to op 1)."""
        self.last_beat = time.monotonic()
        await self._send()

    def ack(self) -> float | None:
        """An ACK arrived; returns the round trip when a beat was outstanding."""
        self.ack_pending = False
        self.acks += 1
        if self.last_beat is None:
            return None
        self.latency = time.monotonic() - self.last_beat
        return self.latency

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.interval * self._jitter
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self.ack_pending:
                self._on_zombie()
                return
            self.ack_pending = True
            await self.beat()
            next_at += self.interval
            now = loop.time()
            if next_at < now:  # late by more than an interval: do not burst
                next_at = now + self.interval


class LoopWatchdog:
    """Calls ``on_block(lag)`` when the event loop stalled longer than ``threshold``."""

    def __init__(self, threshold: float, on_block: Callable[[float], None]) -> None:
        self.threshold = threshold
        self._on_block = on_block

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # a block of `threshold` shows as a lag of at least threshold - tick
        tick = max(0.01, min(1.0, self.threshold / 4))
        while True:
            start = loop.time()
            await asyncio.sleep(tick)
            lag = loop.time() - start - tick
            if lag > self.threshold:
                self._on_block(lag)
