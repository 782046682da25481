"""Realistic dispatches for the simulator: :func:`make_event` and :class:`EventSource`
(events per second to every valid session)."""
from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .simulator import GatewaySimulator

__all__ = ["make_event", "EventSource", "guild_create", "member"]

_WORDS = ("the gateway never sleeps heartbeat ack resume replay shard zlib zstd frame "
          "sequence dispatch guild channel member presence typing message hello world").split()


def _snowflake(rng: random.Random) -> str:
    return str((int(time.time() * 1000) - 1420070400000) << 22 | rng.getrandbits(22))


def _user(rng: random.Random) -> dict:
    uid = rng.randrange(10**17, 10**18)
    return {"id": str(uid), "username": f"user{uid % 100000}", "global_name": None,
            "discriminator": "0", "avatar": f"{rng.getrandbits(128):032x}", "public_flags": 0}


def member(uid: int, name: str) -> dict:
    return {"user": {"id": str(uid), "username": name, "discriminator": "0", "avatar": None},
            "roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": False,
            "mute": False, "flags": 0}


def guild_create(rng: random.Random, guild_id: str) -> dict:
    channels = [{"id": _snowflake(rng), "type": 0, "name": f"channel-{i}", "position": i,
                 "permission_overwrites": [], "topic": None} for i in range(8)]
    members = [{"user": _user(rng), "roles": [], "joined_at": "2024-01-01T00:00:00+00:00",
                "deaf": False, "mute": False} for _ in range(10)]
    return {"id": guild_id, "name": f"guild {guild_id}", "icon": None, "owner_id": _snowflake(rng),
            "member_count": 2500, "large": True, "unavailable": False, "channels": channels,
            "members": members, "roles": [{"id": guild_id, "name": "@everyone", "permissions": "0"}],
            "presences": [], "voice_states": [], "threads": [], "features": ["COMMUNITY"],
            "joined_at": "2024-01-01T00:00:00+00:00"}


def make_event(rng: random.Random, n: int = 0) -> tuple[str, dict]:
    """A realistic dispatch ``(t, d)``; ``n`` is stored in the payload (``"_n"``)."""
    guild_id = str(1_000_000 + rng.randrange(3))
    r = rng.random()
    if r < 0.5:
        content = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(1, 40)))
        return "MESSAGE_CREATE", {
            "type": 0, "tts": False, "timestamp": "2026-11-27T20:00:00.000000+00:00",
            "pinned": False, "mentions": [], "mention_roles": [], "mention_everyone": False,
            "id": _snowflake(rng), "flags": 0, "embeds": [], "edited_timestamp": None,
            "content": content, "components": [], "channel_id": _snowflake(rng),
            "author": _user(rng), "attachments": [], "guild_id": guild_id,
            "member": {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00"}, "_n": n}
    if r < 0.75:
        return "PRESENCE_UPDATE", {
            "user": {"id": _snowflake(rng)}, "status": rng.choice(["online", "idle", "dnd"]),
            "guild_id": guild_id, "client_status": {"desktop": "online"},
            "activities": [{"name": "Custom Status", "type": 4, "state": rng.choice(_WORDS)}],
            "_n": n}
    if r < 0.9:
        return "TYPING_START", {"user_id": _snowflake(rng), "timestamp": int(time.time()),
                                "channel_id": _snowflake(rng), "guild_id": guild_id, "_n": n}
    if r < 0.97:
        return "MESSAGE_REACTION_ADD", {"user_id": _snowflake(rng), "type": 0,
                                        "message_id": _snowflake(rng), "channel_id": _snowflake(rng),
                                        "guild_id": guild_id, "emoji": {"id": None, "name": "👍"},
                                        "_n": n}
    return "GUILD_CREATE", dict(guild_create(rng, guild_id), _n=n)


class EventSource:
    """Emits realistic dispatches to every valid session at ``rate`` events per second."""

    def __init__(self, sim: "GatewaySimulator", rate: float, *, seed: int | None = None) -> None:
        self.sim = sim
        self.rate = rate
        self.rng = random.Random(seed)
        self.emitted = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        tick = 0.01
        budget = 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            budget += (now - last) * self.rate
            last = now
            while budget >= 1:
                budget -= 1
                self.emitted += 1
                t, d = make_event(self.rng, self.emitted)
                self.sim.dispatch(t, d)
