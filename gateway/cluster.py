"""The lease loop: which shards this process runs, among every process sharing the leases.

:class:`ShardCluster` drives a :class:`~gateway.manager.ShardManager` through
``add_shard`` / ``remove_shard`` from :class:`~gateway.protocols.ShardLeases`:

- every ``interval`` (default ``ttl / 3``) it renews the leases it holds; a shard whose renew
  was refused is disconnected at once, and a watchdog (independent of the ticks, which a
  Redis that does not answer slows down) disconnects one whose lease it could not confirm for
  so long that it is within ``min(interval, ttl / 4)`` of a possible expiry;
- it takes free leases up to its fair share (``ceil(wanted / live members)``), starting at a
  point of the id range given by its rank among the members, so processes started together
  split the range instead of racing for the same ids; a shard that stays free for
  ``grace`` ticks is taken whatever the share (a dead owner's shards: failover);
- when it holds more than its share while another member holds less and nothing is free, it
  hands one shard over per ``rebalance_every`` ticks (close resumably, flush, release);
- :meth:`stop` hands everything over (close resumably, flush the sink, release), so the others
  take over at their next tick instead of after the TTL.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Callable, Iterable, Optional

from .protocols import ShardLeases

__all__ = ["ShardCluster"]

log = logging.getLogger("gateway.cluster")


def _owner_of(token: Optional[str]) -> Optional[str]:
    return token.rsplit(":", 1)[0] if token else None


class ShardCluster:
    def __init__(self, manager: Any, leases: ShardLeases, shard_ids: Iterable[int], *,
                 members: Any = None, sink: Any = None, session_store: Any = None,
                 interval: Optional[float] = None, grace: int = 2, rebalance_every: int = 3,
                 renew_timeout: Optional[float] = None,
                 report: Optional[Callable[[str], None]] = None) -> None:
        self.manager = manager
        self.leases = leases
        self.shard_ids = sorted(set(shard_ids))
        self.members = members
        self.sink = sink
        self.session_store = session_store
        self.interval = interval if interval is not None else leases.ttl / 3
        self.grace = grace
        self.rebalance_every = rebalance_every
        self.renew_timeout = renew_timeout if renew_timeout is not None else self.interval / 2
        # one failed renew is tolerated; after the second the shard stops this long before
        # its lease could expire (6 s TTL: at 1.5 s)
        self.safety = min(self.interval, leases.ttl / 4)
        self.report = report or (lambda line: log.info("%s", line))
        self.running: set[int] = set()
        self._sticky: set[int] = set()      # taken by grace: never handed over by rebalancing
        self._free_ticks: dict[int, int] = {}
        self._last_members: list[str] = [leases.owner]
        self._ticks = 0
        self._last_rebalance = 0
        self._handed: set[int] = set()       # released by rebalancing, not yet seen elsewhere
        self._rebalance_off_until = 0        # tick; a handed shard came back: nobody wanted it
        self._rebalance_backoff = 20
        self._stop = asyncio.Event()
        self._dropping: set[int] = set()
        self._lock = asyncio.Lock()
        self.takeovers = 0
        self.losses = 0
        self.history: list[tuple[float, str, int]] = []  # (time, "take"/"drop"/"lost", shard)

    # ------------------------------------------------------------------ public
    async def run(self) -> None:
        """Tick until :meth:`stop`.  The first tick waits one interval after joining, so
        processes started together see each other before they take shards."""
        await self._heartbeat()
        watchdog = asyncio.ensure_future(self._watchdog())
        try:
            await self._loop()
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` or until :meth:`stop`.  asyncio.wait, not wait_for: on Python < 3.12
        wait_for can swallow a cancellation that races its timeout."""
        waiter = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({waiter}, timeout=delay)
        finally:
            waiter.cancel()

    async def _loop(self) -> None:
        await self._pause(self.interval)
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                async with self._lock:
                    await self.tick()
            except Exception as exc:  # Redis down: the lease deadline check still ran
                log.warning("cluster tick failed: %r", exc)
            await self._pause(max(0.0, self.interval - (time.monotonic() - t0)))

    async def stop(self, handover: bool = True, timeout: float = 5.0) -> None:
        """Stop ticking; with ``handover`` close every shard resumably, flush what the sink
        still holds for it, and release its lease (the others take over at once)."""
        self._stop.set()
        async with self._lock:
            ids = sorted(self.running)
            if handover:
                await asyncio.gather(*(self._drop(i, "stopping", release=True, timeout=timeout)
                                       for i in ids), return_exceptions=True)
            if self.members is not None:
                try:
                    await self.members.leave()
                except Exception:
                    pass

    def on_fenced(self, shard_id: int, token: Optional[str] = None) -> None:
        """The sink found the lease ``token`` gone: disconnect at once (unless the shard runs
        under a newer lease by now)."""
        if token is not None and self.leases.token(shard_id) not in (None, token):
            return
        if shard_id in self.running and shard_id not in self._dropping:
            asyncio.ensure_future(self._lost(shard_id, "write fenced: lease lost"))

    # ------------------------------------------------------------------ one tick
    async def tick(self) -> None:
        self._ticks += 1
        await self._renew()
        members = await self._heartbeat()
        wanted = self.shard_ids
        n = max(1, len(members))
        share = math.ceil(len(wanted) / n)
        owners = await self.leases.owners(wanted)
        held = set(self.leases.held())
        free = [i for i in wanted if owners.get(i) is None and i not in held]
        for i in list(self._free_ticks):
            if i not in free:
                del self._free_ticks[i]
        for i in free:
            self._free_ticks[i] = self._free_ticks.get(i, 0) + 1
        try:
            rank = members.index(self.leases.owner)
        except ValueError:
            rank = 0
        start = (rank * len(wanted)) // n
        order = wanted[start:] + wanted[:start]
        free_set = set(free)
        for i in order:
            if i not in free_set or self._stop.is_set():
                continue
            by_grace = self._free_ticks.get(i, 0) > self.grace
            if len(self.running) >= share and not by_grace:
                continue
            if await self.leases.try_acquire(i):
                if by_grace and len(self.running) >= share:
                    self._sticky.add(i)
                if i in self._handed:
                    # we handed it over and nobody took it (their ranges differ from ours)
                    self._rebalance_off_until = self._ticks + self._rebalance_backoff
                    self._rebalance_backoff *= 2
                    self._handed.clear()
                await self._take(i, owners.get(i))
        self._handed -= {i for i in wanted if owners.get(i) is not None}
        # rebalance: give one shard to a member under its share
        if free or len(self.running) <= share:
            return
        if (self._ticks - self._last_rebalance < self.rebalance_every
                or self._ticks < self._rebalance_off_until):
            return
        counts = {m: 0 for m in members}
        for i, tok in owners.items():
            o = _owner_of(tok)
            if o in counts:
                counts[o] += 1
        if not any(c < share and m != self.leases.owner for m, c in counts.items()):
            return
        candidates = [i for i in reversed(order) if i in self.running and i not in self._sticky]
        if candidates:
            self._last_rebalance = self._ticks
            self._handed.add(candidates[0])
            await self._drop(candidates[0], "rebalance", release=True)

    async def _heartbeat(self) -> list[str]:
        if self.members is None:
            return [self.leases.owner]
        try:
            self._last_members = await asyncio.wait_for(self.members.heartbeat(),
                                                        self.renew_timeout)
        except Exception as exc:
            log.warning("cluster: members heartbeat failed: %r", exc)
        return self._last_members

    async def _renew(self) -> None:
        held = sorted(self.leases.held())
        if held:
            try:
                still = await asyncio.wait_for(self.leases.renew(held), self.renew_timeout)
            except Exception as exc:
                log.warning("cluster: renewing %d lease(s) failed: %r", len(held), exc)
                still = None
            if still is not None:
                for i in held:
                    if i not in still:
                        await self._lost(i, "lease lost (renew refused)")
        for i in sorted(self.running - set(self.leases.held())):
            if i not in self._dropping:
                await self._lost(i, "lease lost")

    async def _watchdog(self) -> None:
        """Independent of how long a tick takes (Redis timing out): a shard whose lease was
        not confirmed for so long that it is within ``safety`` of a possible expiry is
        disconnected now, before anyone else could take the lease."""
        valid_until = getattr(self.leases, "valid_until", None)
        if valid_until is None:
            return
        forget = getattr(self.leases, "forget", None)
        step = min(0.05, self.interval / 10)
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            for i in sorted(self.leases.held()):
                if i in self.running and valid_until(i) - now <= self.safety:
                    if forget is not None:
                        forget(i)
                    await self._lost(i, "lease not renewed in time")

    # ------------------------------------------------------------------ changes
    async def _take(self, shard_id: int, previous: Optional[str]) -> None:
        how = "identify"
        if self.session_store is not None:
            try:
                count = self.manager.shard_count
                state = await self.session_store.load(shard_id, count)
                if state is not None and state.session_id:
                    how = f"resume session {state.session_id} from s={state.seq}"
            except Exception:
                pass
        self.running.add(shard_id)
        self.history.append((time.monotonic(), "take", shard_id))
        if how != "identify":
            self.takeovers += 1
            self.report(f"[bridge] takeover shard {shard_id}: {how}")
        else:
            self.report(f"[bridge] acquired shard {shard_id}: {how}")
        try:
            await self.manager.add_shard(shard_id)
        except Exception as exc:
            self.report(f"[bridge] shard {shard_id}: cannot start: {exc!r}")
            self.running.discard(shard_id)
            await self.leases.release(shard_id)

    async def _lost(self, shard_id: int, why: str) -> None:
        if shard_id not in self.running or shard_id in self._dropping:
            return
        self.losses += 1
        self.history.append((time.monotonic(), "lost", shard_id))
        await self._drop(shard_id, why, release=False)

    async def _drop(self, shard_id: int, why: str, *, release: bool,
                    timeout: float = 2.0) -> None:
        if shard_id in self._dropping:
            return
        self._dropping.add(shard_id)
        try:
            self.report(f"[bridge] {'released' if release else 'lost'} shard {shard_id} ({why})")
            try:
                await self.manager.remove_shard(shard_id, resumable=True)
            except Exception as exc:
                log.warning("cluster: stopping shard %d failed: %r", shard_id, exc)
            self.running.discard(shard_id)
            self._sticky.discard(shard_id)
            if release:
                if self.sink is not None and hasattr(self.sink, "flush_shard"):
                    await self.sink.flush_shard(shard_id, timeout)
                try:
                    await asyncio.wait_for(self.leases.release(shard_id), timeout)
                except Exception as exc:
                    log.warning("cluster: releasing shard %d failed: %r", shard_id, exc)
                self.history.append((time.monotonic(), "drop", shard_id))
            else:
                forget = getattr(self.leases, "forget", None)
                if forget is not None:
                    forget(shard_id)
        finally:
            self._dropping.discard(shard_id)
