"""What the drop-ins for discord.py and its forks (py-cord, nextcord, disnake) share.

All four hand a complete websocket message to ``DiscordWebSocket.received_message``,
which (stock) inflates it, logs the text (``socket_raw_receive``) and parses it
with the library's ``utils._from_json`` (nextcord: ``utils.from_json``). With a
drop-in installed, a binary message is decoded *before* the library's own
``received_message`` runs (:func:`decode`): mijcodec's ``Decoder.feed_raw``
gives the payload's bytes (no Packet), they are decoded to the text and parsed
once with orjson, and the library's own ``received_message`` is called with the
text. Its ``_from_json`` is wrapped (:func:`make_from_json`) so that, handed
that very ``str`` object (an identity check), it returns the dict already
parsed instead of a second pass over the payload. So the library gets exactly
what its own code would have built: the text (``socket_raw_receive`` gets a
``str``) and orjson's dict of it.

A codec error (corrupt or truncated frame, a payload over the size cap, not
UTF-8, not JSON, not a JSON object) ends the connection the library's own way
for op 7 (:meth:`Family.fail`): close with 4000 (keeps the session) and raise
its ``ReconnectWebSocket``, so ``Client.connect`` RESUMEs and the server
replays every event after the last sequence number. A complete payload that is
not JSON is first logged like stock (``socket_raw_receive`` with the text).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import random
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import orjson

from mijcodec import CodecError, DecodeError

from . import UnsupportedLibraryError, logger

# -- which distribution provides an import name ---------------------------------

#: distribution -> the compat module for it (the import name ``discord`` is shared)
DISCORD_DISTRIBUTIONS = {"discord.py": "mijcodec.compat.discord_py", "py-cord": "mijcodec.compat.pycord"}


def owning_distribution(module: Any, candidates: Iterable[str]) -> Optional[str]:
    """The distribution among ``candidates`` whose installed files contain the
    imported ``module`` (its ``__init__.py``), by importlib.metadata; None if none does."""
    where = os.path.realpath(getattr(module, "__file__", None) or "")
    for name in candidates:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            if f.name == "__init__.py" and f.parent.name == module.__name__.split(".")[0] and len(f.parts) == 2:
                if os.path.realpath(str(dist.locate_file(f))) == where:
                    return name
    return None


def require_discord_distribution(discord: Any, wanted: str) -> None:
    """Refuse (patching nothing) when ``import discord`` is not ``wanted``'s."""
    owner = owning_distribution(discord, DISCORD_DISTRIBUTIONS)
    if owner == wanted:
        return
    if owner is None:
        raise UnsupportedLibraryError(
            f"the importable 'discord' ({getattr(discord, '__file__', '?')}) belongs to neither discord.py nor "
            f"py-cord by importlib.metadata; {DISCORD_DISTRIBUTIONS[wanted]} needs {wanted}; nothing was patched"
        )
    raise UnsupportedLibraryError(
        f"the importable 'discord' is {owner}, not {wanted}: use {DISCORD_DISTRIBUTIONS[owner]}.install() "
        f"instead; nothing was patched"
    )


def co_names(func: Any) -> Tuple[str, ...]:
    """The global and attribute names a function's code uses (empty if it has none)."""
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    return tuple(code.co_names) if code is not None else ()


def missing_names(checks: Iterable[Tuple[str, bool]]) -> List[str]:
    return [name for name, ok in checks if not ok]


def refuse_missing(library: str, version: str, missing: List[str]) -> None:
    if missing:
        raise UnsupportedLibraryError(
            f"{library} {version} lacks {', '.join(missing)}; mijcodec.compat cannot hook it; nothing was patched"
        )


# -- the per-payload path ----------------------------------------------------------

# The last (text, parsed dict) decode() made, for the one-shot _from_json.
# One tuple in a one-slot list, replaced and read atomically, so a reader in
# another thread always sees a matching pair; correctness rests on the
# identity check alone. _NOTHING's text is a private object nobody can pass.
_NOTHING: Tuple[Any, Any] = (object(), None)
pending: List[Tuple[Any, Any]] = [_NOTHING]

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def raw_feeder(decoder: Any) -> Callable[[Any], Optional[bytes]]:
    """``decoder.feed_raw`` (payload bytes, no Packet) where the codec has it,
    else ``feed(...).raw``."""
    feed_raw = getattr(decoder, "feed_raw", None)
    if feed_raw is not None:
        return feed_raw  # type: ignore[no-any-return]
    feed = decoder.feed

    def feed_raw_fallback(data: Any) -> Optional[bytes]:
        pkt = feed(data)
        return None if pkt is None else pkt.raw

    return feed_raw_fallback


def _bad(text: str, message: str) -> DecodeError:
    exc = DecodeError(message)
    exc.mijcodec_text = text  # type: ignore[attr-defined]  # Family.fail logs it like stock
    return exc


def decode(feed: Callable[[Any], Optional[bytes]], data: Any, fill: bool) -> Optional[str]:
    """One binary websocket message through mijcodec: the payload's text, with
    its parsed dict left for the wrapped ``_from_json``; None while a payload
    is incomplete. ``fill`` (nextcord, which indexes them) adds an absent
    ``t``/``s``/``d`` as None and refuses a payload without ``op``. Raises
    :class:`mijcodec.CodecError`."""
    raw = feed(data)
    if raw is None:
        return None
    try:
        text = raw.decode()  # UTF-8, strict
    except UnicodeDecodeError as exc:
        raise DecodeError(f"payload is not valid UTF-8: {exc}") from None
    try:
        msg = _loads(raw)  # the bytes: orjson need not re-encode a non-ASCII str
    except _JSONDecodeError as exc:
        raise _bad(text, f"payload is not valid JSON: {exc}") from None
    if type(msg) is not dict:
        raise _bad(text, f"payload is not a JSON object but {type(msg).__name__}")
    if fill and not ("s" in msg and "t" in msg and "d" in msg and "op" in msg):
        if "op" not in msg:  # nextcord would die on message["op"] (KeyError)
            raise _bad(text, "payload has no op")
        msg.setdefault("t", None)
        msg.setdefault("s", None)
        msg.setdefault("d", None)
    pending[0] = (text, msg)
    return text


def make_from_json(original: Any) -> Any:
    """The library's ``_from_json``, except for the text :func:`decode` just
    returned: then the dict it parsed. One-shot (a second call with the same
    object parses normally, so nobody ever shares a dict)."""

    def _from_json(data: Any, /) -> Any:
        text, msg = pending[0]
        if text is data:
            pending[0] = _NOTHING
            return msg
        return original(data)

    _from_json.__wrapped__ = original  # type: ignore[attr-defined]
    _from_json._mijcodec = True  # type: ignore[attr-defined]
    return _from_json


class _Done:
    """An awaitable that finishes at once with None: what the wrapped
    ``received_message`` returns for a message that completes no payload, so
    that no coroutine is made for it."""

    __slots__ = ()

    def __await__(self) -> Any:
        return
        yield  # pragma: no cover - makes this a generator


DONE = _Done()


# -- per-library state: counters, the error path ------------------------------------

_CONNECTIONS, _PAYLOADS, _ERRORS = 0, 1, 2
_REPEAT_WINDOW = 5.0


class Family:
    """One library's drop-in state: counters, originals, the codec-error path."""

    def __init__(self, library: str) -> None:
        self.library = library
        self.counters = [0, 0, 0]  # connections, payloads, codec errors
        # (id(ConnectionState), shard_id) -> monotonic time of the last codec error
        self.last_error: Dict[Tuple[int, Optional[int]], float] = {}
        self.lock = threading.RLock()
        self.originals: Dict[str, Any] = {}  # non-empty while installed

    def stats(self) -> Dict[str, int]:
        c = self.counters
        return {"connections": c[_CONNECTIONS], "payloads": c[_PAYLOADS], "codec_errors": c[_ERRORS]}

    def fail(self, ws: Any, exc: CodecError, reconnect_exc: Any) -> Any:
        """The coroutine that ends ``ws`` after a codec error (see the module docstring)."""
        pending[0] = _NOTHING
        text = getattr(exc, "mijcodec_text", None)
        if text is not None:
            ws.log_receive(text)  # what stock does before its parse fails: debug-event users see it
        return self._end_connection(ws, exc, reconnect_exc)

    async def _end_connection(self, ws: Any, exc: CodecError, reconnect_exc: Any) -> None:
        self.counters[_ERRORS] += 1
        shard_id = getattr(ws, "shard_id", None)
        resume = getattr(ws, "session_id", None) is not None
        logger.warning(
            "%s shard %s: mijcodec %s: %s; closing this connection and %s",
            self.library,
            shard_id,
            type(exc).__name__,
            exc,
            "resuming the session" if resume else "identifying again (no session yet)",
        )
        key = (id(getattr(ws, "_connection", None)), shard_id)
        now = time.monotonic()
        previous = self.last_error.get(key)
        self.last_error[key] = now
        if len(self.last_error) > 4096:  # never grows without bound
            self.last_error.clear()
        # The library's own op 7 path: close (4000 keeps the session
        # resumable), then ReconnectWebSocket for Client.connect.
        try:
            await ws.close(code=4000)
        except Exception:  # the socket may already be gone; reconnecting is what matters
            logger.debug("closing the websocket after a codec error failed", exc_info=True)
        if previous is not None and now - previous < _REPEAT_WINDOW:
            delay = random.uniform(1.0, 5.0)
            logger.warning("%s shard %s: repeated codec errors; waiting %.1fs before reconnecting", self.library, shard_id, delay)
            await asyncio.sleep(delay)
        # Client.connect reads client.ws.sequence; before the first websocket of a
        # plain Client exists that is None and the library would crash on any error.
        owner = getattr(getattr(ws, "_dispatch", None), "__self__", None)
        if owner is not None and getattr(owner, "ws", False) is None:
            owner.ws = ws
        raise reconnect_exc(shard_id, resume=resume) from exc


# -- the forks: py-cord, nextcord, disnake -------------------------------------------


def compress_of(url: Any) -> str:
    """The ``compress=`` of a gateway URL the library connected to: zstd-stream
    when it says so, else zlib-stream (the only binary transport these
    libraries know; stock assumes it for every binary message)."""
    from urllib.parse import parse_qs, urlsplit

    if not url:
        return "zlib-stream"
    values = parse_qs(urlsplit(str(url)).query).get("compress") or [""]
    return "zstd-stream" if values[-1] == "zstd-stream" else "zlib-stream"


_STREAMS = ("zlib-stream", "zstd-stream")


def _url_asking(value: Any, compress: str) -> Any:
    """A gateway URL (or a tuple holding one) asking for a stream compression,
    asking for ``compress`` instead; anything else is returned as is."""
    if isinstance(value, tuple):
        return tuple(_url_asking(v, compress) for v in value)
    if isinstance(value, str) and "compress=" in value:
        import yarl

        url = yarl.URL(value)
        if url.query.get("compress") in _STREAMS and url.query.get("compress") != compress:
            return str(url.update_query(compress=compress))
    return value


def _url_wrapper(attr: Any, compress: str) -> Any:
    """Wrap a URL-building attribute of ``HTTPClient`` as found in its class
    ``__dict__`` (a staticmethod, a coroutine function or a function) so that
    the URL it builds asks for ``compress``."""
    import inspect

    if isinstance(attr, staticmethod):
        inner = _url_wrapper(attr.__func__, compress)
        return staticmethod(inner)
    func = attr
    wrapper: Any  # a function either way; Any lets it carry the two marks below
    if inspect.iscoroutinefunction(func):

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return _url_asking(await func(*args, **kwargs), compress)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return _url_asking(func(*args, **kwargs), compress)

    wrapper.__wrapped__ = func
    wrapper._mijcodec = True
    wrapper.__name__ = getattr(func, "__name__", "wrapper")
    return wrapper


class ForkDropIn(Family):
    """install()/uninstall() for a fork whose ``DiscordWebSocket.received_message``
    inflates zlib inline (``self._zlib``/``self._buffer``), no context class
    and no zstd: py-cord, nextcord, disnake.

    install() first checks every name relied on (the classes, the methods,
    that ``received_message`` calls ``log_receive`` and ``utils.<from_json>``,
    that ``from_client`` sets ``ws.gateway``, the URL builders, the
    distribution by importlib.metadata, the version) and refuses with
    UnsupportedLibraryError, having patched nothing, when one is missing.

    What is patched (all restored by uninstall()):

    * ``DiscordWebSocket.__init__``: every websocket made while installed gets
      its own ``received_message`` (an instance attribute, so a connection
      opened while installed keeps decoding with mijcodec until it ends, even
      after uninstall()): a binary message goes through mijcodec (a
      ``Decoder`` per connection, made at its first binary message for the
      ``compress=`` of the URL it connected to, ``ws.gateway``) and the
      library's own ``received_message`` gets the text; text messages go
      straight to it. A codec error closes with 4000 and raises the library's
      ``ReconnectWebSocket`` (Family.fail), so the client RESUMEs.
    * ``utils._from_json`` (nextcord: ``utils.from_json``): see make_from_json.
    * only when ``install(compress=...)`` asks for another compression than
      the library's own (zlib-stream; disnake's main branch: zstd-stream):
      the ``HTTPClient`` methods that build the gateway URL, so that a URL
      asking for one stream compression asks for the other. A bot that
      turned compression off keeps it off.
    """

    def __init__(
        self,
        library: str,
        *,
        import_name: str,
        distribution: str,
        min_version: Tuple[int, int],
        from_json: str,
        url_builders: Tuple[str, ...],
        fill: bool,
        decoder: Callable[[str], Any],
    ) -> None:
        super().__init__(library)
        self.import_name = import_name
        self.distribution = distribution
        self.min_version = min_version
        self.from_json_attr = from_json
        self.url_builders = url_builders
        self.fill = fill
        self.new_decoder = decoder

    # -- the library -------------------------------------------------------------

    def modules(self) -> Tuple[Any, Any, Any, Any]:
        import importlib

        name = self.import_name
        try:
            lib = importlib.import_module(name)
            gateway = importlib.import_module(name + ".gateway")
            utils = importlib.import_module(name + ".utils")
            http = importlib.import_module(name + ".http")
        except ImportError as exc:
            raise UnsupportedLibraryError(f"{self.library} is not importable ({exc}); nothing was patched") from None
        return lib, gateway, utils, http

    def check(self) -> Tuple[str, Any, Any, Any, Any]:
        """Every name the drop-in relies on, before anything is patched."""
        from . import _require_version

        lib, gateway, utils, http = self.modules()
        if self.import_name == "discord":
            require_discord_distribution(lib, self.distribution)
        elif owning_distribution(lib, [self.distribution]) is None:
            raise UnsupportedLibraryError(
                f"the importable {self.import_name!r} is not the {self.distribution} distribution by "
                f"importlib.metadata; nothing was patched"
            )
        version = str(getattr(lib, "__version__", "0"))
        _require_version(self.library, version, self.min_version)
        ws_cls = getattr(gateway, "DiscordWebSocket", None)
        ws_vars = vars(ws_cls) if isinstance(ws_cls, type) else {}
        received = self.originals.get("received_message", ws_vars.get("received_message"))
        from_client = ws_vars.get("from_client")
        http_cls = getattr(http, "HTTPClient", None)
        http_vars = vars(http_cls) if isinstance(http_cls, type) else {}
        fj = self.from_json_attr
        missing = missing_names(
            [
                (f"{self.import_name}.gateway.DiscordWebSocket", ws_cls is not None),
                ("DiscordWebSocket.__init__", "__init__" in ws_vars),
                ("DiscordWebSocket.received_message", received is not None),
                # the text handed to the original must be logged, then parsed by utils.<from_json>
                (f"received_message's log_receive and utils.{fj}", {"log_receive", fj} <= set(co_names(received))),
                ("DiscordWebSocket.from_client setting ws.gateway", "gateway" in co_names(from_client)),
                ("DiscordWebSocket.log_receive/close", ws_cls is not None and hasattr(ws_cls, "log_receive") and hasattr(ws_cls, "close")),
                (f"{self.import_name}.gateway.ReconnectWebSocket", hasattr(gateway, "ReconnectWebSocket")),
                (f"{self.import_name}.utils.{fj}", hasattr(utils, fj)),
            ]
            + [(f"{self.import_name}.http.HTTPClient.{b}", b in http_vars) for b in self.url_builders]
        )
        refuse_missing(self.library, version, missing)
        return version, ws_cls, gateway, utils, http_cls

    def own_choice(self) -> str:
        """The compression the library asks for by itself: zlib-stream, except
        where a ``GatewayParams`` default says otherwise (disnake's main
        branch defaults to zstd-stream)."""
        lib, gateway, _utils, _http = self.modules()
        params = getattr(lib, "GatewayParams", None) or getattr(gateway, "GatewayParams", None)
        try:
            default = getattr(params(), "compress", None) if params is not None else None
        except Exception:  # not the GatewayParams meant here
            default = None
        return default if default in _STREAMS else "zlib-stream"

    # -- per connection ----------------------------------------------------------

    def attach(self, ws: Any, original: Any, reconnect_exc: Any) -> None:
        """Give ``ws`` its mijcodec ``received_message``."""
        counters = self.counters
        fail = self.fail
        fill = self.fill
        feed: Optional[Callable[[Any], Optional[bytes]]] = None

        def received_message(msg: Any, /) -> Any:
            nonlocal feed
            if type(msg) is bytes:
                if feed is None:
                    feed = self._start(ws)
                try:
                    msg = decode(feed, msg, fill)
                except CodecError as exc:
                    return fail(ws, exc, reconnect_exc)
                if msg is None:
                    return DONE
                counters[1] += 1  # _PAYLOADS
            return original(ws, msg)

        received_message._mijcodec = True  # type: ignore[attr-defined]
        ws.received_message = received_message

    def _start(self, ws: Any) -> Callable[[Any], Optional[bytes]]:
        compress = compress_of(getattr(ws, "gateway", None))
        decoder = self.new_decoder(compress)
        ws._mijcodec_decoder = decoder
        self.counters[_CONNECTIONS] += 1
        logger.debug("%s shard %s: mijcodec decodes this connection (%s)", self.library, getattr(ws, "shard_id", None), compress)
        return raw_feeder(decoder)

    # -- install / uninstall -----------------------------------------------------

    def install(self, compress: Optional[str]) -> str:
        from . import _check_compress, _check_decoder_supports, _implementation

        _check_compress(compress)
        with self.lock:
            version, ws_cls, gateway, utils, http_cls = self.check()
            target = compress or self.own_choice()
            _check_decoder_supports(target)
            if not self.originals:
                self._patch(ws_cls, gateway, utils)
                logger.info(
                    "%s %s: gateway decoding by mijcodec (implementation %s, %s%s)",
                    self.library,
                    version,
                    _implementation(),
                    target,
                    "" if compress else f", {self.library}'s own choice",
                )
            elif self.originals["compress"] == target:
                logger.debug("mijcodec.compat for %s already installed (%s)", self.library, target)
                return target
            else:
                logger.info("%s %s: mijcodec now decodes %s (implementation %s)", self.library, version, target, _implementation())
            self._set_urls(http_cls, target)
            self.originals["compress"] = target
            return target

    def _patch(self, ws_cls: Any, gateway: Any, utils: Any) -> None:
        originals = {
            "__init__": vars(ws_cls)["__init__"],
            "received_message": vars(ws_cls)["received_message"],
            "from_json": getattr(utils, self.from_json_attr),
        }
        original_init, original_received = originals["__init__"], originals["received_message"]
        reconnect_exc = gateway.ReconnectWebSocket
        attach = self.attach

        def __init__(ws: Any, *args: Any, **kwargs: Any) -> None:
            original_init(ws, *args, **kwargs)
            attach(ws, original_received, reconnect_exc)

        __init__.__wrapped__ = original_init  # type: ignore[attr-defined]
        __init__._mijcodec = True  # type: ignore[attr-defined]
        new_from_json = make_from_json(originals["from_json"])
        ws_cls.__init__ = __init__
        setattr(utils, self.from_json_attr, new_from_json)
        self.originals.update(originals)
        self.originals["installed"] = {"__init__": __init__, "from_json": new_from_json}
        self.originals["urls"] = {}

    def _set_urls(self, http_cls: Any, target: str) -> None:
        self._restore_urls(http_cls)
        if target != self.own_choice():
            urls: Dict[str, Any] = self.originals["urls"]
            for name in self.url_builders:
                urls[name] = vars(http_cls)[name]
                setattr(http_cls, name, _url_wrapper(urls[name], target))

    def _restore_urls(self, http_cls: Any) -> None:
        urls: Dict[str, Any] = self.originals.get("urls") or {}
        for name, attr in urls.items():
            current = vars(http_cls).get(name)
            if getattr(getattr(current, "__func__", current), "_mijcodec", False):
                setattr(http_cls, name, attr)
            else:
                logger.warning("%s: HTTPClient.%s was replaced by someone else; left as is", self.library, name)
        urls.clear()

    def uninstall(self) -> None:
        with self.lock:
            if not self.originals:
                return
            _lib, gateway, utils, http = self.modules()
            ws_cls = gateway.DiscordWebSocket
            installed = self.originals["installed"]
            if vars(ws_cls).get("__init__") is installed["__init__"]:
                ws_cls.__init__ = self.originals["__init__"]
            else:
                logger.warning("%s: DiscordWebSocket.__init__ was replaced by someone else; left as is", self.library)
            if getattr(utils, self.from_json_attr) is installed["from_json"]:
                setattr(utils, self.from_json_attr, self.originals["from_json"])
            else:
                logger.warning("%s: utils.%s was replaced by someone else; left as is", self.library, self.from_json_attr)
            self._restore_urls(http.HTTPClient)
            self.originals.clear()
            pending[0] = _NOTHING
            logger.info("%s: mijcodec uninstalled; new connections use %s's own decoding", self.library, self.library)

    def is_installed(self) -> bool:
        return bool(self.originals)

    def api(self, module: str) -> Tuple[Any, Any, Any, Any]:
        """The module-level ``install``, ``uninstall``, ``is_installed``, ``stats`` of ``module``."""
        lib = self.library
        dropin = self

        def install(*, compress: Optional[str] = None) -> str:
            return dropin.install(compress)

        def uninstall() -> None:
            dropin.uninstall()

        def is_installed() -> bool:
            return dropin.is_installed()

        def stats() -> Dict[str, int]:
            return dropin.stats()

        install.__doc__ = (
            f"Make {lib} decode its gateway traffic with mijcodec.\n\n"
            f"``compress`` None keeps {lib}'s own choice (zlib-stream); ``\"zstd-stream\"`` makes the\n"
            f"gateway URLs it builds ask for zstd-stream. Idempotent (a second call changes nothing, or\n"
            f"only switches the compression). Raises :class:`~mijcodec.compat.UnsupportedLibraryError`\n"
            f"(patching nothing) when the importable library is not {self.distribution} (by\n"
            f"importlib.metadata), is older than {self.min_version[0]}.{self.min_version[1]} or lacks a name\n"
            f"the drop-in relies on; ValueError for an unknown ``compress``. Returns the compression\n"
            f"new connections ask for."
        )
        uninstall.__doc__ = f"Put {lib} back as it was. Idempotent; a no-op when not installed."
        is_installed.__doc__ = f"Whether the {lib} drop-in is installed."
        stats.__doc__ = (
            f"What mijcodec decoded for {lib} in this process (cumulative, survives uninstall):\n"
            f"``connections``, ``payloads``, ``codec_errors``."
        )
        for f in (install, uninstall, is_installed, stats):
            f.__module__ = module
            f.__qualname__ = f.__name__
        return install, uninstall, is_installed, stats


# distribution -> where each fork keeps what the drop-in hooks
_FORK_HOOKS: Dict[str, Dict[str, Any]] = {
    # py-cord reads t/s/op/d with .get; its get_gateway/get_bot_gateway format the URL inline
    "py-cord": {"import_name": "discord", "from_json": "_from_json", "url_builders": ("get_gateway", "get_bot_gateway"), "fill": False},
    # nextcord indexes message["op"], ["d"], ["s"]; every gateway URL goes through format_websocket_url
    "nextcord": {"import_name": "nextcord", "from_json": "from_json", "url_builders": ("format_websocket_url",), "fill": True},
    # disnake reads t/s/op/d with .get; every gateway URL goes through _format_gateway_url
    "disnake": {"import_name": "disnake", "from_json": "_from_json", "url_builders": ("_format_gateway_url",), "fill": False},
}


def fork_dropin(distribution: str, min_version: Tuple[int, int], decoder: Callable[[str], Any]) -> ForkDropIn:
    """The drop-in of one fork; ``decoder(compress)`` makes a connection's Decoder."""
    return ForkDropIn(distribution, distribution=distribution, min_version=min_version, decoder=decoder, **_FORK_HOOKS[distribution])
