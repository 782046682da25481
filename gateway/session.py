"""The session a shard keeps across connections: id, acknowledged ``seq``, resume URL.

Why not ``Decoder.seq``: the codec's ``seq`` is the ``s`` of the last dispatch *decoded*,
replayed duplicates included (it moves backwards on a replay) and before anything was done with
the event.  The shard's ``seq`` is the last dispatch *handed on* (to the sink and the delivery
queue): that is what heartbeats and RESUME acknowledge, so an event whose hand-off failed is
replayed instead of lost.  :class:`SessionTracker` holds that number and the de-duplication.
"""
from __future__ import annotations

from typing import Any

from .protocols import SessionState

__all__ = ["SessionTracker", "SessionState"]


class SessionTracker:
    def __init__(self, shard_id: int, shard_count: int) -> None:
        self.shard_id = shard_id
        self.shard_count = shard_count
        self.session_id: str | None = None
        self.seq: int | None = None
        self.resume_gateway_url: str | None = None
        #: the resume URL failed (no connect, or ended before RESUMED): use the gateway URL
        #: until a new READY names a new one
        self.resume_url_failed = False

    @property
    def resumable(self) -> bool:
        return self.session_id is not None

    def resume_url(self) -> str | None:
        if self.resumable and self.resume_gateway_url and not self.resume_url_failed:
            return self.resume_gateway_url
        return None

    def state(self) -> SessionState:
        return SessionState(self.shard_id, self.shard_count, self.session_id, self.seq,
                            self.resume_gateway_url)

    def restore(self, state: SessionState) -> None:
        if state.shard_id != self.shard_id or state.shard_count != self.shard_count:
            raise ValueError("session state belongs to another shard")
        self.session_id = state.session_id
        self.seq = state.seq
        self.resume_gateway_url = state.resume_gateway_url
        self.resume_url_failed = False

    def forget(self) -> None:
        self.session_id = None
        self.seq = None
        self.resume_gateway_url = None
        self.resume_url_failed = False

    def start_identify(self) -> None:
        """An IDENTIFY starts a new numbering."""
        self.seq = None

    def is_duplicate(self, s: Any) -> bool:
        """A replayed dispatch (``s`` not after the acknowledged ``seq``)."""
        return isinstance(s, int) and self.seq is not None and s <= self.seq

    def is_gap(self, s: Any) -> bool:
        return isinstance(s, int) and self.seq is not None and s != self.seq + 1

    def established(self, session_id: str, resume_gateway_url: str | None) -> None:
        """READY: a new session (numbering from 1 when the id changed)."""
        if session_id != self.session_id:
            self.seq = None
        self.session_id = session_id
        self.resume_gateway_url = resume_gateway_url or None
        self.resume_url_failed = False

    def acknowledge(self, s: Any) -> None:
        """The dispatch ``s`` was handed on."""
        if isinstance(s, int):
            self.seq = s
