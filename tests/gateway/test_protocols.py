"""The pluggable parts (gateway.protocols) as a shard and a manager use them: identify queue,
session store, event sink, and shards added / removed while the manager runs."""
from __future__ import annotations

import asyncio
import json

import orjson
from tests.gateway._helpers import Recorder, caught_up, fast_shard, session_log

from gateway import (Backoff, DispatchRecord, EventSink, FileSessionStore, IdentifyQueue,
                     MemoryIdentifyQueue, MemorySessionStore, SessionState, SessionStore,
                     ShardManager)
from gateway.testing import GatewaySimulator


class ListSink:
    """Takes records until ``room`` is 0, then refuses until :meth:`drain`."""

    def __init__(self, room: int | None = None) -> None:
        self.records: list[DispatchRecord] = []
        self.room = room
        self.refused = 0
        self._writable = asyncio.Event()
        self._writable.set()

    def offer(self, record: DispatchRecord) -> bool:
        if self.room is not None and self.room <= 0:
            self.refused += 1
            self._writable.clear()
            return False
        if self.room is not None:
            self.room -= 1
        self.records.append(record)
        return True

    def drain(self) -> None:
        self.room = None
        self._writable.set()

    async def wait_writable(self) -> None:
        await self._writable.wait()

    async def close(self) -> None:
        pass


class CountingQueue(MemoryIdentifyQueue):
    def __init__(self) -> None:
        super().__init__(1, 0.0)
        self.acquired: list[int] = []

    async def acquire(self, shard_id: int) -> None:
        self.acquired.append(shard_id)
        await super().acquire(shard_id)


def test_defaults_satisfy_the_protocols():
    assert isinstance(MemoryIdentifyQueue(), IdentifyQueue)
    assert isinstance(MemorySessionStore(), SessionStore)
    assert isinstance(FileSessionStore("x.json"), SessionStore)
    assert isinstance(ListSink(), EventSink)
    import gateway.shard
    assert gateway.shard.SessionState is SessionState


async def test_sink_gets_every_dispatch_before_ack_and_backpressure_resumes(sim):
    sink = ListSink(room=8)  # READY + 3 GUILD_CREATE + 4 more, then full
    shard = fast_shard(sim, sink=sink)
    rec = Recorder(shard)
    shard.start()
    try:
        await shard.wait_until_ready(3)
        for i in range(20):
            sim.dispatch("MESSAGE_CREATE", {"i": i, "text": "é \\u00e9"})
        await sim.wait_for(lambda: sink.refused >= 1, 3, "sink refused")
        assert shard.seq == 8  # not past the refused event
        await asyncio.sleep(0.1)
        assert len(sim.connections) == 1 or not sim.connections[0].open  # closed, waiting
        sink.drain()
        await sim.wait_ready(2, timeout=5)
        await caught_up(sim, shard)
        assert len(sim.resumes) == 1
        log = session_log(sim)
        assert [(r.seq, r.name) for r in sink.records] == log
        assert rec.pairs() == log  # local handlers saw each exactly once too
        events = sim.session_for_shard(0).events
        assert [orjson.loads(r.raw_d) for r in sink.records] == [e.d for e in events]
        assert all(r.shard_id == 0 and r.session_id == shard.session_id for r in sink.records)
        assert shard.metrics.sink_full >= 1
    finally:
        await shard.close()


async def test_sink_backpressure_is_not_a_failure_for_the_backoff(sim):
    # A sink that fills again on each RESUME's replay, before the connection is stable: the
    # reconnects wait for the sink, not for a growing backoff (base 5 s would show at once).
    sink = ListSink(room=3)
    shard = fast_shard(sim, sink=sink, backoff=Backoff(base=5.0, cap=60.0))
    delays: list[float] = []
    shard.on("reconnecting", lambda ev: delays.append(ev.delay))
    shard.start()
    try:
        await sim.wait_for(lambda: sink.refused >= 1, 5, "sink refused")  # READY + guilds
        for i in range(30):  # logged in the session meanwhile: replayed on each RESUME
            sim.dispatch("MESSAGE_CREATE", {"i": i})
        for _ in range(3):
            await sim.wait_for(lambda: sink.refused >= 1, 5, "sink refused")
            sink.refused = 0
            sink.room = 3
            sink._writable.set()
        sink.drain()
        await caught_up(sim, shard)
        assert len(delays) >= 3
        assert all(d == 0 for d in delays), delays
        assert shard.backoff.failures == 0
        assert shard.metrics.resume_url_fallbacks == 0  # the resume URL did not fail: we closed
        assert len(sim.resumes) == len(delays)
        assert [r.seq for r in sink.records] == [s for s, _ in session_log(sim)]
    finally:
        await shard.close()


async def test_session_store_saved_resumed_and_cleared(sim):
    store = MemorySessionStore()
    shard = fast_shard(sim, session_store=store)
    shard.start()
    await shard.wait_until_ready(3)
    await sim.wait_for(lambda: 0 in store.states, 2, "state saved at READY")
    assert store.states[0].session_id == shard.session_id
    sim.dispatch("MESSAGE_CREATE", {"i": 1})
    await caught_up(sim, shard)
    await shard.close(4901)
    saved = store.states[0]
    assert saved.seq == shard.seq == sim.session_for_shard(0).seq
    for i in range(3):  # while nobody is connected
        sim.dispatch("MESSAGE_CREATE", {"i": 10 + i})
    again = fast_shard(sim, session_store=store)
    rec = Recorder(again)
    again.start()
    try:
        await again.wait_until_ready(3)
        await caught_up(sim, again)
        assert len(sim.resumes) == 1 and len(sim.identifies) == 1
        assert [e.d["i"] for e in rec.dispatches if e.t == "MESSAGE_CREATE"] == [10, 11, 12]
    finally:
        await again.close(1000)
    assert 0 not in store.states  # close(1000) ended the session
    assert again.session_state().session_id is None


async def test_identify_queue_is_asked_for_every_identify(sim):
    queue = CountingQueue()
    shard = fast_shard(sim, identify_queue=queue)
    shard.start()
    try:
        await shard.wait_until_ready(3)
        await sim.invalidate_session(False)  # op 9 false: IDENTIFY anew
        await sim.wait_for(lambda: len(sim.identifies) == 2, 3)
        await shard.wait_until_ready(3)
        assert queue.acquired == [0, 0]
        await sim.close(4000)  # resumable: no IDENTIFY, no acquire
        await sim.wait_for(lambda: len(sim.resumes) == 1, 3)
        assert queue.acquired == [0, 0]
    finally:
        await shard.close()


async def test_file_store_reads_the_state_file_format(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "sessions": [
        {"shard_id": 1, "shard_count": 2, "session_id": "abc", "seq": 7,
         "resume_gateway_url": "ws://x"}]}))
    store = FileSessionStore(str(path))
    assert await store.load(1, 2) == SessionState(1, 2, "abc", 7, "ws://x")
    assert await store.load(1, 3) is None  # another shard count
    assert await store.load(0, 2) is None
    await store.save(SessionState(0, 2, "def", 3, None))
    data = json.loads(path.read_text())
    assert sorted(d["shard_id"] for d in data["sessions"]) == [0, 1]
    await store.clear(1)
    assert [d["shard_id"] for d in json.loads(path.read_text())["sessions"]] == [0]


async def test_manager_adds_and_removes_shards_while_running():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=2) as sim:
        store = MemorySessionStore()
        sink = ListSink()
        mgr = ShardManager(sim.token, api_url=sim.api_url, shard_ids=[0], identify_period=0.0,
                           session_store=store, sink=sink, compress="zlib-stream",
                           invalid_session_delay=lambda: 0.01, close_timeout=1.0,
                           min_connect_interval=0.0)
        runner = asyncio.ensure_future(mgr.run())
        try:
            await mgr.start()
            await mgr.shards[0].wait_until_ready(5)
            one = await mgr.add_shard(1)
            assert await mgr.add_shard(1) is one  # already running
            await one.wait_until_ready(5)
            assert sorted(mgr.shards) == [0, 1]
            sim.dispatch("MESSAGE_CREATE", {"i": 0})
            await caught_up(sim, one)
            state = await mgr.remove_shard(1)
            assert state is not None and state.seq == sim.session_for_shard(1).seq
            assert store.states[1].session_id == state.session_id
            assert 1 not in mgr.shards and not runner.done()  # run() keeps going
            sim.dispatch("MESSAGE_CREATE", {"i": 1}, session=state.session_id)
            again = await mgr.add_shard(1)
            await again.wait_until_ready(5)
            await caught_up(sim, again)
            assert len(sim.resumes) == 1 and again.session_id == state.session_id
            got = [r.seq for r in sink.records if r.shard_id == 1]
            assert got == list(range(1, sim.session_for_shard(1).seq + 1))  # no gap, no dup
        finally:
            await mgr.close(keep_sessions=False)
            await asyncio.wait_for(runner, 5)
        assert store.states == {}


async def test_lease_driven_manager_starts_empty_and_runs_until_closed():
    async with GatewaySimulator(heartbeat_interval=0.1, shards=4) as sim:
        mgr = ShardManager(sim.token, api_url=sim.api_url, shard_ids=[], identify_period=0.0,
                           compress="zlib-stream", close_timeout=1.0)
        runner = asyncio.ensure_future(mgr.run())
        await asyncio.sleep(0.2)
        assert not runner.done() and mgr.shards == {}  # nothing to run yet, still running
        shard = await mgr.add_shard(2)
        await shard.wait_until_ready(5)
        assert sim.identifies[0].d["shard"] == [2, 4]
        await mgr.remove_shard(2, resumable=False)
        assert not runner.done()
        await mgr.close()
        await asyncio.wait_for(runner, 5)
        try:
            await mgr.add_shard(1)
        except Exception as exc:
            assert "closed" in str(exc)
        else:
            raise AssertionError("add_shard after close must fail")


async def test_close_lets_the_callers_cancellation_through(sim):
    # A lease watchdog cancelled while it waits in close() must end: close() used to catch the
    # CancelledError of its own caller around ``await run_task`` and return normally.
    shard = fast_shard(sim)
    shard.start()
    try:
        await shard.wait_until_ready(3)
        caller = asyncio.ensure_future(shard.close(4901))
        await asyncio.sleep(0)  # close() now waits for the run task (its closing handshake)
        assert not caller.done() and shard.running
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        assert caller.cancelled()
    finally:
        await shard.close(4901)
    assert not shard.running
