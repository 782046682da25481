"""mijcodec for discord.py (>= 2.5): one call, no other change to the bot.

::

    import mijcodec.compat.discord_py
    mijcodec.compat.discord_py.install()          # before client.run()/start()

What ``install(compress=None)`` patches (``uninstall()`` restores all three):

``discord.utils._ActiveDecompressionContext``
    discord.py's own pluggable decompression context (a class with
    ``COMPRESSION_TYPE`` and ``decompress(bytes) -> str | None``; one instance
    per websocket, made in ``DiscordWebSocket.__init__`` as
    ``self._decompressor``; the gateway URL's ``compress=`` comes from its
    ``COMPRESSION_TYPE``). It becomes
    :class:`ZlibStreamContext` or :class:`ZstdStreamContext`, each backed by a
    :class:`mijcodec.Decoder`. ``decompress`` still returns the payload as a
    ``str`` (so ``on_socket_raw_receive`` still gets a ``str``) or None while a
    zlib-stream payload is incomplete. The compression is the one discord.py
    picks by itself (zstd-stream when ``zstandard`` or ``compression.zstd``
    imports, else zlib-stream) unless ``compress=`` says otherwise.

``discord.gateway.DiscordWebSocket.received_message``
    Wrapped: a binary message on a connection whose context is mijcodec's is
    decoded before discord.py's own ``received_message`` runs: the context's
    Decoder gives the payload's bytes (``Decoder.feed_raw``: no Packet), they
    are decoded to the text and parsed once with orjson (the dict
    discord.py's own ``_from_json`` gives, whatever it is), and the original
    is called with the text (so ``on_socket_raw_receive`` gets that ``str``;
    discord.py skips its decompression for a ``str``). No coroutine is added
    per message: the wrapper is a plain function returning the original's
    coroutine. A :class:`mijcodec.CodecError` (a corrupt or truncated
    compressed frame, a payload over the size cap, not UTF-8, not a JSON
    object) ends the connection discord.py's own way for op 7 RECONNECT:
    ``ws.close(4000)`` (stops the heartbeat thread; a non-1000 code keeps the
    session resumable) and ``ReconnectWebSocket``, which ``Client.connect`` /
    ``AutoShardedClient`` turn into a new connection that RESUMEs, so the
    server replays every event after the last sequence number. A complete
    payload that is not JSON is first dispatched to ``on_socket_raw_receive``
    with its text, as stock discord.py does before its parse fails. Stock
    discord.py lets ``zlib.error`` escape and the client dies. A second codec
    error on the same client and shard within 5 seconds waits a random 1-5 s
    first, so a server that keeps sending bad data cannot drive a hot
    reconnect loop.

``discord.utils._from_json``
    Handed the very ``str`` object the wrapper has just handed discord.py (an
    identity check, never equality), it returns the dict already parsed from
    that payload's bytes: no second pass. One-shot: a second call with the
    same object parses normally, so nobody ever shares a dict. Any other
    argument (REST responses, text frames, ...) goes to discord.py's original.

Fixed with ``install()`` in effect (reproduced against stock discord.py 2.7):

- a zlib-stream payload whose ``00 00 ff ff`` suffix is split across two
  websocket messages: stock discord.py only checks the last 4 bytes of the
  newest message, misses the end and glues two payloads together; mijcodec
  checks the accumulated data;
- a corrupt compressed frame: reconnect and RESUME instead of a dead client;
- zstd-stream from a server that closes one zstd frame per payload
  (Spacebar): stock discord.py with ``zstandard`` fails on the second payload
  ("cannot use a decompressobj multiple times"); mijcodec starts the next frame.

discord.py and py-cord share the import name ``discord``: ``install()`` reads
from importlib.metadata which distribution owns the imported package and
refuses py-cord (use :mod:`mijcodec.compat.pycord`). Every private name relied
on (``_ActiveDecompressionContext`` with ``COMPRESSION_TYPE``/``decompress``,
``__init__`` storing it as ``_decompressor``, ``received_message`` reading
``_decompressor`` and calling ``log_receive`` and ``utils._from_json``,
``ReconnectWebSocket``) is checked first; a missing one refuses, patching
nothing.

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

from typing import Any, Dict, Optional, Tuple

from mijcodec import CodecError, Decoder

from . import (
    _check_compress,
    _check_decoder_supports,
    _implementation,
    _require_version,
    UnsupportedLibraryError,
    logger,
)
from . import _dpy_family
from ._dpy_family import DONE, Family, co_names, decode, make_from_json, missing_names, raw_feeder, refuse_missing, require_discord_distribution

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

_family = Family("discord.py")
_counters = _family.counters
_last_error = _family.last_error
_originals = _family.originals  # non-empty while installed
_lock = _family.lock


def stats() -> Dict[str, int]:
    """What mijcodec decoded for discord.py in this process (cumulative,
    survives uninstall): ``connections`` (contexts made), ``payloads`` (payloads
    handed to discord.py), ``codec_errors`` (connections ended by a codec error)."""
    return _family.stats()


# -- the decompression contexts ------------------------------------------------


class _MijcodecContext:
    """discord.py decompression context backed by :class:`mijcodec.Decoder`.

    The installed ``received_message`` decodes through ``_feed`` itself;
    ``decompress`` is discord.py's context contract, used when the original
    ``received_message`` runs (e.g. after ``uninstall()`` on a connection
    opened while installed)."""

    __slots__ = ("decoder", "_feed")

    COMPRESSION_TYPE: str = ""

    def __init__(self) -> None:
        self.decoder = Decoder(self.COMPRESSION_TYPE)
        self._feed = raw_feeder(self.decoder)  # bound once: it runs per message
        _counters[0] += 1  # connections

    def decompress(self, data: bytes, /) -> Optional[str]:
        text = decode(self._feed, data, False)  # CodecError propagates
        if text is not None:
            _counters[1] += 1  # payloads
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


def _make_received_message(original: Any, reconnect_exc: Any) -> Any:
    counters = _counters
    fail = _family.fail
    context_type = _MijcodecContext

    def received_message(self: Any, msg: Any, /) -> Any:
        if type(msg) is bytes:
            ctx = self._decompressor
            if isinstance(ctx, context_type):
                try:
                    msg = decode(ctx._feed, msg, False)
                except CodecError as exc:
                    return fail(self, exc, reconnect_exc)
                if msg is None:
                    return DONE  # a partial zlib-stream payload
                counters[1] += 1  # payloads
        return original(self, msg)

    received_message.__wrapped__ = original  # type: ignore[attr-defined]
    received_message._mijcodec = True  # type: ignore[attr-defined]
    return received_message


# -- install / uninstall ----------------------------------------------------------


def _library() -> Tuple[Any, Any, Any]:
    try:
        import discord
        from discord import gateway, utils
    except ImportError as exc:
        raise UnsupportedLibraryError(f"discord.py is not importable ({exc}); nothing was patched") from None
    return discord, gateway, utils


def _check_library() -> Tuple[str, Any, Any, Any]:
    """Every name the drop-in relies on, before anything is patched."""
    discord, gateway, utils = _library()
    require_discord_distribution(discord, "discord.py")
    version = getattr(discord, "__version__", "0")
    _require_version("discord.py", version, MIN_VERSION)
    ws_cls = getattr(gateway, "DiscordWebSocket", None)
    ws_vars = vars(ws_cls) if isinstance(ws_cls, type) else {}
    received = _originals.get("received_message", ws_vars.get("received_message"))
    context = _originals.get("context", getattr(utils, "_ActiveDecompressionContext", None))
    missing = missing_names(
        [
            ("discord.utils._ActiveDecompressionContext", context is not None),
            (
                "_ActiveDecompressionContext.COMPRESSION_TYPE/decompress",
                context is not None and hasattr(context, "COMPRESSION_TYPE") and callable(getattr(context, "decompress", None)),
            ),
            ("discord.utils._from_json", hasattr(utils, "_from_json")),
            ("discord.gateway.DiscordWebSocket.received_message", received is not None),
            # the context is made per websocket in __init__ and read back by received_message
            (
                "DiscordWebSocket.__init__ storing _ActiveDecompressionContext() as _decompressor",
                {"_decompressor", "_ActiveDecompressionContext"} <= set(co_names(ws_vars.get("__init__"))),
            ),
            (
                "received_message's _decompressor, log_receive and utils._from_json",
                {"_decompressor", "log_receive", "_from_json"} <= set(co_names(received)),
            ),
            ("discord.gateway.ReconnectWebSocket", hasattr(gateway, "ReconnectWebSocket")),
        ]
    )
    refuse_missing("discord.py", version, missing)
    return version, ws_cls, gateway, utils


def install(*, compress: Optional[str] = None) -> str:
    """Make discord.py decode its gateway traffic with mijcodec.

    ``compress`` None keeps discord.py's own choice of transport compression;
    ``"zlib-stream"`` or ``"zstd-stream"`` asks for that one. Idempotent: a second
    call changes nothing (or only switches the compression when asked to).
    Raises :class:`~mijcodec.compat.UnsupportedLibraryError` (patching nothing)
    when ``discord`` is py-cord, on a discord.py older than 2.5 or without a
    name it relies on, and ValueError for an unknown ``compress``. Returns the
    compression new connections will use.
    """
    _check_compress(compress)
    with _lock:
        version, ws_cls, gateway, utils = _check_library()
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
        new_from_json = make_from_json(originals["from_json"])
        new_received = _make_received_message(originals["received_message"], gateway.ReconnectWebSocket)
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
        _dpy_family.pending[0] = _dpy_family._NOTHING
        logger.info("discord.py: mijcodec uninstalled; new connections use discord.py's own decoding")


def is_installed() -> bool:
    return bool(_originals)
