"""mijcodec for discord.py (>= 2.5): one call, no other change to the bot.

::

    import mijcodec.compat.discord_py
    mijcodec.compat.discord_py.install()          # before client.run()/start()

What ``install(compress=None)`` patches (``uninstall()`` restores all three):

``discord.utils._ActiveDecompressionContext``
    discord.py's own pluggable decompression context (a class with
    ``COMPRESSION_TYPE`` and ``decompress(bytes) -> str | None``; one instance
    per websocket, made in ``DiscordWebSocket.__init__``; the gateway URL's
    ``compress=`` comes from its ``COMPRESSION_TYPE``). It becomes
    :class:`ZlibStreamContext` or :class:`ZstdStreamContext`, each backed by a
    :class:`mijcodec.Decoder`. ``decompress`` still returns the payload as a
    ``str`` (so ``on_socket_raw_receive`` still gets a ``str``) or None while a
    zlib-stream payload is incomplete. The compression is the one discord.py
    picks by itself (zstd-stream when ``zstandard`` or ``compression.zstd``
    imports, else zlib-stream) unless ``compress=`` says otherwise.

``discord.utils._from_json``
    Handed the very ``str`` object a mijcodec context has just returned (an
    identity check, never equality), it parses that payload's *bytes* with
    orjson (whatever discord.py's own ``_from_json`` is): the same dict
    discord.py's parse of the text gives, without orjson re-encoding a
    non-ASCII str to UTF-8 first. A payload not in Discord's canonical
    envelope order (``{"t":..`` first) was already parsed whole by mijcodec;
    then the envelope ``{"t", "s", "op", "d"}`` is built from that packet
    instead (an absent ``t``/``s``/``d`` present as None; discord.py reads
    them with ``.get``). Invalid JSON raises :class:`mijcodec.DecodeError`.
    One-shot: a second call with the same object parses normally, so nobody
    ever shares a dict. Any other argument (REST responses, text frames, ...)
    goes to discord.py's original.

``discord.gateway.DiscordWebSocket.received_message``
    Wrapped so that a :class:`mijcodec.CodecError` from a mijcodec context
    (a corrupt or truncated compressed frame, a payload over the size cap, a
    payload that is not a gateway JSON object) ends the connection discord.py's
    own way for op 7 RECONNECT: ``ws.close(4000)`` (stops the heartbeat thread;
    a non-1000 code keeps the session resumable) and ``ReconnectWebSocket``,
    which ``Client.connect`` / ``AutoShardedClient`` turn into a new connection
    that RESUMEs, so the server replays every event after the last sequence
    number. Stock discord.py lets ``zlib.error`` escape and the client dies.
    A second codec error on the same client and shard within 5 seconds waits
    a random 1-5 s first, so a server that keeps sending bad data cannot
    drive a hot reconnect loop.

Fixed with ``install()`` in effect (reproduced against stock discord.py 2.7):

- a zlib-stream payload whose ``00 00 ff ff`` suffix is split across two
  websocket messages: stock discord.py only checks the last 4 bytes of the
  newest message, misses the end and glues two payloads together; mijcodec
  checks the accumulated data;
- a corrupt compressed frame: reconnect and RESUME instead of a dead client;
- zstd-stream from a server that closes one zstd frame per payload
  (Spacebar): stock discord.py with ``zstandard`` fails on the second payload
  ("cannot use a decompressobj multiple times"); mijcodec starts the next frame.

Limits, honestly stated:

- A corrupt HELLO on the very first connection of a plain ``Client``: discord.py
  itself cannot handle *any* error before its first websocket exists
  (``Client.connect`` reads ``self.ws.sequence`` while ``self.ws`` is None). The
  wrapper therefore registers the failing websocket as ``client.ws`` when it is
  still None, and asks for a fresh IDENTIFY (there is no session to resume).
- ``uninstall()`` affects new connections; a connection opened while installed
  keeps its mijcodec context until it ends (and, after uninstall, a codec error
  on it escapes as in stock discord.py).
- Voice websockets are untouched (they are not compressed).

:func:`stats` counts what went through mijcodec (connections, payloads, codec
errors turned into reconnects), so a bot or a test can see it is in use.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any, Dict, Optional, Tuple

import orjson

from mijcodec import CodecError, DecodeError, Decoder

from . import (
    _check_compress,
    _check_decoder_supports,
    _implementation,
    _require_version,
    UnsupportedLibraryError,
    logger,
)

__all__ = [
    "install",
    "uninstall",
    "is_installed",
    "stats",
    "ZlibStreamContext",
    "ZstdStreamContext",
    "MIN_VERSION",
]

#: Oldest discord.py with ``_ActiveDecompressionContext`` and ``_from_json`` as used here.
MIN_VERSION = (2, 5)

# -- counters ------------------------------------------------------------------
# Plain ints in a list: incremented once per connection / payload / error.
_CONNECTIONS, _PAYLOADS, _ERRORS = 0, 1, 2
_counters = [0, 0, 0]


def stats() -> Dict[str, int]:
    """What mijcodec decoded for discord.py in this process (cumulative,
    survives uninstall): ``connections`` (contexts made), ``payloads`` (payloads
    returned to discord.py), ``codec_errors`` (connections ended by a codec error)."""
    return {
        "connections": _counters[_CONNECTIONS],
        "payloads": _counters[_PAYLOADS],
        "codec_errors": _counters[_ERRORS],
    }


# -- the decompression contexts ------------------------------------------------

# The last (text, packet) a context returned, for the one-shot _from_json fast
# path. One tuple, replaced and read atomically, so a reader in another thread
# always sees a matching pair; correctness rests on the identity check alone.
# _NOTHING's first item is a private object nobody can pass to _from_json.
_NOTHING: Tuple[Any, Any] = (object(), None)
_pending: Tuple[Any, Any] = _NOTHING

# The start of Discord's canonical envelope {"t":..,"s":..,"op":..,"d":..}.
_CANONICAL = b'{"t":'
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


class _MijcodecContext:
    """discord.py decompression context backed by :class:`mijcodec.Decoder`."""

    __slots__ = ("decoder", "_feed")

    COMPRESSION_TYPE: str = ""

    def __init__(self) -> None:
        self.decoder = Decoder(self.COMPRESSION_TYPE)
        self._feed = self.decoder.feed  # bound once: decompress() runs per message
        _counters[_CONNECTIONS] += 1

    def decompress(self, data: bytes, /) -> Optional[str]:
        global _pending
        pkt = self._feed(data)  # CodecError propagates: see _received_message
        if pkt is None:
            return None
        try:
            text = pkt.raw.decode()  # UTF-8, strict (the default; a little faster than naming it)
        except UnicodeDecodeError as exc:
            raise DecodeError(f"payload is not valid UTF-8: {exc}") from None
        _pending = (text, pkt)
        _counters[1] += 1  # _PAYLOADS (a literal: this runs per message)
        return text


class ZlibStreamContext(_MijcodecContext):
    """``zlib-stream``: buffers until the accumulated data ends with ``00 00 ff ff``."""

    __slots__ = ()
    COMPRESSION_TYPE = "zlib-stream"


class ZstdStreamContext(_MijcodecContext):
    """``zstd-stream``: one payload per message, open frames (Discord) or one
    closed frame per payload (Spacebar) alike."""

    __slots__ = ()
    COMPRESSION_TYPE = "zstd-stream"


_CONTEXTS = {"zlib-stream": ZlibStreamContext, "zstd-stream": ZstdStreamContext}


# -- patched functions -----------------------------------------------------------

_lock = threading.RLock()
_originals: Dict[str, Any] = {}  # non-empty while installed


def _make_from_json(original: Any) -> Any:
    def _from_json(data: Any, /) -> Any:
        global _pending
        text, pkt = _pending
        if text is data:
            _pending = _NOTHING
            raw = pkt.raw
            if raw.startswith(_CANONICAL):
                # Discord's envelope order: mijcodec has only scanned it and
                # not parsed d yet. One orjson pass over the bytes is the
                # cheapest way to the dict (cheaper than parsing the str,
                # which orjson must re-encode when it is not ASCII) and gives
                # exactly the dict discord.py's own parse would.
                try:
                    return _loads(raw)
                except _JSONDecodeError as exc:
                    raise DecodeError(f"payload is not valid JSON: {exc}") from None
            # Any other shape was already parsed whole by mijcodec: reuse it.
            # op is an int or an Opcode (IntEnum); "+ 0" gives the plain int.
            return {"t": pkt.t, "s": pkt.s, "op": pkt.op + 0, "d": pkt.d}
        return original(data)

    _from_json.__wrapped__ = original  # type: ignore[attr-defined]
    _from_json._mijcodec = True  # type: ignore[attr-defined]
    return _from_json


# (id(ConnectionState), shard_id) -> monotonic time of the last codec error
_last_error: Dict[Tuple[int, Optional[int]], float] = {}
_REPEAT_WINDOW = 5.0


def _make_received_message(original: Any, reconnect_exc: Any) -> Any:
    async def received_message(self: Any, msg: Any, /) -> None:
        try:
            return await original(self, msg)
        except CodecError as exc:
            if not isinstance(getattr(self, "_decompressor", None), _MijcodecContext):
                raise
            await _end_connection(self, exc, reconnect_exc)

    received_message.__wrapped__ = original  # type: ignore[attr-defined]
    received_message._mijcodec = True  # type: ignore[attr-defined]
    return received_message


async def _end_connection(ws: Any, exc: CodecError, reconnect_exc: Any) -> None:
    global _pending
    _pending = _NOTHING
    _counters[_ERRORS] += 1
    shard_id = getattr(ws, "shard_id", None)
    resume = getattr(ws, "session_id", None) is not None
    logger.warning(
        "discord.py shard %s: mijcodec %s: %s; closing this connection and %s",
        shard_id,
        type(exc).__name__,
        exc,
        "resuming the session" if resume else "identifying again (no session yet)",
    )
    key = (id(getattr(ws, "_connection", None)), shard_id)
    now = time.monotonic()
    previous = _last_error.get(key)
    _last_error[key] = now
    if len(_last_error) > 4096:  # never grows without bound
        _last_error.clear()
    # discord.py's own op 7 path: close (stops the heartbeat thread; 4000 keeps
    # the session resumable), then ReconnectWebSocket for Client.connect.
    try:
        await ws.close(code=4000)
    except Exception:  # the socket may already be gone; reconnecting is what matters
        logger.debug("closing the websocket after a codec error failed", exc_info=True)
    if previous is not None and now - previous < _REPEAT_WINDOW:
        delay = random.uniform(1.0, 5.0)
        logger.warning("discord.py shard %s: repeated codec errors; waiting %.1fs before reconnecting", shard_id, delay)
        await asyncio.sleep(delay)
    # Client.connect reads client.ws.sequence; before the first websocket of a
    # plain Client exists that is None and discord.py would crash on any error.
    owner = getattr(getattr(ws, "_dispatch", None), "__self__", None)
    if owner is not None and getattr(owner, "ws", False) is None:
        owner.ws = ws
    raise reconnect_exc(shard_id, resume=resume) from exc


# -- install / uninstall ----------------------------------------------------------


def _library() -> Tuple[Any, Any, Any]:
    try:
        import discord
        from discord import gateway, utils
    except ImportError as exc:
        raise UnsupportedLibraryError(f"discord.py is not importable ({exc}); nothing was patched") from None
    return discord, gateway, utils


def install(*, compress: Optional[str] = None) -> str:
    """Make discord.py decode its gateway traffic with mijcodec.

    ``compress`` None keeps discord.py's own choice of transport compression;
    ``"zlib-stream"`` or ``"zstd-stream"`` asks for that one. Idempotent: a second
    call changes nothing (or only switches the compression when asked to).
    Raises :class:`~mijcodec.compat.UnsupportedLibraryError` (patching nothing)
    on a discord.py older than 2.5 or without the hooks, and ValueError for an
    unknown ``compress``. Returns the compression new connections will use.
    """
    _check_compress(compress)
    with _lock:
        discord, gateway, utils = _library()
        version = getattr(discord, "__version__", "0")
        _require_version("discord.py", version, MIN_VERSION)
        ws_cls = getattr(gateway, "DiscordWebSocket", None)
        reconnect_exc = getattr(gateway, "ReconnectWebSocket", None)
        missing = [
            name
            for name, ok in (
                ("discord.utils._ActiveDecompressionContext", hasattr(utils, "_ActiveDecompressionContext")),
                ("discord.utils._from_json", hasattr(utils, "_from_json")),
                ("discord.gateway.DiscordWebSocket.received_message", ws_cls is not None and "received_message" in vars(ws_cls)),
                ("discord.gateway.ReconnectWebSocket", reconnect_exc is not None),
            )
            if not ok
        ]
        if missing:
            raise UnsupportedLibraryError(
                f"discord.py {version} lacks {', '.join(missing)}; mijcodec.compat cannot hook it; nothing was patched"
            )

        own_context = _originals.get("context", utils._ActiveDecompressionContext)
        target = compress or getattr(own_context, "COMPRESSION_TYPE", "zlib-stream")
        if target not in _CONTEXTS:
            raise UnsupportedLibraryError(f"discord.py negotiates {target!r}, which mijcodec.compat does not handle; nothing was patched")
        _check_decoder_supports(target)
        context = _CONTEXTS[target]

        if _originals:
            if utils._ActiveDecompressionContext is context:
                logger.debug("mijcodec.compat.discord_py already installed (%s)", target)
                return target
            utils._ActiveDecompressionContext = context
            logger.info("discord.py %s: mijcodec now decodes %s (implementation %s)", version, target, _implementation())
            return target

        originals = {
            "context": utils._ActiveDecompressionContext,
            "from_json": utils._from_json,
            "received_message": vars(ws_cls)["received_message"],
        }
        new_from_json = _make_from_json(originals["from_json"])
        new_received = _make_received_message(originals["received_message"], reconnect_exc)
        utils._ActiveDecompressionContext = context
        utils._from_json = new_from_json
        ws_cls.received_message = new_received
        _originals.update(originals)
        _originals["installed"] = {"context": context, "from_json": new_from_json, "received_message": new_received}
        logger.info(
            "discord.py %s: gateway decoding by mijcodec (implementation %s, %s%s)",
            version,
            _implementation(),
            target,
            "" if compress else ", discord.py's own choice",
        )
        return target


def uninstall() -> None:
    """Put discord.py back as it was. Idempotent; a no-op when not installed.

    An attribute someone else replaced after ``install()`` is left alone (with
    a warning) rather than clobbered."""
    global _pending
    with _lock:
        if not _originals:
            return
        _discord, gateway, utils = _library()
        ws_cls = gateway.DiscordWebSocket
        if isinstance(utils._ActiveDecompressionContext, type) and issubclass(utils._ActiveDecompressionContext, _MijcodecContext):
            utils._ActiveDecompressionContext = _originals["context"]
        else:
            logger.warning("discord.utils._ActiveDecompressionContext was replaced by someone else; left as is")
        if utils._from_json is _originals["installed"]["from_json"]:
            utils._from_json = _originals["from_json"]
        else:
            logger.warning("discord.utils._from_json was replaced by someone else; left as is")
        if vars(ws_cls).get("received_message") is _originals["installed"]["received_message"]:
            ws_cls.received_message = _originals["received_message"]
        else:
            logger.warning("DiscordWebSocket.received_message was replaced by someone else; left as is")
        _originals.clear()
        _pending = _NOTHING
        logger.info("discord.py: mijcodec uninstalled; new connections use discord.py's own decoding")


def is_installed() -> bool:
    return bool(_originals)
