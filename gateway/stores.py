"""In-process :class:`~gateway.protocols.SessionStore` implementations.

:class:`MemorySessionStore` keeps states in a dict (this process only).
:class:`FileSessionStore` keeps them in one JSON file, the ``--state-file`` format
(``{"version": 1, "sessions": [SessionState.to_dict(), ...]}``), written atomically on every
change, so a restarted process RESUMEs.  Neither stores the token.
"""
from __future__ import annotations

import json
import os
from typing import Iterable

from .protocols import SessionState

__all__ = ["MemorySessionStore", "FileSessionStore", "save_sessions", "load_sessions"]


def save_sessions(path: str, states: Iterable[SessionState]) -> None:
    """Write session states as JSON (atomically)."""
    data = {"version": 1, "sessions": [s.to_dict() for s in states]}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def load_sessions(path: str) -> dict[int, SessionState]:
    """The states in ``path`` by shard id ({} when the file does not exist)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    return {int(d["shard_id"]): SessionState.from_dict(d) for d in data.get("sessions", [])}


class MemorySessionStore:
    def __init__(self, states: Iterable[SessionState] = ()) -> None:
        self.states: dict[int, SessionState] = {s.shard_id: s for s in states}

    async def load(self, shard_id: int, shard_count: int) -> SessionState | None:
        state = self.states.get(shard_id)
        if state is None or state.shard_count != shard_count or not state.session_id:
            return None
        return SessionState.from_dict(state.to_dict())

    async def save(self, state: SessionState) -> None:
        if not state.session_id:
            self.states.pop(state.shard_id, None)
        else:
            self.states[state.shard_id] = SessionState.from_dict(state.to_dict())

    async def clear(self, shard_id: int) -> None:
        self.states.pop(shard_id, None)

    async def close(self) -> None:
        pass


class FileSessionStore(MemorySessionStore):
    """A :class:`MemorySessionStore` mirrored to ``path``.  The file is read once, at the first
    :meth:`load` (or at construction with ``eager=True``), and rewritten on every change."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._loaded = False

    def _ensure(self) -> None:
        if not self._loaded:
            self.states = load_sessions(self.path)
            self._loaded = True

    def _write(self) -> None:
        save_sessions(self.path, [self.states[i] for i in sorted(self.states)])

    async def load(self, shard_id: int, shard_count: int) -> SessionState | None:
        self._ensure()
        return await super().load(shard_id, shard_count)

    async def save(self, state: SessionState) -> None:
        self._ensure()
        await super().save(state)
        self._write()

    async def clear(self, shard_id: int) -> None:
        self._ensure()
        await super().clear(shard_id)
        self._write()
