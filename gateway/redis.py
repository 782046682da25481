"""Redis implementations of :mod:`gateway.protocols`, and a consumer of the bridged streams.

Everything a group of processes (on any number of machines) shares lives under one key
prefix (default ``gateway``)::

    {P}:identify:{max_concurrency}:{bucket}  IDENTIFY slot of a bucket (SET NX PX period)
    {P}:limits                               hash: session_start_limit remaining/total (PX reset)
    {P}:lease:{shard_id}                     owner token of the shard (SET NX PX ttl)
    {P}:members                              sorted set: live processes (score = expiry, ms)
    {P}:session:{shard_id}                   hash: shard_count, session_id, resume_url, seq,
                                             pub_session, pub_seq (what the sink published)
    {P}:events:{t}                           stream per event name: shard, s, session, d

Needs Redis >= 6.2 (XAUTOCLAIM; the scripts use only Redis 5 commands) and the
``redis`` client (``pip install 'mijcodec[redis]'``).  A single Redis (or a primary with
replicas) is assumed; Redis Cluster is not supported (the scripts touch keys of several slots).
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import os
import random
import secrets
import socket
import time
from typing import Any, Callable, Iterable, Mapping, Optional

import orjson

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError, ResponseError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("gateway.redis needs the redis client: pip install 'mijcodec[redis]'") from exc

from .protocols import DispatchRecord, LimitsRefresher, SessionState

__all__ = [
    "connect", "RedisIdentifyQueue", "RedisSessionStore", "RedisShardLeases", "RedisMembers",
    "RedisEventSink", "RedisConsumer", "StreamEvent", "DEFAULT_PREFIX",
]

log = logging.getLogger("gateway.redis")

DEFAULT_PREFIX = "gateway"

#: what a lost/slow Redis raises through the client (the callers retry these)
REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def connect(url: str, *, timeout: float = 2.0, **kwargs: Any) -> "aioredis.Redis":
    """An asyncio client for ``url`` whose commands fail after ``timeout`` seconds instead of
    hanging (a paused Redis), and which never retries on its own: the callers here retry
    what is safe to retry (every write below is idempotent)."""
    return aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                   retry=Retry(NoBackoff(), 0), **kwargs)


def _s(v: Any) -> Optional[str]:
    if v is None:
        return None
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


# ---------------------------------------------------------------------------- identify queue
_IDENTIFY = """
-- KEYS[1] bucket slot, KEYS[2] limits hash; ARGV[1] holder, ARGV[2] period ms,
-- ARGV[3] '1': grant even when the budget is unknown (no way to re-read it)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then return {1, ttl} end
if ttl == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1, tonumber(ARGV[2])} end
local rem = redis.call('HGET', KEYS[2], 'remaining')
if not rem then
  if ARGV[3] ~= '1' then return {3, 0} end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {0, -1}
end
if tonumber(rem) <= 0 then return {2, redis.call('PTTL', KEYS[2])} end
redis.call('HINCRBY', KEYS[2], 'remaining', -1)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {0, tonumber(rem) - 1}
"""

_CONFIGURE = """
-- KEYS[1] limits hash; ARGV[1] remaining, ARGV[2] total, ARGV[3] reset_after ms, ARGV[4] force
local cur = redis.call('HGET', KEYS[1], 'remaining')
local rem = tonumber(ARGV[1])
if cur and ARGV[4] ~= '1' and tonumber(cur) < rem then rem = tonumber(cur) end
redis.call('HSET', KEYS[1], 'remaining', rem, 'total', ARGV[2])
local px = tonumber(ARGV[3])
if px < 1 then px = 1 end
if (not cur) or ARGV[4] == '1' or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], px)
end
return rem
"""

class RedisIdentifyQueue:
    """At most one IDENTIFY per bucket (``shard_id % max_concurrency``) per ``period`` seconds
    among every process sharing the Redis, and the daily ``session_start_limit`` counted there.

    The slot of a bucket is a key set with ``NX PX (period + margin)``: ``margin`` covers the
    time between the grant and the IDENTIFY reaching Discord, so two IDENTIFYs of a bucket are
    never seen closer than ``period`` apart.  The budget (``{P}:limits``) is initialised from
    ``/gateway/bot`` (the lower of Redis's and Discord's count while it lives) and expires at
    the reset; each grant decrements it in the same script that takes the slot.  When it is 0
    the queue re-reads ``/gateway/bot`` (``refresh``) and, if that says 0 too, sleeps until
    ``reset_after``.  A Redis that does not answer is retried (the IDENTIFY waits)."""

    def __init__(self, redis: "aioredis.Redis", *, prefix: str = DEFAULT_PREFIX,
                 period: float = 5.0, margin: float = 0.25, max_concurrency: int = 1,
                 poll: float = 0.05) -> None:
        self.redis = redis
        self.prefix = prefix
        self.period = period
        self.margin = margin
        self.max_concurrency = max(1, int(max_concurrency))
        self.poll = poll
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._refresh: Optional[LimitsRefresher] = None
        self._identify = redis.register_script(_IDENTIFY)
        self._configure = redis.register_script(_CONFIGURE)
        self.grants: list[tuple[float, int, int]] = []  # (time.time(), bucket, shard_id)
        self.refreshes = 0

    @property
    def limits_key(self) -> str:
        return f"{self.prefix}:limits"

    def bucket(self, shard_id: int) -> int:
        return shard_id % self.max_concurrency

    def slot_key(self, bucket: int) -> str:
        return f"{self.prefix}:identify:{self.max_concurrency}:{bucket}"

    async def configure(self, session_start_limit: Mapping[str, Any],
                        refresh: Optional[LimitsRefresher] = None, *, force: bool = False) -> None:
        if refresh is not None:
            self._refresh = refresh
        mc = session_start_limit.get("max_concurrency")
        if mc:
            self.max_concurrency = max(1, int(mc))
        if session_start_limit.get("remaining") is None:
            return
        await self._configure(keys=[self.limits_key], args=[
            int(session_start_limit["remaining"]), int(session_start_limit.get("total") or 0),
            int(session_start_limit.get("reset_after") or 0), "1" if force else "0"])

    async def remaining(self) -> Optional[int]:
        v = await self.redis.hget(self.limits_key, "remaining")
        return None if v is None else int(v)

    async def acquire(self, shard_id: int) -> None:
        bucket = self.bucket(shard_id)
        errors = 0
        while True:
            period_ms = max(1, int(round((self.period + self.margin) * 1000)))
            try:
                status, value = await self._identify(
                    keys=[self.slot_key(bucket), self.limits_key],
                    args=[self.holder, period_ms, "0" if self._refresh is not None else "1"])
            except REDIS_ERRORS as exc:
                errors += 1
                delay = min(5.0, 0.1 * 2 ** min(errors, 6)) * (0.5 + random.random())
                log.warning("identify queue: Redis error %r; retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            errors = 0
            if status == 0:
                self.grants.append((time.time(), bucket, shard_id))
                return
            if status == 1:  # the bucket's slot is taken: wait until it frees, politely
                await asyncio.sleep(max(self.poll, int(value) / 1000.0) + random.random() * self.poll)
            elif status == 3:  # budget unknown (never configured, or expired at the reset)
                await self._reread(force=True, fallback_wait=0.0)
            else:  # budget spent
                await self._reread(force=True, fallback_wait=max(0, int(value)) / 1000.0)

    async def _reread(self, *, force: bool, fallback_wait: float) -> None:
        if self._refresh is None:
            log.warning("session_start_limit spent; waiting %.1fs for the reset", fallback_wait)
            await asyncio.sleep(fallback_wait)
            return
        self.refreshes += 1
        try:
            limits = await self._refresh()
        except Exception as exc:
            log.warning("identify queue: re-reading /gateway/bot failed: %r", exc)
            await asyncio.sleep(1.0)
            return
        remaining = int(limits.get("remaining") or 0)
        await self.configure(limits, force=force)
        if remaining <= 0:
            wait = float(limits.get("reset_after") or 0) / 1000.0
            log.warning("session_start_limit remaining 0 (re-read); waiting %.1fs for the reset",
                        wait)
            await asyncio.sleep(max(wait, self.poll))


# ---------------------------------------------------------------------------- session store
_SAVE = """
-- KEYS[1] session hash, KEYS[2] lease key (or ''); ARGV[1] token (or ''), ARGV[2] shard_count,
-- ARGV[3] session_id, ARGV[4] resume url, ARGV[5] seq ('' = do not write seq)
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local old = redis.call('HGET', KEYS[1], 'session_id')
if old ~= ARGV[3] then redis.call('HDEL', KEYS[1], 'seq') end
redis.call('HSET', KEYS[1], 'shard_count', ARGV[2], 'session_id', ARGV[3], 'resume_url', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'seq', ARGV[5]) end
return 1
"""

_CLEAR = """
-- KEYS[1] session hash, KEYS[2] lease key; ARGV[1] token (or '')
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'session_id', 'resume_url', 'seq')
return 1
"""


class RedisSessionStore:
    """Session id, seq and resume URL per shard in ``{P}:session:{shard_id}``.

    ``seq_from_sink=True`` (what ``bridge`` uses) means the stored seq is the last ``s`` the
    :class:`RedisEventSink` *published* for that session (written only by the sink's script,
    atomically with the XADD); :meth:`save` then writes only the session id and resume URL,
    so a shard's local seq (ahead of what is published while events are buffered) never
    reaches the store.  A session established but not yet published loads with seq 0 (RESUME
    replays it from its start).  With ``seq_from_sink=False`` :meth:`save` writes the seq too.

    With ``leases`` every write is fenced: it happens only while this process holds the
    shard's lease (the token is checked in the same script), so a process that lost a shard
    cannot overwrite what the new owner stored."""

    def __init__(self, redis: "aioredis.Redis", *, prefix: str = DEFAULT_PREFIX,
                 seq_from_sink: bool = False, leases: "RedisShardLeases | None" = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.seq_from_sink = seq_from_sink
        self.leases = leases
        self._save = redis.register_script(_SAVE)
        self._clear = redis.register_script(_CLEAR)
        self.refused = 0  # fenced writes

    def key(self, shard_id: int) -> str:
        return f"{self.prefix}:session:{shard_id}"

    def _fence(self, shard_id: int) -> tuple[str, str]:
        if self.leases is None:
            return "", ""
        token = self.leases.token(shard_id)
        return self.leases.key(shard_id), token or "\x00not-held"

    async def load(self, shard_id: int, shard_count: int) -> Optional[SessionState]:
        h = await self.redis.hgetall(self.key(shard_id))
        if not h:
            return None
        h = {_s(k): _s(v) for k, v in h.items()}
        if h.get("shard_count") is None or int(h["shard_count"]) != shard_count:
            return None
        sid = h.get("session_id")
        if not sid:
            return None
        if self.seq_from_sink:
            seq = int(h["pub_seq"]) if h.get("pub_session") == sid and h.get("pub_seq") else 0
        else:
            seq = int(h["seq"]) if h.get("seq") else None
        return SessionState(shard_id, shard_count, sid, seq, h.get("resume_url") or None)

    async def published(self, shard_id: int) -> tuple[Optional[str], Optional[int]]:
        """``(session, s)`` of the last event the sink published for ``shard_id``."""
        sid, seq = await self.redis.hmget(self.key(shard_id), "pub_session", "pub_seq")
        return _s(sid), (int(seq) if seq is not None else None)

    async def save(self, state: SessionState) -> None:
        if not state.session_id:
            await self.clear(state.shard_id)
            return
        lease_key, token = self._fence(state.shard_id)
        seq = "" if self.seq_from_sink or state.seq is None else str(int(state.seq))
        ok = await self._save(keys=[self.key(state.shard_id), lease_key or self.key(state.shard_id)],
                              args=[token, state.shard_count, state.session_id,
                                    state.resume_gateway_url or "", seq])
        if not ok:
            self.refused += 1
            log.warning("session store: shard %d is not ours any more; save refused", state.shard_id)

    async def clear(self, shard_id: int) -> None:
        lease_key, token = self._fence(shard_id)
        ok = await self._clear(keys=[self.key(shard_id), lease_key or self.key(shard_id)],
                               args=[token])
        if not ok:
            self.refused += 1

    async def close(self) -> None:
        pass


# ---------------------------------------------------------------------------- leases
_RENEW = """
-- KEYS: lease keys; ARGV[1] ttl ms, ARGV[2..]: the token expected in each key
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    held[#held + 1] = i
  end
end
return held
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_MEMBERS = """
-- KEYS[1] members zset; ARGV[1] member, ARGV[2] ttl ms, ARGV[3] '1' to leave
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then redis.call('ZREM', KEYS[1], ARGV[1])
else redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[2]) * 4, 1000))
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class RedisShardLeases:
    """A lease per shard: ``{P}:lease:{shard_id}`` holds a token ``owner:n`` unique to this
    process *and* this acquisition, set with ``NX PX ttl``; renew and release compare the token
    in a script (compare-and-set), so nobody extends or deletes a lease it does not hold.

    :meth:`token` is the fencing token the sink and the session store check in their own
    scripts.  :meth:`valid_until` is the local (monotonic) time before which the lease is
    certainly still ours: the send time of the last successful acquire/renew plus ``ttl``
    (Redis started the TTL after we sent, so it expires no earlier)."""

    def __init__(self, redis: "aioredis.Redis", *, prefix: str = DEFAULT_PREFIX,
                 ttl: float = 6.0, owner: Optional[str] = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._tokens: dict[int, str] = {}
        self._valid_until: dict[int, float] = {}
        self._n = 0
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def key(self, shard_id: int) -> str:
        return f"{self.prefix}:lease:{shard_id}"

    def token(self, shard_id: int) -> Optional[str]:
        return self._tokens.get(shard_id)

    def held(self) -> set[int]:
        return set(self._tokens)

    def valid_until(self, shard_id: int) -> float:
        return self._valid_until.get(shard_id, 0.0)

    def forget(self, shard_id: int) -> None:
        """Drop the local claim (after a renew failed for too long)."""
        self._tokens.pop(shard_id, None)
        self._valid_until.pop(shard_id, None)

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(round(self.ttl * 1000)))

    async def try_acquire(self, shard_id: int) -> bool:
        if shard_id in self._tokens:
            return bool(await self.renew([shard_id]))
        self._n += 1
        token = f"{self.owner}:{self._n}"
        sent = time.monotonic()
        ok = await self.redis.set(self.key(shard_id), token, nx=True, px=self._ttl_ms)
        if ok:
            self._tokens[shard_id] = token
            self._valid_until[shard_id] = sent + self.ttl
        return bool(ok)

    async def renew(self, shard_ids: "list[int]") -> "set[int]":
        ids = [i for i in shard_ids if i in self._tokens]
        if not ids:
            return set()
        sent = time.monotonic()
        idx = await self._renew(keys=[self.key(i) for i in ids],
                                args=[self._ttl_ms] + [self._tokens[i] for i in ids])
        held = {ids[int(k) - 1] for k in idx}
        for i in ids:
            if i in held:
                self._valid_until[i] = sent + self.ttl
            else:
                self.forget(i)
        return held

    async def release(self, shard_id: int) -> None:
        token = self._tokens.pop(shard_id, None)
        self._valid_until.pop(shard_id, None)
        if token is not None:
            await self._release(keys=[self.key(shard_id)], args=[token])

    async def owners(self, shard_ids: Iterable[int]) -> dict[int, Optional[str]]:
        """Current token of each shard's lease (None: free)."""
        ids = list(shard_ids)
        if not ids:
            return {}
        vals = await self.redis.mget([self.key(i) for i in ids])
        return {i: _s(v) for i, v in zip(ids, vals)}


class RedisMembers:
    """Live processes of a group (``{P}:members``, a sorted set scored by expiry on Redis's
    clock), so each can aim for its fair share of the shards."""

    def __init__(self, redis: "aioredis.Redis", owner: str, *, prefix: str = DEFAULT_PREFIX,
                 ttl: float = 6.0) -> None:
        self.redis = redis
        self.owner = owner
        self.prefix = prefix
        self.ttl = ttl
        self._script = redis.register_script(_MEMBERS)

    @property
    def key(self) -> str:
        return f"{self.prefix}:members"

    async def heartbeat(self) -> list[str]:
        """Say we are alive; the sorted list of live members (us included)."""
        res = await self._script(keys=[self.key], args=[self.owner, int(self.ttl * 1000), "0"])
        return sorted(_s(m) for m in res)

    async def leave(self) -> None:
        await self._script(keys=[self.key], args=[self.owner, int(self.ttl * 1000), "1"])


# ---------------------------------------------------------------------------- event sink
_PUBLISH = """
-- One shard, one session, events in order.
-- KEYS[1] lease key, KEYS[2] session hash, KEYS[3..] the stream of each published event
-- ARGV[1] token ('' = unfenced), ARGV[2] session, ARGV[3] shard, ARGV[4] maxlen (0 = none),
-- ARGV[5] last s of the group (published or not), then per published event: s, d
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local sid = ARGV[2]
local last = 0
if redis.call('HGET', KEYS[2], 'pub_session') == sid then
  last = tonumber(redis.call('HGET', KEYS[2], 'pub_seq') or '0')
end
local added = 0
local trim = ARGV[4] ~= '0'
local shard = ARGV[3]
local j = 6
for i = 3, #KEYS do
  local s = ARGV[j]
  if tonumber(s) > last then
    if trim then
      redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[4], '*', 'shard', shard, 's', s,
                 'session', sid, 'd', ARGV[j + 1])
    else
      redis.call('XADD', KEYS[i], '*', 'shard', shard, 's', s, 'session', sid, 'd', ARGV[j + 1])
    end
    added = added + 1
  end
  j = j + 2
end
local final = tonumber(ARGV[5])
if final > last then
  redis.call('HSET', KEYS[2], 'pub_session', sid, 'pub_seq', final)
end
return added
"""


class _Item:
    __slots__ = ("record", "token", "publish", "size")

    def __init__(self, record: DispatchRecord, token: str, publish: bool) -> None:
        self.record = record
        self.token = token
        self.publish = publish
        self.size = len(record.raw_d) + 64 if publish else 64


class RedisEventSink:
    """Publishes dispatches to ``{P}:events:{t}`` and moves the session's published seq in one
    script per (shard, session) run of events, so the XADDs and the seq move together or not
    at all, and only while this process holds the shard's lease (fencing token checked in the
    script: a process that lost a shard cannot publish for it any more).  Events whose ``s`` is
    not above the published seq of the same session are skipped, which makes every retry of a
    batch (after a timeout whose write did land) harmless: exactly once per (shard, session, s).

    :meth:`offer` only appends to a bounded in-memory buffer (``max_events`` records or
    ``max_bytes`` of payload) and returns ``False`` past the bound; one task writes the buffer
    in pipelined batches and retries with backoff while Redis is down or slow, never dropping
    an event (only a fenced one, which the new owner's RESUME replays).
    ``events`` (a set of names) limits what is published; the others still move the seq.
    ``on_fenced(shard_id, token)`` is called when a write was refused because the lease
    (``token``, None: none held at offer time) is gone."""

    def __init__(self, redis: "aioredis.Redis", *, prefix: str = DEFAULT_PREFIX,
                 maxlen: Optional[int] = 100_000, events: Optional[Iterable[str]] = None,
                 leases: Optional[RedisShardLeases] = None, max_events: int = 10_000,
                 max_bytes: int = 64 << 20, batch: int = 500,
                 on_fenced: Optional[Callable[[int, Optional[str]], Any]] = None,
                 retry_cap: float = 1.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.maxlen = int(maxlen or 0)
        self.events = frozenset(events) if events else None
        self.leases = leases
        self.max_events = max_events
        self.max_bytes = max_bytes
        # writable again at a quarter: room for the replay burst of the RESUME that follows
        self.low_events = max_events // 4
        self.low_bytes = max_bytes // 4
        self.batch = batch
        self.on_fenced = on_fenced
        self.retry_cap = retry_cap
        self._buf: collections.deque[_Item] = collections.deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._task: Optional[asyncio.Task] = None
        self._script = redis.register_script(_PUBLISH)
        # counters
        self.offered = 0
        self.published = 0       # XADDs that happened
        self.skipped = 0         # already published (retries), not added twice
        self.fenced = 0          # dropped: lease lost
        self.refused = 0         # offers over the bound
        self.errors = 0          # failed writes (retried)
        self.redis_ok = True
        self.last_error: Optional[BaseException] = None

    def stream(self, name: str) -> str:
        return f"{self.prefix}:events:{name}"

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def buffered_for(self, shard_id: int) -> int:
        return sum(1 for it in self._buf if it.record.shard_id == shard_id)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._writer())

    def offer(self, record: DispatchRecord) -> bool:
        if self._closed:
            return False
        if len(self._buf) >= self.max_events or self._bytes >= self.max_bytes:
            self.refused += 1
            self._writable.clear()
            return False
        token = ""
        if self.leases is not None:
            token = self.leases.token(record.shard_id) or ""
            if not token:  # not ours: never publish (the owner does)
                self.fenced += 1
                self._fenced(record.shard_id, None)
                return True
        publish = self.events is None or record.name in self.events
        it = _Item(record, token, publish)
        self._buf.append(it)
        self._bytes += it.size
        self.offered += 1
        self._idle.clear()
        self._wake.set()
        self._start()
        return True

    async def wait_writable(self) -> None:
        await self._writable.wait()

    async def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything buffered is written; ``False`` on timeout."""
        if not self._buf:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def flush_shard(self, shard_id: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.buffered_for(shard_id):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        await self.flush(timeout)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._buf:
            log.warning("sink closed with %d events unwritten (their shards RESUME from the "
                        "last published seq)", len(self._buf))

    def _fenced(self, shard_id: int, token: Optional[str]) -> None:
        if self.on_fenced is not None:
            try:
                self.on_fenced(shard_id, token)
            except Exception:  # pragma: no cover
                log.exception("on_fenced(%d) failed", shard_id)

    def _groups(self, items: list[_Item]) -> list[list[_Item]]:
        groups: dict[tuple[int, Any, str], list[_Item]] = {}
        for it in items:
            r = it.record
            groups.setdefault((r.shard_id, r.session_id, it.token), []).append(it)
        return list(groups.values())

    async def _write(self, items: list[_Item]) -> None:
        groups = self._groups(items)
        pipe = self.redis.pipeline(transaction=False)
        for g in groups:
            r0 = g[0].record
            sess_key = f"{self.prefix}:session:{r0.shard_id}"
            lease_key = self.leases.key(r0.shard_id) if self.leases is not None else sess_key
            keys = [lease_key, sess_key]
            args: list[Any] = [g[0].token, r0.session_id or "", r0.shard_id, self.maxlen,
                               max(it.record.seq for it in g)]
            for it in g:
                if it.publish:
                    keys.append(self.stream(it.record.name))
                    args.append(it.record.seq)
                    args.append(it.record.raw_d)
            await self._script(keys=keys, args=args, client=pipe)
        results = await pipe.execute()
        for g, res in zip(groups, results):
            n = int(res)
            if n < 0:
                self.fenced += len(g)
                self._fenced(g[0].record.shard_id, g[0].token)
            else:
                self.published += n
                self.skipped += sum(1 for it in g if it.publish) - n

    async def _writer(self) -> None:
        failures = 0
        while True:
            if not self._buf:
                self._idle.set()
                self._writable.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            items = [self._buf[i] for i in range(min(self.batch, len(self._buf)))]
            try:
                await self._write(items)
            except REDIS_ERRORS as exc:
                failures += 1
                self.errors += 1
                self.last_error = exc
                if self.redis_ok:
                    log.warning("sink: Redis write failed (%r); %d events buffered, retrying",
                                exc, len(self._buf))
                self.redis_ok = False
                await asyncio.sleep(min(self.retry_cap, 0.05 * 2 ** min(failures, 5)))
                continue
            if not self.redis_ok:
                log.warning("sink: Redis answers again")
            self.redis_ok = True
            failures = 0
            for _ in items:
                it = self._buf.popleft()
                self._bytes -= it.size
            if len(self._buf) <= self.low_events and self._bytes <= self.low_bytes:
                self._writable.set()


# ---------------------------------------------------------------------------- consumer
class StreamEvent:
    """One dispatch read back from a stream: ``t``, ``shard``, ``s``, ``session``, ``raw_d``
    (the JSON text as the gateway sent it) and ``d`` (parsed with orjson on first access)."""

    __slots__ = ("stream", "id", "t", "shard", "s", "session", "raw_d", "_d", "deliveries")

    def __init__(self, stream: str, entry_id: str, t: str, fields: Mapping[bytes, bytes]) -> None:
        self.stream = stream
        self.id = entry_id
        self.t = t
        self.shard = int(fields[b"shard"])
        self.s = int(fields[b"s"])
        self.session = _s(fields.get(b"session"))
        self.raw_d: bytes = fields.get(b"d", b"null")
        self._d: Any = _UNSET
        self.deliveries = 1

    @property
    def shard_id(self) -> int:
        return self.shard

    @property
    def d(self) -> Any:
        if self._d is _UNSET:
            self._d = orjson.loads(self.raw_d)
        return self._d

    @property
    def parsed(self) -> bool:
        return self._d is not _UNSET

    def __repr__(self) -> str:
        return f"<StreamEvent {self.t} shard={self.shard} s={self.s} id={self.id}>"


_UNSET = object()


class RedisConsumer:
    """``async for ev in RedisConsumer(redis, "workers")``: events of the streams
    ``{P}:events:{name}`` (``events``, default every stream under the prefix, discovered as
    they appear) through the consumer group ``group``.

    An event is acknowledged (XACK) when the loop asks for the next one, i.e. after the body
    of the ``async for`` (the handler) returned; :meth:`run` does the same for a callback.  At
    start the consumer re-reads its own pending entries (a restart under the same ``name``),
    and every ``claim_every`` seconds it takes over entries other consumers left pending for
    ``claim_idle`` seconds (XAUTOCLAIM): a dead consumer's events are handled by another.
    A new group starts at ``start`` (``"0"``: everything the streams still hold)."""

    def __init__(self, redis: "aioredis.Redis", group: str, *, name: Optional[str] = None,
                 events: Optional[Iterable[str]] = None, prefix: str = DEFAULT_PREFIX,
                 count: int = 100, block: float = 1.0, claim_idle: float = 30.0,
                 claim_every: Optional[float] = None, start: str = "0",
                 discover_every: float = 2.0) -> None:
        self.redis = redis
        self.group = group
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.prefix = prefix
        self.fixed = [self.stream(e) for e in events] if events else None
        self.count = count
        self.block = block
        self.claim_idle = claim_idle
        self.claim_every = claim_every if claim_every is not None else max(0.5, claim_idle / 2)
        self.start = start
        self.discover_every = discover_every
        self.streams: list[str] = []
        self._grouped: set[str] = set()
        self._pending_ack: Optional[StreamEvent] = None
        self._batch: collections.deque[StreamEvent] = collections.deque()
        self._own_pending_done: set[str] = set()
        self._own_cursor: dict[str, str] = {}
        self._last_discover = 0.0
        self._last_claim = 0.0
        self._claim_cursor: dict[str, str] = {}
        self.acked = 0
        self.claimed = 0
        self._closed = False
        self._gone: list[tuple[str, Any]] = []

    def stream(self, name: str) -> str:
        return f"{self.prefix}:events:{name}"

    def _name_of(self, stream: str) -> str:
        return stream[len(self.prefix) + len(":events:"):]

    async def _discover(self) -> None:
        now = time.monotonic()
        if self.fixed is not None:
            found = self.fixed
        elif now - self._last_discover < self.discover_every and self.streams:
            return
        else:
            found = []
            async for key in self.redis.scan_iter(match=f"{self.prefix}:events:*", count=1000,
                                                  _type="stream"):
                found.append(_s(key))
            found.sort()
        self._last_discover = now
        for st in found:
            if st not in self._grouped:
                try:
                    await self.redis.xgroup_create(st, self.group, id=self.start, mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._grouped.add(st)
        self.streams = list(found)

    def _events(self, stream: str, entries: Iterable[Any], deliveries: int = 1) -> list[StreamEvent]:
        t = self._name_of(stream)
        out = []
        for entry_id, fields in entries:
            if not fields:  # trimmed away while pending: nothing to handle, drop it
                self._gone.append((stream, entry_id))
                continue
            ev = StreamEvent(stream, _s(entry_id), t, fields)
            ev.deliveries = deliveries
            out.append(ev)
        return out

    async def _ack_gone(self) -> None:
        while self._gone:
            st, entry_id = self._gone.pop()
            await self.redis.xack(st, self.group, entry_id)

    async def _read(self) -> None:
        await self._ack_gone()
        await self._discover()
        if not self.streams:
            await asyncio.sleep(min(self.block, 0.2))
            return
        # our own pending entries first (a restarted consumer with the same name), paged by id
        todo = {st: self._own_cursor.get(st, "0") for st in self.streams
                if st not in self._own_pending_done}
        if todo:
            res = await self.redis.xreadgroup(self.group, self.name, todo, count=self.count)
            got = False
            seen = {}
            for st, entries in res or []:
                seen[_s(st)] = entries
            for st in todo:
                entries = seen.get(st) or []
                if not entries:
                    self._own_pending_done.add(st)
                    continue
                self._own_cursor[st] = _s(entries[-1][0])
                evs = self._events(st, entries, deliveries=2)
                self._batch.extend(evs)
                got = got or bool(evs)
            if got:
                return
        now = time.monotonic()
        if now - self._last_claim >= self.claim_every:
            self._last_claim = now
            if await self._claim():
                return
        res = await self.redis.xreadgroup(self.group, self.name, {st: ">" for st in self.streams},
                                          count=self.count, block=max(1, int(self.block * 1000)))
        for st, entries in res or []:
            self._batch.extend(self._events(_s(st), entries))

    async def _claim(self) -> bool:
        got = False
        for st in self.streams:
            cursor = self._claim_cursor.get(st, "0-0")
            res = await self.redis.xautoclaim(st, self.group, self.name,
                                              min_idle_time=int(self.claim_idle * 1000),
                                              start_id=cursor, count=self.count)
            nxt, entries = _s(res[0]), res[1]
            self._claim_cursor[st] = nxt
            evs = self._events(st, entries, deliveries=2)
            if evs:
                self.claimed += len(evs)
                self._batch.extend(evs)
                got = True
        return got

    async def ack(self, ev: StreamEvent) -> None:
        await self.redis.xack(ev.stream, self.group, ev.id)
        self.acked += 1

    def __aiter__(self) -> "RedisConsumer":
        return self

    async def __anext__(self) -> StreamEvent:
        if self._pending_ack is not None:
            ev, self._pending_ack = self._pending_ack, None
            await self.ack(ev)
        while not self._batch:
            if self._closed:
                raise StopAsyncIteration
            await self._read()
        await self._ack_gone()
        ev = self._batch.popleft()
        self._pending_ack = ev
        return ev

    async def run(self, handler: Callable[[StreamEvent], Any]) -> None:
        """Call ``handler(ev)`` (sync or async) for each event and ack it after it returned;
        an event whose handler raised is left pending (another consumer claims it)."""
        while not self._closed:
            while not self._batch:
                if self._closed:
                    return
                await self._read()
            await self._ack_gone()
            ev = self._batch.popleft()
            try:
                res = handler(ev)
                if inspect.isawaitable(res):
                    await res
            except Exception:
                log.exception("consumer handler failed for %r; left pending", ev)
                continue
            await self.ack(ev)

    def stop(self) -> None:
        """Make :meth:`run` return (and the iterator end) before its next event."""
        self._closed = True

    async def aclose(self, ack_last: bool = True) -> None:
        """Stop; the event being handled is acked when ``ack_last`` (the handler returned)."""
        self._closed = True
        if ack_last and self._pending_ack is not None:
            ev, self._pending_ack = self._pending_ack, None
            await self.ack(ev)
