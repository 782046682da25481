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
  (Spacebar) alike) and returns its bytes (``Decoder.feed_raw``: no Packet);
- ``receive_json`` (hikari's ``loads`` step, with that loop inlined) parses
  the payload once, with hikari's own ``loads``: exactly hikari's dict, any
  key order and extra top-level keys kept. With hikari's default ``loads``
  invalid JSON or a payload that is not an object is a codec error (below);
  a ``loads=`` the bot gave ``GatewayBot`` is called as hikari calls it.
- Every private name relied on (the transport classes, ``_inflator`` in
  their ``__slots__``, ``_ws``/``_loads``/``_log_filterer``/``_logger``,
  ``_handle_other_message``, ``receive_json`` calling ``_receive_and_check``,
  ``default_json_loads``, ``ux.TRACE``, ``GatewayTransportError``) is checked
  by ``install()``, which refuses (patching nothing) when one is missing.
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
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from mijcodec import CodecError, DecodeError, Decoder

from ._dpy_family import co_names, missing_names, raw_feeder, refuse_missing

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

    def codec_error(exc: CodecError) -> Exception:
        _counters[_ERRORS] += 1
        logger.warning("hikari: mijcodec %s: %s; the shard will reconnect and resume", type(exc).__name__, exc)
        err = transport_error(f"mijcodec {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return err

    class _MijcodecTransport:
        # Mixed in before hikari's own class; hikari's __slots__ already has
        # "_inflator", which holds the Decoder here; the classes made below
        # add "_mijcodec_feed" (its feed_raw, bound once).
        if TYPE_CHECKING:  # what the mixin reads of hikari's _GatewayTransport
            _inflator: Any
            _mijcodec_feed: Any
            _ws: Any
            _logger: Any
            _log_filterer: Any
            _loads: Any

            def _handle_other_message(self, message: Any) -> Any: ...
        else:
            __slots__ = ()
        _mijcodec_compress = ""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            transport_init(self, *args, **kwargs)
            self._inflator = Decoder(self._mijcodec_compress)
            self._mijcodec_feed = raw_feeder(self._inflator)  # bound once: it runs per message
            _counters[_CONNECTIONS] += 1

        async def _receive_and_check(self) -> bytes:
            # hikari's contract: the next complete payload's bytes
            feed = self._mijcodec_feed
            receive = self._ws.receive
            while True:
                message = await receive()
                if message.type == BINARY:
                    try:
                        raw = feed(message.data)
                    except CodecError as exc:
                        raise codec_error(exc) from exc
                    if raw is not None:
                        _counters[1] += 1  # _PAYLOADS
                        return raw  # type: ignore[no-any-return]
                    continue
                self._handle_other_message(message)

        async def receive_json(self) -> Any:
            # hikari's receive_json with _receive_and_check inlined (one
            # coroutine less per payload): the payload bytes from the
            # Decoder (no Packet), then hikari's own loads, once.
            while True:
                message = await self._ws.receive()
                if message.type == BINARY:
                    try:
                        raw = self._mijcodec_feed(message.data)
                    except CodecError as exc:
                        raise codec_error(exc) from exc
                    if raw is not None:
                        break
                    continue
                self._handle_other_message(message)
            _counters[1] += 1  # _PAYLOADS
            if self._logger.isEnabledFor(TRACE):
                self._logger.log(TRACE, "received payload with size %s\n    %s", len(raw), self._log_filterer(raw))
            loads = self._loads
            if loads is default_loads:
                # hikari's own loads (orjson.loads, as mijcodec depends on
                # orjson), once: exactly hikari's dict, extra keys and all;
                # invalid JSON is a codec error, so the shard resumes
                try:
                    val = loads(raw)
                except ValueError as exc:  # orjson's and json's errors both are
                    error = DecodeError(f"payload is not valid JSON: {exc}")
                    raise codec_error(error) from error
                if type(val) is not dict:
                    error = DecodeError(f"payload is not a JSON object but {type(val).__name__}")
                    raise codec_error(error) from error
                return val
            val = loads(raw)  # the bot's own loads=, as hikari calls it
            assert isinstance(val, dict)
            return val

    classes: Dict[str, type] = {}
    for compress, attr in _ATTRS.items():
        base = getattr(shard_impl, attr)
        name = "Mijcodec" + attr.lstrip("_").replace("Gateway", "", 1)
        cls = type(
            name,
            (_MijcodecTransport, base),
            {"__slots__": ("_mijcodec_feed",), "_mijcodec_compress": compress, "__module__": __name__, "__qualname__": name},
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


def _slots(cls: Any) -> set:
    """Every name in the ``__slots__`` of ``cls`` and its bases."""
    names: set = set()
    for klass in getattr(cls, "__mro__", ()):
        slots = vars(klass).get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


def _check_library() -> Tuple[Any, Any, Any]:
    """Every name the drop-in relies on, before anything is patched."""
    hikari, errors, shard_api, shard_impl, data_binding, ux = _library()
    version = getattr(hikari, "__version__", "0")
    _require_version("hikari", version, MIN_VERSION)
    base = getattr(shard_impl, "_GatewayTransport", None)
    zlib_cls = getattr(shard_impl, "_GatewayZlibStreamTransport", None)
    zstd_cls = getattr(shard_impl, "_GatewayZstdStreamTransport", None)
    missing = missing_names(
        [
            ("hikari.impl.shard._GatewayTransport", base is not None),
            ("hikari.impl.shard._GatewayZlibStreamTransport", zlib_cls is not None),
            ("hikari.impl.shard._GatewayZstdStreamTransport", zstd_cls is not None),
            # the attributes the mijcodec transports read, as hikari's __slots__ declare them
            *((f"_GatewayTransport.{n}", n in _slots(base)) for n in ("_ws", "_loads", "_log_filterer", "_logger")),
            *((f"{c.__name__ if c else '?'}._inflator", "_inflator" in _slots(c)) for c in (zlib_cls, zstd_cls)),
            ("_GatewayTransport._handle_other_message", callable(getattr(base, "_handle_other_message", None))),
            ("_GatewayTransport.receive_json reading _receive_and_check", "_receive_and_check" in co_names(getattr(base, "receive_json", None))),
            ("hikari.internal.data_binding.default_json_loads", hasattr(data_binding, "default_json_loads")),
            ("hikari.internal.ux.TRACE", hasattr(ux, "TRACE")),
            ("hikari.errors.GatewayTransportError", hasattr(errors, "GatewayTransportError")),
            ("GatewayShardImpl.__init__(compression=...)", "compression" in _kwdefaults(shard_impl)),
            (
                "GatewayCompression.TRANSPORT_*_STREAM",
                all(hasattr(shard_api.GatewayCompression, v) for v in _ENUM.values()),
            ),
        ]
    )
    refuse_missing("hikari", version, missing)
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
        for needed in {target or "zlib-stream", "zlib-stream"}:
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
