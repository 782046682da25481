"""``shard.decoder``: the shard's decoder, read-only (see :mod:`gateway.shard` for why the
shard feeds and dispatches itself)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .shard import Shard

__all__ = ["DecoderView"]


class DecoderView:
    """``shard.decoder``: the shard's decoder, read-only.  ``on(name, fn)``/``off`` register
    de-duplicated dispatch handlers on the shard (``Shard.on``); opcode handlers, ``feed`` and
    ``reset`` belong to the shard alone."""

    def __init__(self, shard: "Shard") -> None:
        self._shard = shard

    @property
    def compress(self) -> str | None:
        return self._shard._decoder.compress

    @property
    def seq(self) -> int | None:
        """The shard's acknowledged seq (not the decoder's last-seen one)."""
        return self._shard.seq

    def __getattr__(self, name: str) -> Any:
        if name in ("payloads", "bytes_in", "bytes_out", "max_payload_size", "poisoned",
                    "buffer_size"):
            return getattr(self._shard._decoder, name)
        raise AttributeError(f"shard.decoder has no {name!r}: the shard feeds its decoder")

    def on(self, key: str, handler: Callable | None = None) -> Any:
        if not isinstance(key, str):
            raise TypeError("shard.decoder.on takes a dispatch name; opcodes belong to the shard")
        return self._shard.on(key, handler)

    def off(self, key: str, handler: Callable | None = None) -> None:
        self._shard.off(key, handler)
