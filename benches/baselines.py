"""What bots run today, driven without a socket, plus the floors.

Every baseline is a :class:`Baseline`: ``new()`` makes the per-connection state
(a fresh decompression context: they are stateful), ``run(state, messages)``
decodes a whole recorded stream the way that library does for each received
websocket message, reads the envelope (``op``, ``t``, ``s``, ``d``) like the
library's gateway loop does, and returns ``(payloads decoded, last s)`` so the
benchmarks can check that every baseline really decoded everything.

discord.py 2.7 (``discord/utils.py``, ``discord/gateway.py``)
    The library's own classes and functions are called:
    ``utils._ZlibDecompressionContext`` / ``utils._ZstdDecompressionContext``
    and ``utils._from_json``. discord.py defines only ONE context class per
    install, chosen at import time (utils.py:86-99, 1440-1484): the zstd one
    when ``zstandard`` (or ``compression.zstd``) imports, else the zlib one.
    This venv has ``zstandard``, so ``discord.utils`` holds the zstd class. For
    the zlib class and for the stdlib-json ``_from_json`` we execute a second,
    private copy of the installed ``discord/utils.py`` with ``zstandard``,
    ``compression.zstd`` and ``orjson`` made unimportable (see
    :func:`_discord_utils_without`): that copy is discord.py's own code as it
    runs on an install without those extras (``HAS_ORJSON`` False, so
    ``_from_json = json.loads``; ``_ActiveDecompressionContext`` =
    ``_ZlibDecompressionContext``). Patching ``discord.utils.HAS_ORJSON``
    afterwards would change nothing: ``_from_json`` is bound at import time.
    The per-message steps after decompression are those of
    ``DiscordWebSocket.received_message`` (gateway.py:507-525): decompress
    (returns ``str``, ``None`` for a partial message), ``utils._from_json`` on
    the str, then ``msg.get('t')``, ``.get('op')``, ``.get('d')``,
    ``.get('s')``. That method itself cannot run without a connected client
    (it dispatches into the client's state), so those lines are reproduced.

hikari 2.7 (``hikari/impl/shard.py``)
    hikari's own transport classes run unmodified:
    ``_GatewayZlibStreamTransport`` / ``_GatewayZstdStreamTransport``
    (shard.py:335-398) constructed with a replay object in place of the
    aiohttp websocket, whose ``receive()`` returns the recorded
    ``aiohttp.WSMessage`` objects. ``receive_json()`` (shard.py:194-203:
    ``_receive_and_check`` + the TRACE-logging check + ``self._loads`` +
    ``isinstance`` assert) is a coroutine that never suspends here, so it is
    driven with ``coro.send(None)`` without an event loop (a real bot pays an
    event loop on top). ``loads`` is ``hikari.internal.data_binding.
    default_json_loads`` (orjson.loads when orjson is installed, as here) or,
    for the "hikari (json)" variant, ``json.loads`` which is what that
    default is without orjson (data_binding.py:101-121). The envelope reads
    after it are those of ``_poll_events`` (shard.py:847-853).

stdlib
    ``zlib.decompressobj()`` + ``json.loads`` (and ``backports.zstd`` /
    ``compression.zstd`` + ``json.loads`` for zstd-stream), buffering
    partial zlib messages like every gateway client.

floors (nothing else: no envelope reads, no buffering)
    "inflate alone": one ``zlib.decompressobj()`` per connection, one
    ``decompress`` per message; "raw inflate alone": the same with
    ``wbits=-15`` after stripping the 2-byte zlib header (what skipping the
    adler32 saves); "inflate+orjson": ``orjson.loads(decompress(m))``;
    "zstd alone" / "zstd+orjson": the same with one ``ZstdDecompressor``;
    "orjson alone": ``orjson.loads`` over the already decompressed payloads;
    for closed zstd frames, "zstd.decompress per frame + orjson" (the
    module's one-shot ``decompress`` on each message).

Shared with test_compat.py (each library stock vs with mijcodec's drop-in
installed): ``dpy_contexts`` (discord.py's stock context classes),
``dpy_received_message`` + ``DpyWebSocket`` + ``dpy_drive`` (the same
received_message steps as above, but as a coroutine per message like the
original, reading ``utils._from_json`` from the module at each call, so an
installed drop-in's is the one that runs), ``hikari_stock_class``,
``hikari_transport``, ``hikari_loads`` and ``hikari_run`` (the hikari path
above, for any transport class).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import orjson

try:  # Python 3.14+
    from compression import zstd as _zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the Python version
    from backports import zstd as _zstd  # type: ignore[import-not-found,no-redef]

__all__ = [
    "Baseline", "BaselineUnavailable", "BASELINE_IDS", "baseline", "for_kind", "ws_messages", "HIKARI", "FLOOR",
    # the libraries' stock paths, shared with test_compat.py (stock vs install())
    "dpy_contexts", "dpy_received_message", "DpyWebSocket", "dpy_drive",
    "hikari_stock_class", "hikari_transport", "hikari_loads", "hikari_run",
]

_SUFFIX = b"\x00\x00\xff\xff"
_MISSING = object()


# -- discord.py ---------------------------------------------------------------


def _discord_utils_without(*blocked: str) -> Any:
    """Execute a private copy of the installed ``discord/utils.py`` as if the
    modules in ``blocked`` were not installed, and return it.

    The copy is not put in ``sys.modules``; relative imports in it resolve
    against the real, already imported ``discord`` package.
    """
    import discord.utils as real

    spec = importlib.util.spec_from_file_location("discord._bench_utils_copy", real.__file__)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    saved = {name: sys.modules.get(name, _MISSING) for name in blocked}
    try:
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
        spec.loader.exec_module(mod)
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value  # type: ignore[assignment]
    return mod


_DPY: dict[str, Any] = {}


def _dpy() -> dict[str, Any]:
    """discord.py's context classes and both ``_from_json`` variants."""
    if not _DPY:
        import discord.utils as real

        bare = _discord_utils_without("zstandard", "compression.zstd", "orjson")
        assert bare.HAS_ORJSON is False and bare._ZSTD_SOURCE is None
        assert real.HAS_ORJSON is True, "discord.py baselines need orjson installed"
        _DPY.update(
            zlib_ctx=bare._ZlibDecompressionContext,
            # None where discord.py finds no zstd (Python < 3.14 without zstandard,
            # i.e. without discord.py[speed])
            zstd_ctx=getattr(real, "_ZstdDecompressionContext", None),
            zstd_source=real._ZSTD_SOURCE,
            from_json_orjson=real._from_json,
            from_json_json=bare._from_json,
        )
        assert _DPY["from_json_orjson"] is orjson.loads and _DPY["from_json_json"] is json.loads
    return _DPY


def _dpy_run(from_json: Callable[[Any], Any]) -> Callable[[Any, list], tuple]:
    # gateway.py:507-525 (DiscordWebSocket.received_message), minus the
    # logging/dispatch into the client state.
    def run(ctx: Any, messages: list) -> tuple:
        decompress = ctx.decompress
        n = 0
        sequence = None
        for msg in messages:
            msg = decompress(msg)
            if msg is None:
                continue
            msg = from_json(msg)
            n += 1
            event = msg.get("t")  # noqa: F841
            op = msg.get("op")  # noqa: F841
            data = msg.get("d")  # noqa: F841
            seq = msg.get("s")
            if seq is not None:
                sequence = seq
        return n, sequence

    return run


class BaselineUnavailable(RuntimeError):
    """This baseline cannot run with what is installed (the message says why)."""


def _dpy_zstd_ctx() -> Any:
    ctx = _dpy()["zstd_ctx"]
    if ctx is None:
        raise BaselineUnavailable(
            "discord.py has no zstd-stream context on this install: on Python < 3.14 it needs "
            "zstandard (discord.py[speed]); install it to get the discord.py zstd baselines"
        )
    return ctx


def dpy_contexts() -> dict[str, Any]:
    """discord.py's own stock context classes, ``{"zlib": ..., "zstd": ...}``
    (zstd None without a zstd module, see :func:`_dpy_zstd_ctx`), taken before
    any drop-in is installed (``_dpy`` asserts discord.py is stock on first use)."""
    d = _dpy()
    return {"zlib": d["zlib_ctx"], "zstd": d["zstd_ctx"]}


class DpyWebSocket:
    """Stands in for ``discord.gateway.DiscordWebSocket``: what the decode
    steps of ``received_message`` touch (``_decompressor``, ``sequence``),
    ``shard_id``/``session_id`` for mijcodec's error path, and a payload count
    for the benchmark's check."""

    __slots__ = ("_decompressor", "sequence", "payloads", "shard_id", "session_id")

    def __init__(self, decompressor: Any) -> None:
        self._decompressor = decompressor  # DiscordWebSocket.__init__ makes it per connection
        self.sequence = None
        self.payloads = 0
        self.shard_id = None
        self.session_id = None


def dpy_received_message() -> Callable[..., Any]:
    """``DiscordWebSocket.received_message`` (gateway.py:507-527) up to the
    sequence update, as a coroutine function like the original: the same steps
    as :func:`_dpy_run` (plus a payload count), one coroutine per websocket
    message. ``utils._from_json`` is looked up on the module at every call,
    as discord.py does, so whatever is installed there is what runs."""
    import discord.utils as utils

    async def received_message(self: DpyWebSocket, msg: Any, /) -> None:
        if type(msg) is bytes:
            msg = self._decompressor.decompress(msg)
            # Received a partial gateway message
            if msg is None:
                return
        msg = utils._from_json(msg)
        self.payloads += 1
        event = msg.get("t")  # noqa: F841
        op = msg.get("op")  # noqa: F841
        data = msg.get("d")  # noqa: F841
        seq = msg.get("s")
        if seq is not None:
            self.sequence = seq

    return received_message


def dpy_drive(received_message: Callable[..., Any], ws: DpyWebSocket, messages: list) -> tuple:
    """Feed every recorded message through ``received_message(ws, msg)``; the
    coroutine never suspends, so ``send(None)`` runs it to completion."""
    for msg in messages:
        coro = received_message(ws, msg)
        try:
            coro.send(None)
        except StopIteration:
            continue
        coro.close()  # pragma: no cover - would mean it waited for something
        raise RuntimeError("received_message suspended")
    return ws.payloads, ws.sequence


# -- hikari ---------------------------------------------------------------------


class _ReplayWebSocket:
    """Stands in for ``aiohttp.ClientWebSocketResponse``: ``receive()`` returns
    the next recorded message without ever suspending."""

    __slots__ = ("receive",)

    def __init__(self, messages: list) -> None:
        it = iter(messages).__next__

        async def receive() -> Any:
            return it()

        self.receive = receive


_HIKARI_LOGGER = logging.getLogger("hikari.gateway.0")  # the name hikari gives shard 0's logger


def hikari_stock_class(kind: str) -> type:
    """hikari's own transport class for ``kind`` ("zlib" or "zstd"), as the
    shard looks it up; refuses a class a drop-in put there."""
    from hikari.impl import shard

    cls = shard._GatewayZlibStreamTransport if kind == "zlib" else shard._GatewayZstdStreamTransport
    assert not cls.__module__.startswith("mijcodec"), f"{cls} is not hikari's own (a drop-in is installed)"
    return cls


def hikari_transport(cls: type, ws_messages: list, loads: Callable[[Any], Any]) -> Any:
    """A transport of class ``cls`` reading the recorded ``ws_messages``."""
    return cls(
        ws=_ReplayWebSocket(ws_messages),  # type: ignore[arg-type]
        exit_stack=None,  # type: ignore[arg-type]  # only used by send_close()
        logger=_HIKARI_LOGGER,
        log_filterer=lambda payload: payload,
        dumps=orjson.dumps,
        loads=loads,
    )


def _hikari_new(kind: str, loads: Callable[[Any], Any]) -> Callable[[list], Any]:
    cls = hikari_stock_class(kind)

    def new(ws_messages: list) -> Any:
        return hikari_transport(cls, ws_messages, loads)

    return new


def _hikari_run(transport: Any, ws_messages: list) -> tuple:
    # the coroutine of receive_json() completes on its first send(None): the
    # replay websocket never suspends. Then shard.py:847-853 (_poll_events).
    receive_json = transport.receive_json
    n = 0
    seq = None
    for _ in range(len(ws_messages)):
        coro = receive_json()
        try:
            coro.send(None)
        except StopIteration as done:
            payload = done.value
        else:  # pragma: no cover - would mean the transport waited for something
            coro.close()
            raise RuntimeError("hikari transport suspended")
        n += 1
        op = payload["op"]
        if op == 0:
            name = payload["t"]  # noqa: F841
            data = payload["d"]  # noqa: F841
            seq = payload["s"]
    return n, seq


def ws_messages(messages: list[bytes]) -> list:
    """The recorded messages as aiohttp hands them to hikari."""
    import aiohttp

    binary = aiohttp.WSMsgType.BINARY
    return [aiohttp.WSMessage(binary, m, None) for m in messages]


# -- stdlib and floors --------------------------------------------------------


def _stdlib_zlib_run(ctx: Any, messages: list) -> tuple:
    decompress = ctx.decompress
    loads = json.loads
    buf = bytearray()
    n = 0
    seq = None
    for m in messages:
        if not m.endswith(_SUFFIX):
            buf += m
            continue
        if buf:
            buf += m
            m = bytes(buf)
            buf.clear()
        payload = loads(decompress(m))
        n += 1
        s = payload.get("s")
        if s is not None:
            seq = s
        payload.get("t"), payload.get("op"), payload.get("d")
    return n, seq


def _stdlib_zstd_run(ctx: Any, messages: list) -> tuple:
    decompress = ctx.decompress
    loads = json.loads
    n = 0
    seq = None
    for m in messages:
        payload = loads(decompress(m))
        n += 1
        s = payload.get("s")
        if s is not None:
            seq = s
        payload.get("t"), payload.get("op"), payload.get("d")
    return n, seq


def _floor_decompress_loads(ctx: Any, messages: list) -> tuple:
    decompress = ctx.decompress
    loads = orjson.loads
    n = 0
    for m in messages:
        loads(decompress(m))
        n += 1
    return n, None


def _floor_decompress(ctx: Any, messages: list) -> tuple:
    decompress = ctx.decompress
    n = 0
    for m in messages:
        decompress(m)
        n += 1
    return n, None


class _RawInflate:
    """``zlib.decompressobj(-15)`` fed the stream minus its 2-byte zlib header."""

    __slots__ = ("decompress",)

    def __init__(self) -> None:
        z = zlib.decompressobj(-15)
        inner = z.decompress
        first = [True]

        def decompress(m: bytes) -> bytes:
            if first[0]:
                first[0] = False
                return inner(m[2:])
            return inner(m)

        self.decompress = decompress


def _raw_inflate_run(ctx: _RawInflate, messages: list) -> tuple:
    # the header strip happens once; afterwards decompress it straight
    it = iter(messages)
    n = 0
    for m in it:
        ctx.decompress(m)
        n += 1
        break
    decompress = ctx.decompress
    for m in it:
        decompress(m)
        n += 1
    return n, None


class _OneShotZstd:
    """Each message is a whole frame: the module's one-shot ``decompress``."""

    __slots__ = ()
    decompress = staticmethod(_zstd.decompress)


def _floor_loads(_: Any, payloads: list) -> tuple:
    loads = orjson.loads
    n = 0
    for p in payloads:
        loads(p)
        n += 1
    return n, None


# -- registry -----------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """One baseline: ``new(messages)`` -> state, ``run(state, messages)`` -> (n, last s).

    ``kind`` is the recording it decodes ("zlib", "zstd", "zstd-frames"); ``input`` is what
    it consumes: "messages" (the recorded websocket messages), "ws" (them as
    aiohttp WSMessage objects, for hikari) or "payloads" (already
    decompressed, for the orjson-alone floor). ``role`` marks the references
    of the report: "hikari" (hikari's orjson path) and "floor" (decompress +
    orjson.loads).
    """

    id: str
    label: str
    kind: str
    family: str  # "discord.py" | "hikari" | "stdlib" | "floor"
    new: Callable[[Any], Any]
    run: Callable[[Any, list], tuple]
    input: str = "messages"
    role: str = ""
    checks_seq: bool = True


def _specs() -> dict[str, Callable[[], Baseline]]:
    """id -> constructor; each imports only what its baseline needs."""

    def dpy() -> dict[str, Any]:
        return _dpy()

    return {
        # zlib-stream
        "hikari-zlib": lambda: Baseline("hikari-zlib", "hikari 2.7 (zlib, orjson)", "zlib", "hikari", _hikari_new("zlib", hikari_loads()), _hikari_run, "ws", role="hikari"),
        "hikari-zlib-json": lambda: Baseline("hikari-zlib-json", "hikari 2.7 (zlib, json)", "zlib", "hikari", _hikari_new("zlib", json.loads), _hikari_run, "ws"),
        "dpy-zlib-orjson": lambda: Baseline("dpy-zlib-orjson", "discord.py 2.7 (zlib, orjson)", "zlib", "discord.py", lambda _, c=dpy()["zlib_ctx"]: c(), _dpy_run(dpy()["from_json_orjson"])),
        "dpy-zlib-json": lambda: Baseline("dpy-zlib-json", "discord.py 2.7 (zlib, json)", "zlib", "discord.py", lambda _, c=dpy()["zlib_ctx"]: c(), _dpy_run(dpy()["from_json_json"])),
        "stdlib-zlib-json": lambda: Baseline("stdlib-zlib-json", "stdlib zlib + json", "zlib", "stdlib", lambda _: zlib.decompressobj(), _stdlib_zlib_run),
        "floor-inflate-orjson": lambda: Baseline("floor-inflate-orjson", "floor: inflate + orjson.loads", "zlib", "floor", lambda _: zlib.decompressobj(), _floor_decompress_loads, role="floor", checks_seq=False),
        "floor-inflate": lambda: Baseline("floor-inflate", "floor: inflate alone", "zlib", "floor", lambda _: zlib.decompressobj(), _floor_decompress, checks_seq=False),
        "floor-raw-inflate": lambda: Baseline("floor-raw-inflate", "floor: raw inflate alone (no adler32)", "zlib", "floor", lambda _: _RawInflate(), _raw_inflate_run, checks_seq=False),
        "floor-orjson-zlib": lambda: Baseline("floor-orjson-zlib", "floor: orjson.loads alone", "zlib", "floor", lambda _: None, _floor_loads, "payloads", checks_seq=False),
        # zstd-stream (one open frame)
        "hikari-zstd": lambda: Baseline("hikari-zstd", "hikari 2.7 (zstd, orjson)", "zstd", "hikari", _hikari_new("zstd", hikari_loads()), _hikari_run, "ws", role="hikari"),
        "hikari-zstd-json": lambda: Baseline("hikari-zstd-json", "hikari 2.7 (zstd, json)", "zstd", "hikari", _hikari_new("zstd", json.loads), _hikari_run, "ws"),
        "dpy-zstd-orjson": lambda: Baseline("dpy-zstd-orjson", f"discord.py 2.7 (zstd via {dpy()['zstd_source']}, orjson)", "zstd", "discord.py", lambda _, c=_dpy_zstd_ctx(): c(), _dpy_run(dpy()["from_json_orjson"])),
        "dpy-zstd-json": lambda: Baseline("dpy-zstd-json", f"discord.py 2.7 (zstd via {dpy()['zstd_source']}, json)", "zstd", "discord.py", lambda _, c=_dpy_zstd_ctx(): c(), _dpy_run(dpy()["from_json_json"])),
        "stdlib-zstd-json": lambda: Baseline("stdlib-zstd-json", "stdlib-style zstd + json", "zstd", "stdlib", lambda _: _zstd.ZstdDecompressor(), _stdlib_zstd_run),
        "floor-zstd-orjson": lambda: Baseline("floor-zstd-orjson", "floor: zstd + orjson.loads", "zstd", "floor", lambda _: _zstd.ZstdDecompressor(), _floor_decompress_loads, role="floor", checks_seq=False),
        "floor-zstd": lambda: Baseline("floor-zstd", "floor: zstd alone", "zstd", "floor", lambda _: _zstd.ZstdDecompressor(), _floor_decompress, checks_seq=False),
        # zstd-stream, one closed frame per payload (Spacebar): neither library decodes it
        "floor-zstd-frames-orjson": lambda: Baseline("floor-zstd-frames-orjson", "floor: one-shot zstd.decompress + orjson.loads", "zstd-frames", "floor", lambda _: _OneShotZstd(), _floor_decompress_loads, checks_seq=False),
        "floor-orjson-zstd": lambda: Baseline("floor-orjson-zstd", "floor: orjson.loads alone", "zstd", "floor", lambda _: None, _floor_loads, "payloads", checks_seq=False),
    }


def hikari_loads() -> Callable[[Any], Any]:
    """hikari's default ``loads`` (``data_binding.default_json_loads``: orjson here)."""
    from hikari.internal import data_binding

    assert data_binding.default_json_loads is orjson.loads
    return data_binding.default_json_loads


_BASELINES: dict[str, Baseline] = {}


def baseline(bid: str) -> Baseline:
    """The baseline ``bid`` (built on first use)."""
    try:
        return _BASELINES[bid]
    except KeyError:
        b = _BASELINES[bid] = _specs()[bid]()
        assert b.id == bid
        return b


BASELINE_IDS = [
    "hikari-zlib", "hikari-zlib-json", "dpy-zlib-orjson", "dpy-zlib-json", "stdlib-zlib-json",
    "floor-inflate-orjson", "floor-inflate", "floor-raw-inflate", "floor-orjson-zlib",
    "hikari-zstd", "hikari-zstd-json", "dpy-zstd-orjson", "dpy-zstd-json", "stdlib-zstd-json",
    "floor-zstd-orjson", "floor-zstd", "floor-orjson-zstd",
]
HIKARI = {"zlib": "hikari-zlib", "zstd": "hikari-zstd"}
FLOOR = {"zlib": "floor-inflate-orjson", "zstd": "floor-zstd-orjson"}


def for_kind(kind: str, *, detail: bool = False) -> list[str]:
    """Baseline ids for one compression kind; ``detail`` adds the extra variants."""
    return [bid for bid in BASELINE_IDS if _KIND[bid] == kind and (detail or bid not in _DETAIL)]


_KIND = {bid: ("zstd" if "zstd" in bid else "zlib") for bid in BASELINE_IDS}
_DETAIL = {"hikari-zlib-json", "hikari-zstd-json", "floor-raw-inflate"}

hikari_run = _hikari_run  # public name for test_compat.py
