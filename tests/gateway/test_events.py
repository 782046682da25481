"""Handlers, async iteration, lifecycle events, metrics and reconnect backoff."""
from __future__ import annotations

import asyncio

import pytest

from tests.gateway._helpers import Recorder, caught_up, session_log

from gateway import Backoff, Shard, SubscriptionOverflow
from gateway.subscriptions import DEFAULT_MAX_PENDING
from gateway.testing import _free_port


async def test_handlers_sync_async_and_wildcard(sim, shard_factory):
    shard = shard_factory()
    sync_seen, async_seen, all_seen = [], [], []
    shard.on("MESSAGE_CREATE", lambda ev: sync_seen.append(ev.d["i"]))

    @shard.on("MESSAGE_CREATE")
    async def handler(ev):
        await asyncio.sleep(0)
        async_seen.append(ev.d["i"])

    shard.on("*", lambda ev: all_seen.append(ev.t))
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(5):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
        sim.dispatch("TYPING_START", {"i": i})
    await caught_up(sim, shard)
    assert sync_seen == list(range(5)) and sorted(async_seen) == list(range(5))
    assert all_seen == [t for _, t in session_log(sim)]
    shard.off("MESSAGE_CREATE")
    sim.dispatch("MESSAGE_CREATE", {"i": 99})
    await caught_up(sim, shard)
    assert 99 not in sync_seen


async def test_async_iteration(sim, shard_factory):
    shard = shard_factory()
    got = []

    async def consume():
        async for ev in shard.events("MESSAGE_CREATE"):
            got.append(ev.d["i"])
            if len(got) == 3:
                break
    task = asyncio.ensure_future(consume())
    everything = shard.events(lifecycle=True)
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(3):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
        sim.dispatch("TYPING_START", {})
    await asyncio.wait_for(task, 3)
    assert got == [0, 1, 2]
    await caught_up(sim, shard)
    await shard.close()
    items = [ev async for ev in everything]  # ends when the shard stops
    names = [getattr(ev, "name", None) or ev.t for ev in items]
    assert names[:2] == ["connected", "READY"] or names[:3] == ["connected", "READY", "ready"]
    assert names[-1] == "closed"
    assert names.count("MESSAGE_CREATE") == 3


async def test_an_unread_iterator_is_bounded_and_says_so(sim, shard_factory):
    shard = shard_factory()
    handled = []
    shard.on("MESSAGE_CREATE", lambda ev: handled.append(ev.d["i"]))
    slow = shard.events("MESSAGE_CREATE", max_pending=5)
    unbounded = shard.events("MESSAGE_CREATE", max_pending=None)
    assert shard.events().max_pending == DEFAULT_MAX_PENDING
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(20):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    await caught_up(sim, shard)
    assert handled == list(range(20))  # handlers do not depend on iterators
    assert slow.queue.qsize() <= 6  # five events and the overflow: memory stays bounded
    taken = []
    with pytest.raises(SubscriptionOverflow) as ei:
        async for ev in slow:
            taken.append(ev.d["i"])
    assert taken == [0, 1, 2, 3, 4]  # what it took, in order, before it says it overflowed
    assert ei.value.max_pending == 5 and ei.value.last.d["i"] == 4
    assert "after <GatewayEvent shard=0 t=MESSAGE_CREATE" in str(ei.value)
    sim.dispatch("MESSAGE_CREATE", {"i": 20})
    await caught_up(sim, shard)
    with pytest.raises(StopAsyncIteration):  # an overflowed iterator stays ended
        await slow.__anext__()
    await shard.close()
    assert [ev.d["i"] async for ev in unbounded] == list(range(21))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_max_pending_must_be_a_positive_int(bad):
    from gateway.subscriptions import Subscription
    with pytest.raises(ValueError):
        Subscription(None, False, bad)


async def test_lifecycle_sequence_on_reconnect(sim, shard_factory):
    shard = shard_factory()
    rec = Recorder(shard)
    shard.start()
    await shard.wait_until_ready(3)
    await sim.send_reconnect()
    await sim.wait_ready(2)
    await caught_up(sim, shard)
    names = rec.names()
    assert names[:2] == ["connected", "ready"]
    assert names[2:6] == ["disconnected", "reconnecting", "connected", "resumed"]
    disc = rec.lifecycle[2]
    assert disc.code == 4901 and disc.by == "client"
    assert rec.lifecycle[3].resume is True
    await shard.close()
    assert rec.names()[-2:] == ["disconnected", "closed"]
    assert sim.connections[-1].client_close_code == 1000  # close() ends the session


async def test_metrics(sim, shard_factory):
    shard = shard_factory(compress="zlib-stream")
    shard.start()
    await shard.wait_until_ready(3)
    for i in range(50):
        sim.dispatch("MESSAGE_CREATE", {"content": "hello world " * 20, "i": i})
    await caught_up(sim, shard)
    await sim.send_reconnect()
    await sim.wait_ready(2)
    await caught_up(sim, shard)
    m = shard.snapshot_metrics()
    assert m.reconnects == 1 and m.resumes == 1 and m.identifies == 1 and m.resume_attempts == 1
    assert m.dispatches == len(session_log(sim))
    assert m.payloads_in >= m.dispatches and m.bytes_in > 0
    assert m.compression_ratio is not None and m.compression_ratio > 2
    assert m.payloads_out >= 2 and m.bytes_out > 0


async def test_backoff_grows_while_failing_and_resets_after_stable_connection(sim):
    dead = f"ws://127.0.0.1:{_free_port()}/gateway"
    shard = Shard(sim.token, gateway_url=dead, compress="zlib-stream",
                  backoff=Backoff(base=0.02, cap=0.08, rng=lambda: 1.0), rng=lambda: 0.0,
                  min_connect_interval=0.0)
    delays = []
    shard.on("reconnecting", lambda ev: delays.append(ev.delay))
    shard.start()
    try:
        await sim.wait_for(lambda: len(delays) >= 6, 5)
        assert delays[:6] == [0.0, 0.02, 0.04, 0.08, 0.08, 0.08]
        shard.gateway_url = sim.gateway_url  # the gateway comes back
        await shard.wait_until_ready(3)
        acks = shard.metrics.heartbeat_acks  # stable = an ACK *after* the session started
        await sim.wait_for(lambda: shard.metrics.heartbeat_acks > acks, 2)
        n = len(delays)
        await sim.close(4000)
        await sim.wait_ready(2)
        assert delays[n] == 0.0  # reset: the connection was stable
    finally:
        await shard.close()


async def test_cancelling_run_closes_the_connection(sim, shard_factory):
    shard = shard_factory()
    task = shard.start()
    await shard.wait_until_ready(3)
    conn = sim.latest
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await sim.wait_for(lambda: not conn.open, 2, "connection closed")
    assert conn.client_close_code not in (None, 1000)  # resumable close, not abandoned
    assert not shard._conn_tasks and not shard.running


async def test_decoder_view_is_safe_and_state_is_explicit(sim, shard_factory):
    from gateway import ShardState
    sim.replay_overlap = 3  # replays repeat events the shard already has
    shard = shard_factory()
    assert shard.state is ShardState.IDLE
    seen = []
    shard.decoder.on("MESSAGE_CREATE", lambda ev: seen.append(ev.s))  # de-duplicated
    for name in ("feed", "reset"):
        try:
            getattr(shard.decoder, name)
        except AttributeError:
            pass
        else:
            raise AssertionError(f"shard.decoder.{name} must not be reachable")
    shard.start()
    await shard.wait_until_ready(3)
    assert shard.state is ShardState.ACTIVE
    for i in range(5):
        sim.dispatch("MESSAGE_CREATE", {"i": i})
    await caught_up(sim, shard)
    await sim.close(4000)  # RESUME replays 3 events already delivered
    await sim.wait_ready(2)
    sim.dispatch("MESSAGE_CREATE", {"i": 5})
    await caught_up(sim, shard)
    assert shard.metrics.duplicates >= 3
    want = [s for s, t in session_log(sim) if t == "MESSAGE_CREATE"]
    assert seen == want and len(seen) == 6
    assert shard.decoder.payloads > 0 and shard.decoder.seq == shard.seq
    await shard.close()
    assert shard.state is ShardState.STOPPED
