"""The pluggable parts a shard and a shard manager coordinate through.

Each protocol has an in-process default (this process only) and a Redis implementation
(``gateway.redis``, for shards spread over processes and machines); a user can plug their own.

- :class:`IdentifyQueue`: who may IDENTIFY when (one per bucket ``shard_id % max_concurrency``
  per period) and the daily ``session_start_limit`` budget.
- :class:`SessionStore`: session id, seq and resume URL per shard, so a restarted process (on any
  machine, with a shared store) RESUMEs instead of identifying.
- :class:`ShardLeases`: which process owns which shard (renewable leases with a TTL), so two
  processes never connect the same shard and a dead owner's shards are taken over.
- :class:`EventSink`: where dispatches go besides local handlers (e.g. Redis Streams), with
  backpressure the shard obeys.

Contract between a shard and these parts (the shard side is in ``gateway.shard``; the
in-process defaults are ``gateway.ratelimit.MemoryIdentifyQueue`` (alias ``IdentifyLimiter``)
and ``gateway.stores.MemorySessionStore`` / ``FileSessionStore``):

- Before every IDENTIFY (the first and every later one: op 9 ``false``, 4007/4009, ...) the shard
  awaits ``identify_queue.acquire(shard_id)``; the call is cancellable (``close()`` interrupts it).
  The shard calls it after HELLO, so the connection heartbeats while it waits.  A
  ``ShardManager`` calls ``identify_queue.configure(session_start_limit, refresh)`` once with
  ``/gateway/bot``'s limits and a ``refresh`` that re-reads them.
- The shard calls ``session_store.save(state)`` when a session is established (READY /
  RESUMED) and when it stops resumably (``close(code)`` with a code other than 1000/1001, a
  cancelled ``run()``, ``ShardManager.remove_shard(resumable=True)``), and
  ``session_store.clear(shard_id)`` when the session is gone (op 9 ``false``, 4007/4009,
  ``close(1000)``).  At the start of ``run()`` it RESUMEs from
  ``await session_store.load(shard_id, shard_count)`` when that returns a state (and it holds
  no session of its own).  Store errors are logged (one warning) and do not stop the shard.
- For every dispatch (after de-duplication by ``s``, in order) the shard calls
  ``sink.offer(record)`` *before* it acknowledges that ``s`` (its ``seq``, heartbeats and the next
  RESUME) and before local handlers see it.  ``False`` means the sink is over its bound: the shard
  does not advance past that event (local handlers do not get it either), closes the connection
  with a resumable code (4901), awaits ``sink.wait_writable()`` before it reconnects (``close()``
  interrupts the wait), and RESUMEs (Discord replays the event).  ``record.raw_d`` is
  ``packet.raw_d`` when the codec provides it, else ``orjson.dumps(packet.d)`` (a sink with an
  attribute ``wants_raw_d = False`` gets ``b""`` there and reads ``record.packet`` itself).
- Parts passed to a ``Shard`` or ``ShardManager`` are the caller's: neither closes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, Protocol, runtime_checkable

__all__ = [
    "SessionState", "DispatchRecord", "IdentifyQueue", "SessionStore", "ShardLeases",
    "EventSink", "LimitsRefresher",
]


@dataclass
class SessionState:
    """What a restarted process needs to RESUME instead of IDENTIFY."""

    shard_id: int
    shard_count: int
    session_id: Optional[str]
    seq: Optional[int]
    resume_gateway_url: Optional[str]

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SessionState":
        return cls(int(d["shard_id"]), int(d["shard_count"]), d.get("session_id"), d.get("seq"),
                   d.get("resume_gateway_url"))


@dataclass(frozen=True)
class DispatchRecord:
    """One dispatch handed to an :class:`EventSink`.

    ``raw_d`` is the JSON text of ``d`` exactly as received (bytes), never parsed on the way;
    ``packet`` is the codec's packet (lazy ``d``) for sinks that want more.
    """

    shard_id: int
    session_id: Optional[str]
    seq: int
    name: str
    raw_d: bytes
    packet: Any = None


#: ``async () -> session_start_limit mapping`` (re-reads ``/gateway/bot``)
LimitsRefresher = Callable[[], Awaitable[Mapping[str, Any]]]


@runtime_checkable
class IdentifyQueue(Protocol):
    """IDENTIFY concurrency and the daily budget, shared by everyone using the same queue."""

    max_concurrency: int

    def bucket(self, shard_id: int) -> int:
        """``shard_id % max_concurrency``."""
        ...

    async def configure(self, session_start_limit: Mapping[str, Any],
                        refresh: Optional[LimitsRefresher] = None) -> None:
        """Take ``/gateway/bot``'s ``session_start_limit`` (``total``, ``remaining``,
        ``reset_after`` ms, ``max_concurrency``); ``refresh`` re-reads it when the budget
        runs out."""
        ...

    async def acquire(self, shard_id: int) -> None:
        """Wait until ``shard_id`` may IDENTIFY now, and count that IDENTIFY: at most one per
        bucket per period; when ``remaining`` is 0, re-read the limit (``refresh``) and, if still
        0, wait ``reset_after``.  Cancellable."""
        ...


@runtime_checkable
class SessionStore(Protocol):
    """Session id, seq and resume URL per shard."""

    async def load(self, shard_id: int, shard_count: int) -> Optional[SessionState]:
        """The stored state of ``shard_id`` if it was stored for the same ``shard_count``."""
        ...

    async def save(self, state: SessionState) -> None:
        ...

    async def clear(self, shard_id: int) -> None:
        ...

    async def close(self) -> None:
        ...


@runtime_checkable
class ShardLeases(Protocol):
    """Ownership of shards by processes: a renewable lease per shard with a TTL (seconds).

    ``owner`` identifies this process (unique per process, e.g. host:pid:random).  A lease that is
    not renewed within ``ttl`` expires and anyone may take it.  ``renew`` returns the shard ids
    still held; a shard missing from it must be disconnected at once, before its lease could be
    taken elsewhere."""

    owner: str
    ttl: float

    async def try_acquire(self, shard_id: int) -> bool:
        ...

    async def renew(self, shard_ids: "list[int]") -> "set[int]":
        ...

    async def release(self, shard_id: int) -> None:
        ...

    def held(self) -> "set[int]":
        """The shard ids this process holds a lease on, as far as it knows (no round trip)."""
        ...

    def token(self, shard_id: int) -> "str | None":
        """This process's token for the lease it holds on ``shard_id`` (None: not held); the
        fencing token a sink compares with the lease when it writes."""
        ...

    async def owners(self, shard_ids: "Iterable[int]") -> "dict[int, str | None]":
        """The current lease token of each shard (None: free), whoever holds it."""
        ...


@runtime_checkable
class EventSink(Protocol):
    """Where dispatches are published. ``offer`` never blocks."""

    def offer(self, record: DispatchRecord) -> bool:
        """Take one dispatch; ``False`` when over the buffer bound (the shard then closes
        resumably, waits :meth:`wait_writable`, and RESUMEs)."""
        ...

    async def wait_writable(self) -> None:
        """Return once :meth:`offer` would accept again."""
        ...

    async def close(self) -> None:
        """Flush what is buffered (bounded in time) and stop."""
        ...
