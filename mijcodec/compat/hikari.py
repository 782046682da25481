"""mijcodec for hikari (>= 2.5): one call, no other change to the bot.

::

    import mijcodec.compat.hikari
    mijcodec.compat.hikari.install()              # before bot.run()

hikari picks a transport class per gateway connection in
``hikari.impl.shard._GatewayTransport.connect`` by looking up the module
attributes ``_GatewayZlibStreamTransport`` / ``_GatewayZstdStreamTransport``.
``install(compress=None)`` points both at subclasses
(:func:`transport_classes`) whose ``_inflator`` is a :class:`mijcodec.Decoder`
and whose receive path is mijcodec's:

- ``_receive_and_check`` feeds every binary websocket message to the Decoder
  until it completes a payload (zlib-stream: the *accumulated* data ends with
  ``00 00 ff ff``, so a suffix split across messages is fine; zstd-stream: one
  payload per message, open frames (Discord) or one closed frame per payload
  (Spacebar) alike) and returns its bytes;
- ``receive_json`` (hikari's ``loads`` step) parses the payload once: with
  hikari's default ``loads`` (orjson) over the decompressed bytes when the
  payload is in Discord's canonical envelope order (mijcodec has then only
  scanned the envelope), else by building ``{"t", "s", "op", "d"}`` from the
  packet mijcodec already parsed whole. Invalid JSON is a codec error (below).
  When the bot passed its own ``loads=`` to ``GatewayBot``, that function is
  respected and gets the decompressed bytes, as before.
- A :class:`mijcodec.CodecError` (corrupt or truncated frame, payload over the
  size cap, payload that is not a gateway JSON object) becomes
  ``hikari.errors.GatewayTransportError``, which the shard's keep-alive loop
  handles its own way: log, close with 3000 (keeps the session), reconnect to
  the resume URL and RESUME; the server replays every missed event. Stock
  hikari lets ``zlib.error`` / ``ZstdError`` escape as an unhandled error and
  the shard dies.

Compression: hikari's own choice (zstd-stream when ``backports.zstd`` /
``compression.zstd`` is importable, else zlib-stream) is kept unless
``install(compress=...)`` asks otherwise; then the ``compression`` default of
``GatewayShardImpl.__init__`` is changed (``GatewayBot`` does not pass one).
A shard built with an explicit ``compression=`` keeps it. hikari's other
transports (no compression, payload zlib) are left alone.

``uninstall()`` restores the module attributes and the default; a connection
opened while installed keeps its mijcodec transport until it ends.

A hikari 2.7 limit this does not change: when a connection fails during the
handshake (a corrupt or closed READY, with or without mijcodec), hikari's
``_keep_alive`` does not cancel that connection's heartbeat task; it dies later
with an AssertionError nobody retrieves (logged as "Task exception was never
retrieved"). The shard itself identifies again and works.
:func:`stats` counts connections, payloads and codec errors handled by mijcodec.
"""

from __future__ import annotations

import threading
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

__all__ = ["install", "uninstall", "is_installed", "stats", "transport_classes", "MIN_VERSION"]

#: Oldest hikari with the per-compression transport classes used here.
MIN_VERSION = (2, 5)

_CONNECTIONS, _PAYLOADS, _ERRORS = 0, 1, 2
_counters = [0, 0, 0]


def stats() -> Dict[str, int]:
    """What mijcodec decoded for hikari in this process (cumulative, survives
    uninstall): ``connections``, ``payloads``, ``codec_errors``."""
    return {
        "connections": _counters[_CONNECTIONS],
        "payloads": _counters[_PAYLOADS],
        "codec_errors": _counters[_ERRORS],
    }


_lock = threading.RLock()
_classes: Dict[str, type] = {}  # built once, on first use
_originals: Dict[str, Any] = {}  # non-empty while installed

_ATTRS = {"zlib-stream": "_GatewayZlibStreamTransport", "zstd-stream": "_GatewayZstdStreamTransport"}
_ENUM = {"zlib-stream": "TRANSPORT_ZLIB_STREAM", "zstd-stream": "TRANSPORT_ZSTD_STREAM"}


def _library() -> Tuple[Any, Any, Any, Any, Any, Any]:
    try:
        import hikari
        from hikari import errors
        from hikari.api import shard as shard_api
        from hikari.impl import shard as shard_impl
        from hikari.internal import data_binding, ux
    except ImportError as exc:
        raise UnsupportedLibraryError(f"hikari is not importable ({exc}); nothing was patched") from None
    return hikari, errors, shard_api, shard_impl, data_binding, ux


def _build_classes(errors: Any, shard_impl: Any, data_binding: Any, ux: Any) -> Dict[str, type]:
    import aiohttp

    BINARY = aiohttp.WSMsgType.BINARY
    TRACE = ux.TRACE
    transport_init = shard_impl._GatewayTransport.__init__
    transport_error = errors.GatewayTransportError
    default_loads = data_binding.default_json_loads
    # hikari's default loads is orjson.loads whenever orjson imports, and
    # mijcodec depends on orjson
    loads = orjson.loads
    JSONDecodeError = orjson.JSONDecodeError
    CANONICAL = b'{"t":'  # the start of Discord's canonical envelope

    def codec_error(exc: CodecError) -> Exception:
        _counters[_ERRORS] += 1
        logger.warning("hikari: mijcodec %s: %s; the shard will reconnect and resume", type(exc).__name__, exc)
        err = transport_error(f"mijcodec {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return err

    class _MijcodecTransport:
        # Mixed in before hikari's own class; hikari's __slots__ already has
        # "_inflator", which holds the Decoder here.
        __slots__ = ()
        _mijcodec_compress = ""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            transport_init(self, *args, **kwargs)
            self._inflator = Decoder(self._mijcodec_compress)
            _counters[_CONNECTIONS] += 1

        async def _receive_packet(self) -> Any:
            decoder = self._inflator
            receive = self._ws.receive
            while True:
                message = await receive()
                if message.type == BINARY:
                    try:
                        pkt = decoder.feed(message.data)
                    except CodecError as exc:
                        raise codec_error(exc) from exc
                    if pkt is not None:
                        _counters[1] += 1  # _PAYLOADS
                        return pkt
                    continue
                self._handle_other_message(message)

        async def _receive_and_check(self) -> bytes:
            return (await self._receive_packet()).raw

        async def receive_json(self) -> Any:
            # The loop of _receive_packet, inlined: this runs once per gateway
            # payload, and one coroutine less per payload is measurable.
            while True:
                message = await self._ws.receive()
                if message.type == BINARY:
                    try:
                        pkt = self._inflator.feed(message.data)
                    except CodecError as exc:
                        raise codec_error(exc) from exc
                    if pkt is not None:
                        break
                    continue
                self._handle_other_message(message)
            _counters[1] += 1  # _PAYLOADS
            raw = pkt.raw
            if self._logger.isEnabledFor(TRACE):
                self._logger.log(TRACE, "received payload with size %s\n    %s", len(raw), self._log_filterer(raw))
            if self._loads is not default_loads:
                val = self._loads(raw)  # the bot's own loads=
                assert isinstance(val, dict)
                return val
            if raw.startswith(CANONICAL):
                # Discord's envelope order: mijcodec has only scanned it and
                # not parsed d yet; one orjson pass over the bytes (what
                # hikari's own loads does, so exactly hikari's dict) is the
                # cheapest way.
                try:
                    return loads(raw)
                except JSONDecodeError as exc:
                    error = DecodeError(f"payload is not valid JSON: {exc}")
                raise codec_error(error) from error
            # Any other shape was already parsed whole by mijcodec: reuse it.
            try:
                # op is an int or an Opcode (IntEnum); "+ 0" gives the plain int
                return {"t": pkt.t, "s": pkt.s, "op": pkt.op + 0, "d": pkt.d}
            except CodecError as exc:
                raise codec_error(exc) from exc

    classes: Dict[str, type] = {}
    for compress, attr in _ATTRS.items():
        base = getattr(shard_impl, attr)
        name = "Mijcodec" + attr.lstrip("_").replace("Gateway", "", 1)
        cls = type(
            name,
            (_MijcodecTransport, base),
            {"__slots__": (), "_mijcodec_compress": compress, "__module__": __name__, "__qualname__": name},
        )
        classes[compress] = cls
    return classes


def transport_classes() -> Dict[str, type]:
    """The mijcodec transport classes, ``{"zlib-stream": ..., "zstd-stream": ...}``
    (subclasses of hikari's own transports). Imports hikari."""
    with _lock:
        if not _classes:
            _hikari, errors, _api, shard_impl, data_binding, ux = _library()
            base = {c: _originals.get(c, getattr(shard_impl, attr, None)) for c, attr in _ATTRS.items()}
            if any(b is None for b in base.values()):
                raise UnsupportedLibraryError("hikari lacks its zlib/zstd stream transports; nothing was patched")
            _classes.update(_build_classes(errors, shard_impl, data_binding, ux))
        return dict(_classes)


def _kwdefaults(shard_impl: Any) -> Dict[str, Any]:
    init = getattr(getattr(shard_impl, "GatewayShardImpl", None), "__init__", None)
    return getattr(init, "__kwdefaults__", None) or {}


def _check_library() -> Tuple[Any, Any, Any]:
    hikari, _errors, shard_api, shard_impl, data_binding, _ux = _library()
    version = getattr(hikari, "__version__", "0")
    _require_version("hikari", version, MIN_VERSION)
    missing = [
        name
        for name, ok in (
            ("hikari.impl.shard._GatewayTransport", hasattr(shard_impl, "_GatewayTransport")),
            ("hikari.impl.shard._GatewayZlibStreamTransport", hasattr(shard_impl, "_GatewayZlibStreamTransport")),
            ("hikari.impl.shard._GatewayZstdStreamTransport", hasattr(shard_impl, "_GatewayZstdStreamTransport")),
            ("hikari.internal.data_binding.default_json_loads", hasattr(data_binding, "default_json_loads")),
            ("GatewayShardImpl.__init__(compression=...)", "compression" in _kwdefaults(shard_impl)),
            (
                "GatewayCompression.TRANSPORT_*_STREAM",
                all(hasattr(shard_api.GatewayCompression, v) for v in _ENUM.values()),
            ),
        )
        if not ok
    ]
    if missing:
        raise UnsupportedLibraryError(
            f"hikari {version} lacks {', '.join(missing)}; mijcodec.compat cannot hook it; nothing was patched"
        )
    return version, shard_api, shard_impl


def _own_choice(shard_api: Any, shard_impl: Any) -> Optional[str]:
    default = _originals.get("compression_default", shard_impl.GatewayShardImpl.__init__.__kwdefaults__["compression"])
    for compress, member in _ENUM.items():
        if default == getattr(shard_api.GatewayCompression, member):
            return compress
    return None


def install(*, compress: Optional[str] = None) -> Optional[str]:
    """Make hikari's gateway shards decode with mijcodec.

    ``compress`` None keeps hikari's own choice; ``"zlib-stream"`` or
    ``"zstd-stream"`` makes that the shards' default. Idempotent. Raises
    :class:`~mijcodec.compat.UnsupportedLibraryError` (patching nothing) on a
    hikari older than 2.5 or without the hooks, ValueError for an unknown
    ``compress``. Returns the compression new shards negotiate by default (None
    if hikari's own default is one mijcodec does not handle: then only shards
    asking for a stream compression use mijcodec).
    """
    _check_compress(compress)
    with _lock:
        version, shard_api, shard_impl = _check_library()
        own = _own_choice(shard_api, shard_impl)
        target = compress or own
        for needed in {target, "zlib-stream"} - {None}:
            _check_decoder_supports(needed)  # zstd is only required when it will be used
        zstd_ok = True
        try:
            _check_decoder_supports("zstd-stream")
        except UnsupportedLibraryError:
            zstd_ok = False
        classes = transport_classes()
        kwdefaults = shard_impl.GatewayShardImpl.__init__.__kwdefaults__
        wanted_default = (
            getattr(shard_api.GatewayCompression, _ENUM[compress]) if compress else _originals.get("compression_default", kwdefaults["compression"])
        )

        if _originals:
            if kwdefaults["compression"] == wanted_default:
                logger.debug("mijcodec.compat.hikari already installed (%s)", target)
                return target
            kwdefaults["compression"] = wanted_default
            logger.info("hikari %s: mijcodec now decodes %s by default (implementation %s)", version, target, _implementation())
            return target

        _originals["compression_default"] = kwdefaults["compression"]
        for c, attr in _ATTRS.items():
            _originals[c] = getattr(shard_impl, attr)
        setattr(shard_impl, _ATTRS["zlib-stream"], classes["zlib-stream"])
        if zstd_ok:
            setattr(shard_impl, _ATTRS["zstd-stream"], classes["zstd-stream"])
        kwdefaults["compression"] = wanted_default
        logger.info(
            "hikari %s: gateway decoding by mijcodec (implementation %s, %s%s)",
            version,
            _implementation(),
            target,
            "" if compress else ", hikari's own choice",
        )
        return target


def uninstall() -> None:
    """Put hikari back as it was. Idempotent; a no-op when not installed."""
    with _lock:
        if not _originals:
            return
        _hikari, _errors, _api, shard_impl, _db, _ux = _library()
        for c, attr in _ATTRS.items():
            current = getattr(shard_impl, attr)
            if current is _classes.get(c) or current is _originals[c]:
                setattr(shard_impl, attr, _originals[c])
            else:
                logger.warning("hikari.impl.shard.%s was replaced by someone else; left as is", attr)
        shard_impl.GatewayShardImpl.__init__.__kwdefaults__["compression"] = _originals["compression_default"]
        _originals.clear()
        logger.info("hikari: mijcodec uninstalled; new connections use hikari's own decoding")


def is_installed() -> bool:
    return bool(_originals)
