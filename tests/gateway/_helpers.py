"""Helpers for the gateway tests: a simulator on 127.0.0.1 with a short heartbeat interval and
shards whose delays (op 9 wait, backoff, identify spacing) are injected to be tiny."""
from __future__ import annotations

import asyncio
from typing import Any

from gateway import Backoff, IdentifyLimiter, Shard
from gateway.testing import GatewaySimulator

INTERVAL = 0.1  # heartbeat interval in seconds for most tests


class Recorder:
    """Collects every dispatch and lifecycle event a shard delivers."""

    def __init__(self, shard: Shard) -> None:
        self.shard = shard
        self.dispatches: list[Any] = []
        self.lifecycle: list[Any] = []
        shard.on("*", self.dispatches.append)
        for name in ("connected", "ready", "resumed", "disconnected", "reconnecting",
                     "invalid_session", "zombie", "loop_blocked", "closed"):
            shard.on(name, self.lifecycle.append)

    def names(self) -> list[str]:
        return [e.name for e in self.lifecycle]

    def seqs(self) -> list[int]:
        return [e.s for e in self.dispatches]

    def pairs(self) -> list[tuple[int, str]]:
        return [(e.s, e.t) for e in self.dispatches]


def fast_shard(sim: GatewaySimulator, **kw: Any) -> Shard:
    kw.setdefault("compress", "zlib-stream")
    kw.setdefault("invalid_session_delay", lambda: 0.01)
    kw.setdefault("backoff", Backoff(base=0.01, cap=0.05))
    kw.setdefault("identify_limiter", IdentifyLimiter(1, period=0.0))
    kw.setdefault("close_timeout", 1.0)
    kw.setdefault("hello_timeout", 5.0)
    kw.setdefault("min_connect_interval", 0.0)
    return Shard(sim.token, api_url=sim.api_url, **kw)


def session_log(sim: GatewaySimulator, shard_id: int = 0) -> list[tuple[int, str]]:
    s = sim.session_for_shard(shard_id)
    assert s is not None
    return [(e.seq, e.t) for e in s.events]


async def caught_up(sim: GatewaySimulator, shard: Shard, timeout: float = 5.0) -> None:
    """Wait until the shard has seen the last event of its current session."""
    def done() -> bool:
        s = sim.sessions.get(shard.session_id or "")
        return s is not None and shard.seq == s.seq
    await sim.wait_for(done, timeout, "shard caught up with its session")
    await asyncio.sleep(0.02)  # let the delivery task run


