"""The gateway's exceptions (one family under :class:`GatewayError`)."""
from __future__ import annotations

__all__ = ["GatewayError", "GatewayClosedFatal", "GatewayAuthError", "GatewayProtocolError",
           "RequestRateLimited", "SubscriptionOverflow"]


class GatewayError(Exception):
    """Base class of the gateway errors."""


class GatewayClosedFatal(GatewayError):
    """The gateway closed the connection with a code after which reconnecting is pointless."""

    def __init__(self, code: int, reason: str = "", shard_id: int | None = None) -> None:
        from .policy import FATAL_CLOSE_CODES
        self.code = code
        self.reason = reason
        self.shard_id = shard_id
        meaning = FATAL_CLOSE_CODES.get(code, "fatal close")
        where = f"shard {shard_id}: " if shard_id is not None else ""
        super().__init__(f"{where}gateway closed with {code} ({meaning}): {reason or '-'}")


class GatewayAuthError(GatewayError):
    """REST ``/gateway/bot`` refused the token (HTTP 401)."""


class GatewayProtocolError(GatewayError):
    """The server sent a payload the protocol does not allow (a HELLO without a usable
    ``heartbeat_interval``, a READY whose ``d`` is not an object...).  The shard logs one
    warning line and reconnects with backoff; this is what ``disconnected``'s ``why`` names."""


class RequestRateLimited(GatewayError):
    """The gateway answered a request (op 8) with a ``RATE_LIMITED`` dispatch."""

    def __init__(self, opcode: int, retry_after: float, meta: dict | None = None) -> None:
        self.opcode = opcode
        self.retry_after = retry_after
        self.meta = meta or {}
        super().__init__(f"op {opcode} rate limited by the gateway; retry after {retry_after:.3f}s")


class SubscriptionOverflow(GatewayError):
    """An ``events()`` iterator fell ``max_pending`` events behind.  It stopped taking events
    then; it still yields every event it had taken, and raises this after the last of them.
    ``last`` is that last event (None if it took none): the events after it did not reach this
    iterator (handlers, sinks and other iterators are not affected)."""

    def __init__(self, max_pending: int, last: object = None) -> None:
        self.max_pending = max_pending
        self.last = last
        where = f" after {last!r}" if last is not None else ""
        super().__init__(f"events() iterator fell {max_pending} events behind and stopped "
                         f"taking events{where}; read faster, or raise max_pending")
