"""The Redis parts on their own, against a real redis-server (no shard involved)."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from gateway.protocols import DispatchRecord, EventSink, IdentifyQueue, SessionState, SessionStore, ShardLeases
from gateway.redis import (RedisConsumer, RedisEventSink, RedisIdentifyQueue, RedisMembers,
                           RedisSessionStore, RedisShardLeases, connect)


def test_protocols_are_implemented(redis):
    assert isinstance(RedisIdentifyQueue(redis), IdentifyQueue)
    assert isinstance(RedisSessionStore(redis), SessionStore)
    assert isinstance(RedisShardLeases(redis), ShardLeases)
    assert isinstance(RedisEventSink(redis), EventSink)


# ---------------------------------------------------------------------------- identify queue
async def test_identify_one_per_bucket_per_period_across_clients(redis_server, redis):
    other = connect(redis_server.url)  # a second "process": its own connection and holder
    try:
        period = 0.3
        qa = RedisIdentifyQueue(redis, period=period, margin=0.0)
        qb = RedisIdentifyQueue(other, period=period, margin=0.0)
        limits = {"remaining": 100, "total": 1000, "reset_after": 60_000, "max_concurrency": 2}
        await qa.configure(limits)
        await qb.configure(limits)
        assert qa.max_concurrency == qb.max_concurrency == 2
        times: dict[int, list[float]] = {0: [], 1: []}

        async def go(q, shard):
            await q.acquire(shard)
            times[q.bucket(shard)].append(time.monotonic())

        start = time.monotonic()
        await asyncio.gather(*(go(qa if i % 4 < 2 else qb, i) for i in range(8)))
        for b, ts in times.items():
            ts.sort()
            assert len(ts) == 4
            gaps = [y - x for x, y in zip(ts, ts[1:])]
            assert min(gaps) >= period - 0.02, (b, gaps)
        # the two buckets ran side by side, not one after the other
        assert max(max(ts) for ts in times.values()) - start < 4 * period + 0.5
        assert await qa.remaining() == 92  # 8 IDENTIFYs counted once each, across both clients
    finally:
        await other.aclose()


async def test_identify_budget_shared_min_and_refresh(redis):
    calls = []

    async def refresh():
        calls.append(time.monotonic())
        if len(calls) == 1:
            return {"remaining": 0, "total": 1000, "reset_after": 300, "max_concurrency": 1}
        return {"remaining": 5, "total": 1000, "reset_after": 60_000, "max_concurrency": 1}

    q = RedisIdentifyQueue(redis, period=0.01, margin=0.0)
    await q.configure({"remaining": 2, "total": 1000, "reset_after": 60_000}, refresh)
    # a second process reading /gateway/bot later sees a stale higher count: the lower one stays
    await RedisIdentifyQueue(redis).configure({"remaining": 10, "total": 1000, "reset_after": 60_000})
    assert await q.remaining() == 2
    await q.acquire(0)
    await q.acquire(0)
    assert await q.remaining() == 0 and not calls
    t0 = time.monotonic()
    await asyncio.wait_for(q.acquire(0), 10)
    # budget spent -> re-read (still 0) -> waited reset_after -> re-read (5) -> granted
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.29
    assert time.monotonic() - t0 >= 0.29
    assert await q.remaining() == 4


async def test_identify_acquire_is_cancellable(redis):
    q = RedisIdentifyQueue(redis, period=30, margin=0.0)
    await q.configure({"remaining": 10, "total": 10, "reset_after": 60_000})
    await q.acquire(0)
    task = asyncio.ensure_future(q.acquire(0))
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await q.remaining() == 9  # the cancelled one did not spend budget


# ---------------------------------------------------------------------------- leases
async def test_leases_exclusive_expire_and_compare_and_set(redis_server, redis):
    other = connect(redis_server.url)
    try:
        a = RedisShardLeases(redis, ttl=0.3)
        b = RedisShardLeases(other, ttl=0.3)
        assert a.owner != b.owner
        assert await a.try_acquire(1)
        assert not await b.try_acquire(1)
        assert await a.renew([1]) == {1}
        assert a.valid_until(1) > time.monotonic()
        await asyncio.sleep(0.45)  # not renewed: expired
        assert await b.try_acquire(1)
        # the old owner's renew and release must not touch b's lease
        assert await a.renew([1]) == set()
        assert a.token(1) is None and 1 not in a.held()
        a._tokens[1] = "stale-token"  # as if a's bookkeeping were late
        await a.release(1)
        owners = await b.owners([1, 2])
        assert owners[1] == b.token(1) and owners[2] is None
        await b.release(1)
        assert (await b.owners([1]))[1] is None
        # a new acquisition gets a new token (fencing), even by the same process
        assert await a.try_acquire(1)
        t1 = a.token(1)
        await a.release(1)
        assert await a.try_acquire(1)
        assert a.token(1) != t1
    finally:
        await other.aclose()


async def test_members(redis_server, redis):
    a = RedisMembers(redis, "a", ttl=0.3)
    b = RedisMembers(redis, "b", ttl=0.3)
    assert await a.heartbeat() == ["a"]
    assert await b.heartbeat() == ["a", "b"]
    await asyncio.sleep(0.4)
    assert await b.heartbeat() == ["b"]  # a stopped beating: gone
    await b.leave()
    assert await a.heartbeat() == ["a"]


# ---------------------------------------------------------------------------- session store
async def test_session_store_roundtrip_and_count_check(redis):
    st = RedisSessionStore(redis)
    assert await st.load(3, 16) is None
    await st.save(SessionState(3, 16, "abc", 42, "wss://resume"))
    assert await st.load(3, 16) == SessionState(3, 16, "abc", 42, "wss://resume")
    assert await st.load(3, 32) is None  # stored for another shard count
    await st.clear(3)
    assert await st.load(3, 16) is None


async def test_session_store_seq_from_sink_never_ahead_of_published(redis):
    leases = RedisShardLeases(redis, ttl=5)
    assert await leases.try_acquire(0)
    st = RedisSessionStore(redis, seq_from_sink=True, leases=leases)
    sink = RedisEventSink(redis, leases=leases)
    await st.save(SessionState(0, 1, "s1", 999, "wss://r"))  # the shard's local seq: ignored
    assert (await st.load(0, 1)).seq == 0  # nothing published yet: RESUME replays from start
    for s in range(1, 6):
        assert sink.offer(DispatchRecord(0, "s1", s, "MESSAGE_CREATE", b'{"n":%d}' % s))
    assert await sink.flush(5)
    await st.save(SessionState(0, 1, "s1", 999, "wss://r"))
    assert (await st.load(0, 1)).seq == 5
    # a new session: the published cursor of the old one does not apply to it
    await st.save(SessionState(0, 1, "s2", 1, "wss://r2"))
    assert await st.load(0, 1) == SessionState(0, 1, "s2", 0, "wss://r2")
    await sink.close()


async def test_session_store_fenced(redis_server, redis):
    other = connect(redis_server.url)
    try:
        mine = RedisShardLeases(redis, ttl=0.2)
        theirs = RedisShardLeases(other, ttl=5)
        st = RedisSessionStore(redis, leases=mine)
        assert await mine.try_acquire(0)
        await st.save(SessionState(0, 1, "old", 7, None))
        await asyncio.sleep(0.3)
        assert await theirs.try_acquire(0)
        await RedisSessionStore(other, leases=theirs).save(SessionState(0, 1, "new", 1, None))
        await st.save(SessionState(0, 1, "old", 8, None))  # stale owner: refused
        await st.clear(0)  # refused too
        assert st.refused == 2
        assert (await st.load(0, 1)).session_id == "new"
    finally:
        await other.aclose()


# ---------------------------------------------------------------------------- sink
def _fields(entry):
    return {k.decode(): v for k, v in entry[1].items()}


async def test_sink_publishes_raw_d_verbatim_and_moves_seq(redis):
    leases = RedisShardLeases(redis, ttl=5)
    await leases.try_acquire(2)
    sink = RedisEventSink(redis, prefix="p", leases=leases)
    raw = [b'{ "content" : "caf\\u00e9",  "n":1}', b'{"n":2,"x":[1,2 ,3]}', b'{"big":1e400}']
    for i, d in enumerate(raw, 1):
        assert sink.offer(DispatchRecord(2, "sess", i, "MESSAGE_CREATE" if i < 3 else "TYPING_START", d))
    assert await sink.flush(5)
    msgs = await redis.xrange("p:events:MESSAGE_CREATE")
    assert [_fields(m) for m in msgs] == [
        {"shard": b"2", "s": b"1", "session": b"sess", "d": raw[0]},
        {"shard": b"2", "s": b"2", "session": b"sess", "d": raw[1]}]
    typing = await redis.xrange("p:events:TYPING_START")
    assert _fields(typing[0])["d"] == raw[2]  # not even valid for orjson: never parsed
    assert await redis.hmget("p:session:2", "pub_session", "pub_seq") == [b"sess", b"3"]
    # a replay (same session, s not above the published seq) is not added twice
    assert sink.offer(DispatchRecord(2, "sess", 3, "TYPING_START", raw[2]))
    assert sink.offer(DispatchRecord(2, "sess", 4, "TYPING_START", b"{}"))
    assert await sink.flush(5)
    assert await redis.xlen("p:events:TYPING_START") == 2
    assert sink.skipped == 1 and sink.published == 4
    await sink.close()


async def test_sink_events_filter_still_moves_seq(redis):
    sink = RedisEventSink(redis, events={"MESSAGE_CREATE"})
    for i, t in enumerate(["MESSAGE_CREATE", "TYPING_START", "PRESENCE_UPDATE"], 1):
        sink.offer(DispatchRecord(0, "s", i, t, b"{}"))
    assert await sink.flush(5)
    assert await redis.exists("gateway:events:TYPING_START", "gateway:events:PRESENCE_UPDATE") == 0
    assert await redis.xlen("gateway:events:MESSAGE_CREATE") == 1
    assert await redis.hget("gateway:session:0", "pub_seq") == b"3"
    await sink.close()


async def test_sink_approximate_maxlen(redis):
    sink = RedisEventSink(redis, maxlen=100, batch=200)
    for i in range(1, 2001):
        assert sink.offer(DispatchRecord(0, "s", i, "E", b"1"))
        if i % 500 == 0:
            await sink.flush(10)
    assert await sink.flush(10)
    n = await redis.xlen("gateway:events:E")
    assert 100 <= n < 400, n  # approximate trimming drops whole macro nodes
    last = await redis.xrevrange("gateway:events:E", count=1)
    assert _fields(last[0])["s"] == b"2000"
    await sink.close()


async def test_sink_fenced_after_lease_lost(redis_server, redis):
    other = connect(redis_server.url)
    try:
        fenced = []
        leases = RedisShardLeases(redis, ttl=0.2)
        await leases.try_acquire(0)
        sink = RedisEventSink(redis, leases=leases, on_fenced=lambda i, tok: fenced.append(i))
        sink.offer(DispatchRecord(0, "s", 1, "E", b"1"))
        assert await sink.flush(5)
        await asyncio.sleep(0.3)
        theirs = RedisShardLeases(other, ttl=5)
        assert await theirs.try_acquire(0)  # taken over
        sink.offer(DispatchRecord(0, "s", 2, "E", b"2"))  # our local token is stale
        assert await sink.flush(5)
        assert fenced == [0] and sink.fenced == 1
        assert await redis.xlen("gateway:events:E") == 1
        assert await redis.hget("gateway:session:0", "pub_seq") == b"1"  # seq did not move
        await sink.close()
    finally:
        await other.aclose()


async def test_sink_bounded_buffer_while_redis_paused_then_exactly_once(redis_server, redis):
    sink = RedisEventSink(redis, max_events=50, batch=20)
    n = 0
    for _ in range(10):
        n += 1
        assert sink.offer(DispatchRecord(0, "s", n, "E", b'{"n":%d}' % n))
    assert await sink.flush(5)
    redis_server.pause()
    try:
        # writes stall (client timeout 1 s, then retried); offers fill the bound, then refuse
        while sink.offer(DispatchRecord(0, "s", n + 1, "E", b'{"n":%d}' % (n + 1))):
            n += 1
            await asyncio.sleep(0.001)
        assert sink.buffered == 50 and sink.refused == 1
        waiter = asyncio.ensure_future(sink.wait_writable())
        await asyncio.sleep(1.6)  # at least one write timed out while paused
        assert not waiter.done()
        assert sink.errors >= 1 and not sink.redis_ok
    finally:
        redis_server.resume()
    await asyncio.wait_for(waiter, 10)
    assert await sink.flush(10)
    entries = await redis.xrange("gateway:events:E")
    seqs = [int(_fields(e)["s"]) for e in entries]
    assert seqs == list(range(1, n + 1))  # nothing lost, nothing twice (retries were skipped)
    assert [orjson.loads(_fields(e)["d"])["n"] for e in entries] == seqs
    await sink.close()


# ---------------------------------------------------------------------------- consumer
async def _publish(redis, n, t="MESSAGE_CREATE", shard=0):
    sink = RedisEventSink(redis)
    for i in range(1, n + 1):
        sink.offer(DispatchRecord(shard, "sess", i, t, orjson.dumps({"i": i})))
    assert await sink.flush(5)
    await sink.close()


async def test_consumer_group_ack_after_handler_and_lazy_d(redis):
    await _publish(redis, 5)
    await _publish(redis, 2, t="TYPING_START", shard=1)
    c = RedisConsumer(redis, "g", name="c1", block=0.1)
    got = []
    async for ev in c:
        assert not ev.parsed  # d is parsed on first access only
        got.append((ev.t, ev.shard, ev.s, ev.d["i"]))
        assert ev.parsed
        # the event being handled is not acked yet
        pending = await redis.xpending(ev.stream, "g")
        assert pending["pending"] >= 1
        if len(got) == 7:
            break
    await c.aclose()
    assert sorted(got) == sorted([("MESSAGE_CREATE", 0, i, i) for i in range(1, 6)]
                                 + [("TYPING_START", 1, i, i) for i in range(1, 3)])
    for t in ("MESSAGE_CREATE", "TYPING_START"):
        assert (await redis.xpending(f"gateway:events:{t}", "g"))["pending"] == 0


async def test_consumer_claims_entries_of_a_dead_consumer(redis):
    await _publish(redis, 6)
    dead = RedisConsumer(redis, "g", name="dead", events=["MESSAGE_CREATE"], count=3, block=0.1)
    first = await dead.__anext__()
    second = await dead.__anext__()  # acks the first
    assert (first.s, second.s) == (1, 2)
    # "dead" stops here: 2 and 3 (read in its batch) stay pending
    alive = RedisConsumer(redis, "g", name="alive", events=["MESSAGE_CREATE"], block=0.1,
                          claim_idle=0.3, claim_every=0.1)
    seen = []
    async def consume():
        async for ev in alive:
            seen.append(ev.s)
            if sorted(seen) == [2, 3, 4, 5, 6]:
                break
    await asyncio.wait_for(consume(), 10)
    await alive.aclose()
    assert sorted(seen) == [2, 3, 4, 5, 6] and alive.claimed == 2
    assert (await redis.xpending("gateway:events:MESSAGE_CREATE", "g"))["pending"] == 0


async def test_consumer_restart_rereads_own_pending_and_run_leaves_failures(redis):
    await _publish(redis, 4)
    c = RedisConsumer(redis, "g", name="c", events=["MESSAGE_CREATE"], block=0.1)
    ev = await c.__anext__()
    assert ev.s == 1  # crash while handling 1: 1..4 are pending for "c"
    again = RedisConsumer(redis, "g", name="c", events=["MESSAGE_CREATE"], block=0.1,
                          claim_idle=60)
    handled = []

    def handler(e):
        if e.s == 3:
            raise RuntimeError("boom")
        handled.append(e.s)
        if len(handled) == 3:
            again.stop()

    await asyncio.wait_for(again.run(handler), 10)
    assert handled == [1, 2, 4]
    p = await redis.xpending_range("gateway:events:MESSAGE_CREATE", "g", "-", "+", 10)
    assert len(p) == 1  # only the failed one stays pending
    left = await redis.xrange("gateway:events:MESSAGE_CREATE", p[0]["message_id"], p[0]["message_id"])
    assert left[0][1][b"s"] == b"3"


async def test_consumer_drops_pending_entries_trimmed_away(redis):
    await _publish(redis, 3)
    c = RedisConsumer(redis, "g", name="c", events=["MESSAGE_CREATE"], block=0.1)
    assert (await c.__anext__()).s == 1  # 1..3 now pending for "c"
    first_ids = [e[0] for e in await redis.xrange("gateway:events:MESSAGE_CREATE")]
    await redis.xdel("gateway:events:MESSAGE_CREATE", first_ids[1])  # 2 trimmed away
    again = RedisConsumer(redis, "g", name="c", events=["MESSAGE_CREATE"], block=0.1)
    seen = [(await again.__anext__()).s, (await again.__anext__()).s]
    await again.aclose()
    assert seen == [1, 3]
    assert (await redis.xpending("gateway:events:MESSAGE_CREATE", "g"))["pending"] == 0


async def test_identify_unknown_budget_is_read_before_granting(redis):
    calls = []

    async def refresh():
        calls.append(1)
        return {"remaining": 3, "total": 1000, "reset_after": 60_000, "max_concurrency": 1}

    q = RedisIdentifyQueue(redis, period=0.01, margin=0.0)
    await q.configure({"max_concurrency": 1}, refresh)  # no remaining known (key absent)
    await q.acquire(0)
    assert calls == [1] and await q.remaining() == 2
    # without a way to re-read it, an unknown budget does not block
    q2 = RedisIdentifyQueue(redis, prefix="other", period=0.01, margin=0.0)
    await asyncio.wait_for(q2.acquire(0), 5)
    assert await q2.remaining() is None


async def test_consumer_run_with_async_handler(redis):
    await _publish(redis, 3)
    c = RedisConsumer(redis, "g", events=["MESSAGE_CREATE"], block=0.1)
    seen = []

    async def handler(ev):
        await asyncio.sleep(0)
        seen.append(ev.s)
        if len(seen) == 3:
            c.stop()

    await asyncio.wait_for(c.run(handler), 10)
    assert seen == [1, 2, 3] and c.acked == 3
