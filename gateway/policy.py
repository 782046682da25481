"""What the shard does after a connection ends, as data: the close-code table, the shard's
states, and :class:`Ending` (why a connection ended and what comes next).

The connection loop in :mod:`gateway.shard` never decides by string or exception: every way a
connection can end produces one :class:`Ending`, and :meth:`Ending.after` is the whole
reconnect decision.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "ShardState", "Next", "CloseCode", "Ending", "CLOSE_CODE_POLICY", "FATAL_CLOSE_CODES",
    "IDENTIFY_ANEW_CLOSE_CODES", "ZOMBIE_CLOSE_CODE", "RECONNECT_CLOSE_CODE", "classify_close",
]


class ShardState(enum.Enum):
    """Where a shard is (``shard.state``)."""

    IDLE = "idle"                     # created, never started
    CONNECTING = "connecting"         # websocket handshake
    WAITING_HELLO = "waiting_hello"   # connected, no HELLO yet
    IDENTIFYING = "identifying"       # waiting for the identify queue / READY
    RESUMING = "resuming"             # RESUME sent, waiting for RESUMED
    ACTIVE = "active"                 # session established: dispatches flow, sends go out
    DISCONNECTED = "disconnected"     # between connections (backoff, op 9 wait, sink wait)
    CLOSING = "closing"               # close() called
    STOPPED = "stopped"               # run() returned (closed by the user)
    FATAL = "fatal"                   # run() raised GatewayClosedFatal


class Next(enum.Enum):
    """What follows a connection."""

    RESUME = "resume"       # reconnect, RESUME the session (IDENTIFY when there is none)
    IDENTIFY = "identify"   # the session is gone: forget it, reconnect, IDENTIFY
    FATAL = "fatal"         # stop with GatewayClosedFatal
    STOP = "stop"           # closed by the user


class CloseCode(enum.IntEnum):
    """Discord's close codes (and the two this client sends)."""

    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014
    #: sent by this client: zombie connection (no ACK)
    ZOMBIE = 4900
    #: sent by this client: any other reconnect that keeps the session
    RECONNECT = 4901


#: close code -> (what follows, meaning); codes not listed (and dropped connections) RESUME
CLOSE_CODE_POLICY: dict[int, tuple[Next, str]] = {
    4004: (Next.FATAL, "authentication failed"),
    4010: (Next.FATAL, "invalid shard"),
    4011: (Next.FATAL, "sharding required"),
    4012: (Next.FATAL, "invalid API version"),
    4013: (Next.FATAL, "invalid intents"),
    4014: (Next.FATAL, "disallowed intents"),
    4007: (Next.IDENTIFY, "invalid seq"),
    4009: (Next.IDENTIFY, "session timed out"),
}

#: close codes after which the shard stops with :class:`GatewayClosedFatal` (no retry)
FATAL_CLOSE_CODES: dict[int, str] = {c: m for c, (n, m) in CLOSE_CODE_POLICY.items()
                                     if n is Next.FATAL}
#: close codes after which the session is gone: reconnect and IDENTIFY anew
IDENTIFY_ANEW_CLOSE_CODES: dict[int, str] = {c: m for c, (n, m) in CLOSE_CODE_POLICY.items()
                                             if n is Next.IDENTIFY}
ZOMBIE_CLOSE_CODE = int(CloseCode.ZOMBIE)
RECONNECT_CLOSE_CODE = int(CloseCode.RECONNECT)


def classify_close(code: int | None) -> str:
    """``"fatal"``, ``"identify"`` (session gone) or ``"resume"`` for a close code from the
    server (None = dropped connection)."""
    return next_after_close(code).value


def next_after_close(code: int | None) -> Next:
    entry = CLOSE_CODE_POLICY.get(code) if code is not None else None
    return entry[0] if entry is not None else Next.RESUME


@dataclass
class Ending:
    """Why one connection ended and what follows.

    ``send_code``: the code this client closes with (None: the server closed or the TCP
    connection dropped); ``code``/``reason``: the close frame received; ``delay``: a fixed wait
    (op 9's 1-5 s) instead of the backoff.  A connection that ended before it was *stable*
    (session established, and an ACK or ``stable_after`` seconds up) always counts toward the
    backoff, whatever ended it: no server behaviour can make the shard reconnect in a tight loop.
    """

    next: Next
    why: str
    send_code: int | None = RECONNECT_CLOSE_CODE
    code: int | None = None
    reason: str = ""
    delay: float | None = None
    #: ended by this client's own backpressure (a full event sink): not a failure of the server
    #: or of the URL, so neither a backoff step nor a resume-URL fallback
    backpressure: bool = False

    @classmethod
    def server_closed(cls, code: int | None, reason: str = "") -> "Ending":
        return cls(next_after_close(code), f"server closed with {code}", send_code=None,
                   code=code, reason=reason)

    @property
    def close_code(self) -> int | None:
        """The code this connection ended with (received, else sent)."""
        return self.code if self.code is not None else self.send_code
