"""Bridge processes (``python -m gateway bridge``) against the in-process simulator."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tempfile
import time
from typing import Any


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Bridge:
    """One ``python -m gateway bridge`` process; its stderr goes to a file."""

    def __init__(self, sim: Any, redis_url: str, *extra: str, ttl: float = 2.0,
                 identify_period: float = 0.5, name: str = "bridge") -> None:
        self.sim = sim
        self.name = name
        self.args = [sys.executable, "-m", "gateway", "bridge", "--redis", redis_url,
                     "--token", sim.token, "--api-url", sim.api_url, "--compress", "zlib-stream",
                     "--lease-ttl", str(ttl), "--identify-period", str(identify_period), *extra]
        fd, self.log_path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        os.close(fd)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> "Bridge":
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self._log = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=self._log)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def text(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def owned(self) -> set[int]:
        """Shards this process runs now, from its lifecycle lines."""
        own: set[int] = set()
        for m in re.finditer(r"\[bridge\] (acquired|takeover|released|lost) shard (\d+)", self.text()):
            if m.group(1) in ("acquired", "takeover"):
                own.add(int(m.group(2)))
            else:
                own.discard(int(m.group(2)))
        return own

    def ever_owned(self) -> set[int]:
        return {int(m.group(1)) for m in re.finditer(
            r"\[bridge\] (?:acquired|takeover) shard (\d+)", self.text())}

    def takeovers(self) -> set[int]:
        return {int(m.group(1)) for m in re.finditer(r"\[bridge\] takeover shard (\d+)", self.text())}

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def cleanup(self) -> None:
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


async def wait_until(pred, timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        res = pred()
        if asyncio.iscoroutine(res):
            res = await res
        if res:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)


def shard_of(sim: Any, conn: Any) -> int | None:
    """The shard a simulator connection served (its IDENTIFY's shard or its RESUME's session)."""
    for p in conn.received:
        if p.op == 2 and isinstance(p.d, dict):
            return int(p.d["shard"][0])
        if p.op == 6 and isinstance(p.d, dict):
            s = sim.sessions.get(p.d.get("session_id"))
            if s is not None:
                return int(s.shard[0])
    return None


def assert_never_two_connections(sim: Any) -> None:
    """Per shard, the simulator's connections (open .. closed) never overlap in time, and no
    session was ever resumed over a still open connection."""
    by_shard: dict[int, list[tuple[float, float, int]]] = {}
    now = time.monotonic()
    for c in sim.connections:
        sh = shard_of(sim, c)
        if sh is None:
            continue
        by_shard.setdefault(sh, []).append((c.opened_at, c.closed_at or now, c.id))
        assert c.server_close_code != 4000, f"connection {c.id}: session resumed elsewhere"
    for sh, spans in by_shard.items():
        spans.sort()
        for (a0, a1, ida), (b0, b1, idb) in zip(spans, spans[1:]):
            assert b0 >= a1, (f"shard {sh}: connection {idb} opened at {b0:.3f} while "
                              f"{ida} was open until {a1:.3f}")


async def read_streams(redis: Any, prefix: str = "gateway") -> list[tuple[bytes, str, int, int, str, bytes]]:
    """Every entry of every ``{prefix}:events:*`` stream as (id, t, shard, s, session, d), in
    publication order (entry ids come from one Redis clock; ties broken by sequence part)."""
    out = []
    async for key in redis.scan_iter(match=f"{prefix}:events:*", _type="stream"):
        name = key.decode()[len(prefix) + 8:]
        for eid, f in await redis.xrange(key):
            out.append((eid, name, int(f[b"shard"]), int(f[b"s"]), f[b"session"].decode(), f[b"d"]))
    out.sort(key=lambda e: tuple(int(x) for x in e[0].split(b"-")))
    return out


def check_exactly_once(sim: Any, entries: list) -> int:
    """Every dispatch of every simulator session is in the streams exactly once, in order per
    (shard, session), with d byte for byte as sent; returns how many were checked.

    Order: within each stream the entries of a session have increasing ``s``; across streams
    (whose ids share only the millisecond part) ``s`` order never goes back in time."""
    got: dict[str, list] = {}
    for eid, t, shard, s, session, d in entries:
        ms, n = (int(x) for x in eid.split(b"-"))
        got.setdefault(session, []).append(((ms, n), shard, s, t, d))
    problems = []
    total = 0
    for sid, sess in sim.sessions.items():
        assert sess.base == 0, "the simulator trimmed its log: cannot check"
        want = [(sess.shard[0], e.seq, e.t) for e in sess.events]
        have = got.pop(sid, [])
        total += len(want)
        seqs = [x[2] for x in have]
        per_stream: dict[str, list] = {}
        for eid, _, s, t, _ in have:
            per_stream.setdefault(t, []).append((eid, s))
        ordered = all([s for _, s in sorted(v)] == sorted(s for _, s in v)
                      for v in per_stream.values())
        by_s = sorted(have, key=lambda x: x[2])
        ordered = ordered and all(a[0][0] <= b[0][0] for a, b in zip(by_s, by_s[1:]))
        if [(sh, s, t) for _, sh, s, t, _ in by_s] != want or not ordered:
            problems.append(f"session {sid} shard {sess.shard[0]}: {len(have)} published of "
                            f"{len(want)}, duplicates {len(seqs) - len(set(seqs))}, missing "
                            f"{sorted(set(range(1, len(want) + 1)) - set(seqs))[:10]}, in order "
                            f"{ordered}")
            continue
        for (_, _, s, t, d), e in zip(by_s, sess.events):
            # byte for byte the text the simulator sent for d
            if d != e.raw:
                problems.append(f"session {sid} s={s}: d differs from what was sent")
                break
    if got:
        problems.append(f"published for unknown sessions: {sorted(got)}")
    assert not problems, "\n".join(problems)
    return total


async def wait_published(sim: Any, redis: Any, timeout: float = 30.0, prefix: str = "gateway") -> None:
    """Until the published seq of every valid session's shard reached the session's last s."""
    async def done() -> bool:
        for sid, sess in sim.sessions.items():
            if not sess.valid:
                continue
            ps, pq = await redis.hmget(f"{prefix}:session:{sess.shard[0]}", "pub_session", "pub_seq")
            if ps is None or ps.decode() != sid or int(pq) != sess.seq:
                return False
        return True
    await wait_until(done, timeout, "every dispatch published", step=0.1)
