"""Drop-in mijcodec decoding for existing Discord libraries.

One call makes a library decode its gateway traffic with mijcodec, without
changing anything else in the bot::

    import mijcodec.compat.discord_py
    mijcodec.compat.discord_py.install()      # discord.py >= 2.5

    import mijcodec.compat.hikari
    mijcodec.compat.hikari.install()          # hikari >= 2.5

    import mijcodec.compat.pycord             # or .nextcord, .disnake
    mijcodec.compat.pycord.install()          # py-cord >= 2.6, nextcord >= 3.0, disnake >= 2.9

Each ``install()`` is idempotent, keeps the compression the library would
negotiate on its own unless ``compress=`` asks for another one, logs (logger
``mijcodec.compat``) which mijcodec implementation is in use, and refuses an
unsupported library version, or one that lacks any private name the drop-in
relies on (each is checked first), with :class:`UnsupportedLibraryError`
before patching anything. ``uninstall()`` puts the library back; connections opened
while installed keep decoding with mijcodec until they end.

What is and is not covered (see each module's docstring for details):

- discord.py >= 2.5: zlib-stream and zstd-stream, through discord.py's own
  pluggable ``discord.utils._ActiveDecompressionContext``, its
  ``received_message`` and ``discord.utils._from_json``. Covers ``Client`` and
  ``AutoShardedClient``.
- hikari >= 2.5: the ``zlib-stream`` and ``zstd-stream`` gateway transports and
  the gateway's JSON parse (``loads``).
- py-cord, nextcord, disnake: each inflates zlib inline in
  ``DiscordWebSocket.received_message`` (no context class, no zstd); the
  drop-in gives every websocket its own ``received_message`` that decodes
  with mijcodec and hands the library's the text, and gives them zstd-stream
  with ``install(compress="zstd-stream")``. What the discord.py family
  shares lives in :mod:`mijcodec.compat._dpy_family`.

discord.py and py-cord both install the import name ``discord``; the drop-ins
tell them apart by distribution (importlib.metadata), and each refuses the
other's, naming the module to use.

The submodules import their library only inside ``install()``, so importing
them never requires the library to be installed.
"""

from __future__ import annotations

import logging
import re
from typing import Optional, Tuple

__all__ = ["UnsupportedLibraryError", "COMPRESS_CHOICES", "logger"]

#: Every compat module logs here.
logger = logging.getLogger("mijcodec.compat")

#: Values ``install(compress=...)`` accepts besides None (keep the library's choice).
COMPRESS_CHOICES = ("zlib-stream", "zstd-stream")


class UnsupportedLibraryError(RuntimeError):
    """The installed library (or its version) cannot be patched; nothing was changed."""


_VERSION_RE = re.compile(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def _parse_version(text: str) -> Optional[Tuple[int, int, int]]:
    """``"2.7.1"`` -> ``(2, 7, 1)``; pre-release/local suffixes are ignored
    (``"2.8.0a123+gabc"`` -> ``(2, 8, 0)``). None when there is no leading number."""
    m = _VERSION_RE.match(str(text))
    if m is None:
        return None
    return tuple(int(part) if part is not None else 0 for part in m.groups())  # type: ignore[return-value]


def _require_version(library: str, version: str, minimum: Tuple[int, int]) -> None:
    parsed = _parse_version(version)
    if parsed is None or parsed[:2] < minimum:
        raise UnsupportedLibraryError(
            f"mijcodec.compat needs {library} >= {minimum[0]}.{minimum[1]}, but {library} {version!r} "
            f"is installed; nothing was patched"
        )


def _check_compress(compress: Optional[str]) -> None:
    if compress is not None and compress not in COMPRESS_CHOICES:
        raise ValueError(f"compress must be None (keep the library's choice), 'zlib-stream' or 'zstd-stream', not {compress!r}")


def _check_decoder_supports(compress: str) -> None:
    """Raise before patching if this mijcodec build cannot decode ``compress``."""
    from mijcodec import Decoder

    try:
        Decoder(compress)
    except ValueError as exc:
        raise UnsupportedLibraryError(f"mijcodec cannot decode {compress} here: {exc}; nothing was patched") from None


def _implementation() -> str:
    import mijcodec

    return str(getattr(mijcodec, "IMPLEMENTATION", "unknown"))
