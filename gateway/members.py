"""Op 8 requests in flight, matched by nonce to ``GUILD_MEMBERS_CHUNK`` and ``RATE_LIMITED``
dispatches.  A chunk that does not parse or carries a bad ``chunk_count`` fails only its own
request (the event itself is delivered by the shard as usual)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import mijcodec

from .errors import GatewayProtocolError, RequestRateLimited

__all__ = ["MemberRequests"]

log = logging.getLogger("gateway.shard")


class MemberRequests:
    """Op 8 requests in flight, matched by nonce to GUILD_MEMBERS_CHUNK and RATE_LIMITED."""

    def __init__(self, shard_id: int) -> None:
        self.shard_id = shard_id
        self.pending: dict[str, tuple[asyncio.Future, dict[int, list]]] = {}

    def open(self, nonce: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.pending[nonce] = (fut, {})
        return fut

    def discard(self, nonce: str) -> None:
        self.pending.pop(nonce, None)

    def on_chunk(self, pkt: Any) -> None:
        try:
            d = pkt.d
        except mijcodec.CodecError as exc:
            log.warning("shard %d: GUILD_MEMBERS_CHUNK s=%s does not parse: %s (delivered as is)",
                        self.shard_id, pkt.s, exc)
            return
        if not isinstance(d, dict):
            return
        entry = self.pending.get(d.get("nonce"))  # type: ignore[arg-type]
        if entry is None:
            return
        fut, chunks = entry
        index, count = d.get("chunk_index", 0), d.get("chunk_count", 1)
        if isinstance(index, bool) or not isinstance(index, int) or \
                isinstance(count, bool) or not isinstance(count, int):
            if not fut.done():
                fut.set_exception(GatewayProtocolError(
                    f"GUILD_MEMBERS_CHUNK with chunk_index={index!r} chunk_count={count!r}"))
            return
        members = d.get("members")
        chunks[index] = members if isinstance(members, list) else []
        if len(chunks) >= count and not fut.done():
            fut.set_result([m for i in sorted(chunks) for m in chunks[i]])

    def on_rate_limited(self, pkt: Any) -> None:
        try:
            d = pkt.d
        except mijcodec.CodecError:
            return
        if not isinstance(d, dict):
            return
        meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
        entry = self.pending.get(meta.get("nonce"))  # type: ignore[arg-type]
        retry = d.get("retry_after")
        retry_after = float(retry) if isinstance(retry, (int, float)) and not isinstance(retry, bool) else 0.0
        log.warning("shard %d: gateway rate limited op %s (retry after %.3fs)", self.shard_id,
                    d.get("opcode"), retry_after)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(RequestRateLimited(d.get("opcode") or 8, retry_after, meta))

    def fail_all(self, exc: Exception) -> None:
        for fut, _ in self.pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self.pending.clear()
