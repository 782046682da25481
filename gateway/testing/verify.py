"""Delivery verification against the simulator's per-session logs.

:func:`verify_delivery` compares full lists (tests); :class:`DeliveryVerifier` checks as
events arrive and keeps only a count and a running hash per session, so a long demo verifies
in bounded memory."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .simulator import GatewaySimulator

__all__ = ["verify_delivery", "DeliveryVerifier"]


def verify_delivery(sim: "GatewaySimulator", received: dict[int, list[Any]]) -> tuple[int, list[str]]:
    """Compare what a client delivered with the simulator's per-session logs.

    ``received`` maps shard id to the dispatches delivered for it, in delivery order (objects
    with ``.t``, ``.s`` and ``.d``, e.g. :class:`gateway.GatewayEvent`).  Each READY starts a
    session (its ``d.session_id``); the dispatches after it must be exactly that session's log:
    nothing missing, nothing twice, same order.  Returns ``(events logged, problems)``."""
    problems: list[str] = []
    logged = 0
    for shard_id in sorted(received):
        segments: list[tuple[str, list[Any]]] = []
        for ev in received[shard_id]:
            if ev.t == "READY":
                segments.append((ev.d["session_id"], [ev]))
            elif segments:
                segments[-1][1].append(ev)
            else:
                problems.append(f"shard {shard_id}: {ev.t} s={ev.s} before any READY")
        for sid, seg in segments:
            session = sim.sessions.get(sid)
            if session is None:
                problems.append(f"shard {shard_id}: unknown session {sid}")
                continue
            logged += len(session.events)
            got = [(e.s, e.t) for e in seg]
            want = [(e.seq, e.t) for e in session.events]
            if got != want:
                seqs = [e.s for e in seg]
                dup = len(seqs) - len(set(seqs))
                missing = sorted({w[0] for w in want} - set(seqs))
                problems.append(
                    f"shard {shard_id} session {sid}: delivered {len(got)}, logged {len(want)}, "
                    f"duplicates {dup}, missing {missing[:10]}, in order {seqs == sorted(seqs)}")
    return logged, problems


class _Segment:
    __slots__ = ("session_id", "count", "digest", "next_s", "problems")

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.count = 0
        self.digest = 0
        self.next_s = 1
        self.problems = 0


class DeliveryVerifier:
    """``verifier.add(ev)`` for every dispatch a client delivered (a ``"*"`` handler), then
    ``verifier.verify(sim)``: the same answer as :func:`verify_delivery` (``(events logged,
    problems)``) with O(sessions) memory.  Each READY starts a segment; within it the ``s``
    must run 1, 2, 3... and the running hash of ``(s, t)`` must equal the session's."""

    def __init__(self) -> None:
        self.segments: dict[int, list[_Segment]] = {}
        self.delivered = 0
        self.problems: list[str] = []

    @property
    def sessions(self) -> int:
        return sum(len(v) for v in self.segments.values())

    def add(self, ev: Any) -> None:
        self.delivered += 1
        segs = self.segments.setdefault(ev.shard_id, [])
        if ev.t == "READY":
            segs.append(_Segment(ev.d["session_id"]))
        if not segs:
            self._problem(f"shard {ev.shard_id}: {ev.t} s={ev.s} before any READY")
            return
        seg = segs[-1]
        if ev.s != seg.next_s and seg.problems < 5:
            seg.problems += 1
            self._problem(f"shard {ev.shard_id} session {seg.session_id}: s={ev.s} where "
                          f"{seg.next_s} was next")
        seg.next_s = (ev.s or 0) + 1
        seg.count += 1
        seg.digest = hash((seg.digest, ev.s, ev.t))

    def _problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)

    def verify(self, sim: "GatewaySimulator") -> tuple[int, list[str]]:
        problems = list(self.problems)
        logged = 0
        for shard_id in sorted(self.segments):
            for seg in self.segments[shard_id]:
                session = sim.sessions.get(seg.session_id)
                if session is None:
                    problems.append(f"shard {shard_id}: unknown session {seg.session_id}")
                    continue
                logged += session.seq
                if seg.count != session.seq or seg.digest != session.digest:
                    problems.append(
                        f"shard {shard_id} session {seg.session_id}: delivered {seg.count}, "
                        f"logged {session.seq}, same order and content: "
                        f"{seg.digest == session.digest}")
        return logged, problems
