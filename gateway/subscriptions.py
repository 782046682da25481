"""What a shard hands its users: :class:`GatewayEvent` (a dispatch), :class:`LifecycleEvent`,
handlers registered with ``shard.on`` and iterators from ``shard.events()``.

:class:`Delivery` owns one queue per shard run and a task that calls the handlers in order
(async handlers run as tasks, so a slow one delays neither reading nor heartbeats).  Iterators
are held weakly: a :class:`Subscription` abandoned by ``break`` is garbage as soon as its
``async for`` ends, and so is its queue.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import SubscriptionOverflow

__all__ = ["GatewayEvent", "LifecycleEvent", "Subscription", "Delivery", "LIFECYCLE_EVENTS",
           "DEFAULT_MAX_PENDING"]

log = logging.getLogger("gateway.shard")

LIFECYCLE_EVENTS = ("connected", "ready", "resumed", "disconnected", "reconnecting",
                    "invalid_session", "zombie", "loop_blocked", "closed")


class GatewayEvent:
    """A dispatch (op 0) as delivered to handlers and iterators."""

    __slots__ = ("shard_id", "t", "s", "packet")

    def __init__(self, shard_id: int, packet: Any) -> None:
        self.shard_id = shard_id
        self.packet = packet
        self.t: str | None = packet.t
        self.s: int | None = packet.s

    @property
    def d(self) -> Any:
        return self.packet.d

    @property
    def raw(self) -> bytes:
        return self.packet.raw

    def __repr__(self) -> str:
        return f"<GatewayEvent shard={self.shard_id} t={self.t} s={self.s}>"


@dataclass
class LifecycleEvent:
    """``connected``, ``ready``, ``resumed``, ``disconnected`` (code, reason, by, why),
    ``reconnecting`` (resume, delay, why), ``invalid_session`` (resumable), ``zombie``,
    ``loop_blocked`` (lag), ``closed``."""

    name: str
    shard_id: int
    data: dict = field(default_factory=dict)

    def __getattr__(self, item: str) -> Any:
        try:
            return self.__dict__["data"][item]
        except KeyError:
            raise AttributeError(item) from None


#: how many events an ``events()`` iterator may have unread before it overflows
DEFAULT_MAX_PENDING = 10_000

_END = object()


class Subscription:
    """``async for ev in shard.events(...)``.  Ends when the shard stops, on :meth:`close`, or
    when the iterator is dropped (``break``).

    At most ``max_pending`` events wait unread (None: no bound).  An iterator that falls that
    far behind stops taking events: it yields those it took, then raises
    :class:`~gateway.errors.SubscriptionOverflow`, so memory stays bounded and no event is
    dropped without the reader being told."""

    def __init__(self, names: frozenset[str] | None, lifecycle: bool,
                 max_pending: int | None = None) -> None:
        if max_pending is not None and (not isinstance(max_pending, int) or
                                        isinstance(max_pending, bool) or max_pending < 1):
            raise ValueError(f"max_pending must be a positive int or None, not {max_pending!r}")
        self.names = names
        self.lifecycle = lifecycle
        self.max_pending = max_pending
        self.queue: asyncio.Queue = asyncio.Queue()
        self.ended = False
        self.overflowed = False
        self._last: Any = None  # the last item taken

    def wants(self, item: Any) -> bool:
        if isinstance(item, LifecycleEvent):
            return self.lifecycle
        return self.names is None or item.t in self.names

    def put(self, item: Any) -> None:
        if self.ended or self.overflowed:
            return
        if self.max_pending is not None and self.queue.qsize() >= self.max_pending:
            self.overflowed = True
            # queued after the last event it took, raised when the reader gets there
            self.queue.put_nowait(SubscriptionOverflow(self.max_pending, self._last))
            return
        self._last = item
        self.queue.put_nowait(item)

    def end(self) -> None:
        self.queue.put_nowait(_END)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Any:
        if self.ended:
            raise StopAsyncIteration
        item = await self.queue.get()
        if item is _END:
            self.close()
            raise StopAsyncIteration
        if isinstance(item, SubscriptionOverflow):
            self.close()
            raise item
        return item

    def close(self) -> None:
        """Stop receiving; what is queued is dropped."""
        self.ended = True
        while not self.queue.empty():
            self.queue.get_nowait()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Delivery:
    """Handlers and subscriptions of one shard, fed in order from one queue."""

    def __init__(self, shard_id: int) -> None:
        self.shard_id = shard_id
        self.handlers: dict[str, list[Callable]] = {}
        self.subscribers: "weakref.WeakSet[Subscription]" = weakref.WeakSet()
        self.handler_tasks: set[asyncio.Task] = set()
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    # -- registration
    def on(self, name: str, fn: Callable) -> None:
        self.handlers.setdefault(name, []).append(fn)

    def off(self, name: str, fn: Callable | None = None) -> None:
        if fn is None:
            self.handlers.pop(name, None)
        else:
            self.handlers.get(name, []).remove(fn)

    def subscribe(self, names: frozenset[str] | None, lifecycle: bool,
                  max_pending: int | None = None) -> Subscription:
        sub = Subscription(names, lifecycle, max_pending)
        self.subscribers.add(sub)
        return sub

    # -- running
    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.ensure_future(self._loop())

    def put(self, item: Any) -> None:
        if self._queue is not None:
            self._queue.put_nowait(item)

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, end the iterators, let async handlers finish."""
        if self._queue is None or self._task is None:
            return
        self._queue.put_nowait(_END)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:  # pragma: no cover - a sync handler that never returns
            self._task.cancel()
        if self.handler_tasks:
            await asyncio.wait(list(self.handler_tasks), timeout=timeout)
        self._queue = None
        self._task = None

    async def _loop(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            item = await queue.get()
            if item is _END:
                for sub in list(self.subscribers):
                    sub.end()
                return
            self._deliver(item)

    def _deliver(self, item: Any) -> None:
        # a separate frame: no local keeps a subscription alive while the loop waits
        lifecycle = isinstance(item, LifecycleEvent)
        name = item.name if lifecycle else item.t
        fns = list(self.handlers.get(name, ()))
        if not lifecycle:
            fns += self.handlers.get("*", ())
        for fn in fns:
            try:
                res = fn(item)
                if inspect.isawaitable(res):
                    task = asyncio.ensure_future(res)
                    self.handler_tasks.add(task)
                    task.add_done_callback(self._handler_done)
            except Exception:
                log.exception("shard %d: handler %r for %s failed", self.shard_id, fn, name)
        for sub in list(self.subscribers):
            if sub.wants(item):
                sub.put(item)

    def _handler_done(self, task: asyncio.Task) -> None:
        self.handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("shard %d: async handler failed", self.shard_id, exc_info=task.exception())
