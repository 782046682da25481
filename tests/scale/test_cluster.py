"""The lease loop with a real Redis, driving a recording stand-in for ShardManager (our own
``add_shard``/``remove_shard`` interface; the Redis behaviour is real)."""
from __future__ import annotations

import asyncio
import time

from gateway.cluster import ShardCluster
from gateway.redis import RedisMembers, RedisShardLeases, connect


class Recorder:
    """What the cluster asks of a ShardManager, recorded with times."""

    def __init__(self, name: str, log: list) -> None:
        self.name = name
        self.shard_count = 8
        self.running: set[int] = set()
        self.log = log

    async def add_shard(self, i: int) -> None:
        assert i not in self.running
        self.running.add(i)
        self.log.append((time.monotonic(), self.name, "add", i))

    async def remove_shard(self, i: int, resumable: bool = True) -> None:
        self.running.discard(i)
        self.log.append((time.monotonic(), self.name, "remove", i))


def _never_twice(log: list) -> None:
    """Replay the log: no shard may run in two places at once."""
    where: dict[int, str] = {}
    for _, name, what, i in sorted(log):
        if what == "add":
            assert i not in where, f"shard {i} added to {name} while running in {where[i]}"
            where[i] = name
        else:
            assert where.pop(i) == name


async def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.02)


async def _node(url, name, log, ttl=0.6, ids=range(8)):
    r = connect(url, timeout=0.5)
    leases = RedisShardLeases(r, ttl=ttl, owner=name)
    members = RedisMembers(r, name, ttl=ttl)
    mgr = Recorder(name, log)
    cl = ShardCluster(mgr, leases, ids, members=members, report=lambda line: None)
    return r, mgr, cl


async def test_split_handover_and_failover(redis_server, redis):
    log: list = []
    nodes = [await _node(redis_server.url, n, log) for n in ("a", "b")]
    tasks = [asyncio.ensure_future(cl.run()) for _, _, cl in nodes]
    try:
        (_, ma, ca), (_, mb, cb) = nodes
        await _wait(lambda: len(ma.running) + len(mb.running) == 8, 10, "8 shards running")
        await _wait(lambda: len(ma.running) == len(mb.running) == 4, 10, "4 and 4")
        # graceful stop of a: b takes everything at once (no TTL wait)
        t0 = time.monotonic()
        await ca.stop(handover=True)
        tasks[0].cancel()
        assert ma.running == set()
        await _wait(lambda: len(mb.running) == 8, 5, "b runs all")
        assert time.monotonic() - t0 < 0.6 * 2 + 2.5
        # a new node joins: rebalancing hands it shards, one at a time, till 4 and 4
        nodes.append(await _node(redis_server.url, "c", log))
        _, mc, cc = nodes[2]
        tasks.append(asyncio.ensure_future(cc.run()))
        await _wait(lambda: len(mc.running) == 4 and len(mb.running) == 4, 15, "rebalanced")
        # c dies without a word (its loop stops, nothing is released): b takes over after TTL
        tasks[2].cancel()
        await asyncio.gather(tasks[2], return_exceptions=True)
        dead = set(mc.running)
        t_dead = time.monotonic()
        await _wait(lambda: dead <= mb.running, 10, "failover to b")
        took = time.monotonic() - t_dead
        assert 0.6 * 0.5 < took < 0.6 + 3 * 0.2 + 4.0, took  # not before the TTL could end
        mc.running.clear()  # the dead process's shards are gone with it (for the replay below)
        log.append((t_dead, "c", "died", -1))
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for r, _, _ in nodes:
            await r.aclose()
    # replay: c's death ends its shards at t_dead
    fixed = []
    for ev in sorted(log):
        if ev[2] == "died":
            for i in dead:
                fixed.append((ev[0], "c", "remove", i))
        else:
            fixed.append(ev)
    _never_twice(fixed)


async def test_overlapping_ranges_cover_everything_once(redis_server, redis):
    log: list = []
    a = await _node(redis_server.url, "a", log, ids=range(0, 6))
    b = await _node(redis_server.url, "b", log, ids=range(2, 8))
    tasks = [asyncio.ensure_future(x[2].run()) for x in (a, b)]
    try:
        await _wait(lambda: a[1].running | b[1].running == set(range(8))
                    and not a[1].running & b[1].running, 10, "all 8, none twice")
        assert a[1].running <= set(range(6)) and b[1].running <= set(range(2, 8))
        # settles: no handover ping-pong between the two (quiet for 1.5 s within 15 s)
        deadline = time.monotonic() + 15
        while True:
            last_move = max([e[0] for e in log if e[2] == "remove"], default=0.0)
            if time.monotonic() - last_move >= 1.5:
                break
            assert time.monotonic() < deadline, log
            await asyncio.sleep(0.1)
        assert a[1].running | b[1].running == set(range(8)) and not a[1].running & b[1].running
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for r, _, _ in (a, b):
            await r.aclose()
    _never_twice(log)


async def test_redis_unreachable_drops_shards_before_the_lease_can_expire(redis_server, redis):
    log: list = []
    r, mgr, cl = await _node(redis_server.url, "a", log, ttl=1.5, ids=range(2))
    task = asyncio.ensure_future(cl.run())
    try:
        await _wait(lambda: len(mgr.running) == 2, 10, "2 running")
        leases = cl.leases
        redis_server.pause()
        try:
            # the latest time up to which Redis certainly kept the leases (send time + TTL)
            sure_until = 0.0
            deadline = time.monotonic() + 5
            while mgr.running:
                assert time.monotonic() < deadline, "shards not dropped while Redis is paused"
                sure_until = max([sure_until] + [leases.valid_until(i) for i in leases.held()])
                await asyncio.sleep(0.01)
            dropped_at = time.monotonic()
            assert dropped_at < sure_until  # stopped before anyone else could take them
        finally:
            redis_server.resume()
        await _wait(lambda: len(mgr.running) == 2, 10, "taken again after Redis came back")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await r.aclose()
