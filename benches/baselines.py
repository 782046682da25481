"""What bots run today, in the same bare loop as mijcodec's ``feed()``, plus the floors.

Every baseline is a :class:`Baseline`: ``new()`` makes the per-connection state
(a fresh decompression context: they are stateful), ``run(state, messages)``
decodes a whole recorded stream the way that library does for each received
websocket message, reads the envelope (``op``, ``t``, ``s``, ``d``) like the
library's gateway loop does, and returns ``(payloads decoded, last s)`` so the
benchmarks can check that every baseline really decoded everything.

Like with like: a baseline here is a plain ``for`` loop over the recorded
messages (``bytes``), exactly as mijcodec's case is a plain loop of
``Decoder.feed`` calls: no coroutine, no websocket message object, no event
loop on either side. The libraries' *transports* (coroutines per payload) are
compared only with themselves with mijcodec's drop-in installed, in
test_compat.py, with the helpers at the end of this module.

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
    (the context buffers until the ``00 00 ff ff`` suffix, inflates with
    ``zlib.decompressobj()`` and returns ``str``, ``None`` for a partial
    message), ``utils._from_json`` on the str, then ``msg.get('t')``,
    ``.get('op')``, ``.get('d')``, ``.get('s')``.

hikari 2.7 (``hikari/impl/shard.py``)
    hikari's decode logic reproduced line for line in a bare loop (its
    transport methods are coroutines reading an aiohttp websocket, so they
    cannot run bare): zlib-stream is ``zlib.decompressobj()`` (with adler32,
    as hikari makes it), the ``endswith(b"\x00\x00\xff\xff")`` check with
    a bytearray for a payload split over messages, ``loads`` (hikari's
    ``default_json_loads``: orjson.loads), the ``isinstance(.., dict)``
    assert, then ``_poll_events``' reads (``op``; ``t``, ``d``, ``s`` of a
    dispatch). zstd-stream: one ``ZstdDecompressor().decompress`` per
    message, then the same. Left out: the logger's ``isEnabledFor(TRACE)``
    check of ``receive_json`` and the coroutine/websocket plumbing (both
    measured, stock vs installed, in test_compat.py).

floors (nothing else: no envelope reads, no buffering, no suffix check)
    "raw inflate + orjson.loads": ``orjson.loads(decompress(m))`` per
    message with one ``decompressobj(-15)`` per connection (the 2-byte zlib
    header stripped from the first message: no adler32, as mijcodec's
    inflate), once with the system zlib (``zlib``) and once with zlib-ng
    (``zlib_ng.zlib_ng`` from the ``zlib-ng`` PyPI package; skipped when
    not installed); "libzstd + orjson.loads": the same with one
    ``ZstdDecompressor`` (backports.zstd / compression.zstd: the libzstd
    mijcodec uses); the inflaters alone and "orjson.loads alone" (over the
    already decompressed payloads) show where the time goes; for closed zstd
    frames, the module's one-shot ``decompress`` per frame + orjson.

Shared with test_compat.py (each library stock vs with mijcodec's drop-in
installed): ``dpy_contexts`` (discord.py's stock context classes),
``dpy_received_message`` + ``DpyWebSocket`` + ``dpy_drive``/``drive`` (the same
received_message steps as above, but as a coroutine per message like the
original, reading ``utils._from_json`` from the module at each call, so an
installed drop-in's is the one that runs), ``hikari_stock_class``,
``hikari_transport``, ``hikari_loads``, ``hikari_run`` and ``ws_messages``
(hikari's own transport classes, driven through ``receive_json()`` with a
replay websocket whose ``receive()`` never suspends).
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
    "Baseline", "BaselineUnavailable", "BASELINE_IDS", "baseline", "ws_messages", "HIKARI", "zlib_ng",
    # the libraries' stock paths, shared with test_compat.py (stock vs install())
    "dpy_contexts", "dpy_received_message", "DpyWebSocket", "dpy_drive", "drive",
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


def drive(received_message: Callable[[Any], Any], messages: list) -> None:
    """Run ``await received_message(msg)`` for every message without an event
    loop: each awaitable (a coroutine, or the drop-ins' ready-made one for a
    message that completes no payload) finishes at its first step."""
    for msg in messages:
        step = received_message(msg).__await__()
        try:
            step.send(None)
        except StopIteration:
            continue
        step.close()  # pragma: no cover - would mean it waited for something
        raise RuntimeError("received_message suspended")


def dpy_drive(received_message: Callable[..., Any], ws: DpyWebSocket, messages: list) -> tuple:
    """Feed every recorded message through ``received_message(ws, msg)``."""
    drive(lambda m: received_message(ws, m), messages)
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


# -- the libraries' decode logic in a bare loop ---------------------------------


def _hikari_zlib_logic(loads: Callable[[Any], Any]) -> Callable[[Any, list], tuple]:
    """hikari 2.7's zlib-stream decode logic, line for line, in a bare loop:
    ``_GatewayZlibStreamTransport._receive_and_check`` (shard.py:343-371: the
    ``endswith(_ZLIB_SYNC_FLUSH)`` hot path, a bytearray for a payload split
    over messages), ``receive_json``'s ``loads`` + ``isinstance`` assert
    (shard.py:194-203, without the TRACE-logging check) and the envelope
    reads of ``_poll_events`` (shard.py:847-853). No coroutine, no websocket
    message object: the same harness as mijcodec's ``feed()`` loop."""

    def run(inflator: Any, messages: list) -> tuple:
        decompress = inflator.decompress
        n = 0
        seq = None
        it = iter(messages)
        for data in it:
            if data.endswith(_SUFFIX):
                pl = decompress(data)
            else:
                buff = bytearray(data)
                while not buff.endswith(_SUFFIX):
                    buff.extend(next(it))
                pl = decompress(buff)
            payload = loads(pl)
            assert isinstance(payload, dict)
            n += 1
            op = payload["op"]
            if op == 0:
                name = payload["t"]  # noqa: F841
                d = payload["d"]  # noqa: F841
                seq = payload["s"]
        return n, seq

    return run


def _hikari_zstd_logic(loads: Callable[[Any], Any]) -> Callable[[Any, list], tuple]:
    """hikari 2.7's zstd-stream decode logic in a bare loop:
    ``_GatewayZstdStreamTransport._receive_and_check`` (shard.py:392-398: one
    ``ZstdDecompressor().decompress`` per message), then as for zlib."""

    def run(inflator: Any, messages: list) -> tuple:
        decompress = inflator.decompress
        n = 0
        seq = None
        for data in messages:
            payload = loads(decompress(data))
            assert isinstance(payload, dict)
            n += 1
            op = payload["op"]
            if op == 0:
                name = payload["t"]  # noqa: F841
                d = payload["d"]  # noqa: F841
                seq = payload["s"]
        return n, seq

    return run


# -- floors ---------------------------------------------------------------------


def zlib_ng() -> Any:
    """``zlib_ng.zlib_ng`` (the zlib-ng PyPI package), or BaselineUnavailable."""
    try:
        from zlib_ng import zlib_ng as mod
    except ImportError:
        raise BaselineUnavailable("zlib-ng is not installed (pip install zlib-ng): no zlib-ng floor") from None
    return mod


def _raw_inflate_loads(inflator: Any, messages: list) -> tuple:
    """Raw inflate (the 2-byte zlib header stripped from the first message)
    + orjson.loads, back to back, nothing else."""
    decompress = inflator.decompress
    loads = orjson.loads
    it = iter(messages)
    n = 0
    for m in it:
        loads(decompress(m[2:]))
        n += 1
        break
    for m in it:
        loads(decompress(m))
        n += 1
    return n, None


def _raw_inflate(inflator: Any, messages: list) -> tuple:
    decompress = inflator.decompress
    it = iter(messages)
    n = 0
    for m in it:
        decompress(m[2:])
        n += 1
        break
    for m in it:
        decompress(m)
        n += 1
    return n, None


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
    it consumes: "messages" (the recorded websocket messages) or "payloads"
    (already decompressed, for the orjson-alone floor). ``role`` marks the
    references of the report: "hikari" (hikari's decode logic with orjson)
    and "floor" (an inflater + orjson.loads back to back; the report takes
    the fastest floor of a group as its reference). ``inflater`` names the
    zlib library doing a zlib floor's inflating.
    """

    id: str
    label: str
    kind: str
    family: str  # "discord.py" | "hikari" | "floor"
    new: Callable[[Any], Any]
    run: Callable[[Any, list], tuple]
    input: str = "messages"
    role: str = ""
    checks_seq: bool = True
    inflater: str = ""


def _sys_zlib_label() -> str:
    return f"system zlib {zlib.ZLIB_RUNTIME_VERSION}"


def _ng_label() -> str:
    return f"zlib-ng {zlib_ng().ZLIBNG_RUNTIME_VERSION}"


def _specs() -> dict[str, Callable[[], Baseline]]:
    """id -> constructor; each imports only what its baseline needs."""

    def dpy() -> dict[str, Any]:
        return _dpy()

    def ng_raw(_: Any) -> Any:
        return zlib_ng().decompressobj(-15)

    def sys_raw(_: Any) -> Any:
        return zlib.decompressobj(-15)

    return {
        # zlib-stream
        "hikari-zlib": lambda: Baseline("hikari-zlib", "hikari 2.7 logic (zlib, orjson)", "zlib", "hikari", lambda _: zlib.decompressobj(), _hikari_zlib_logic(hikari_loads()), role="hikari", inflater=_sys_zlib_label()),
        "dpy-zlib-orjson": lambda: Baseline("dpy-zlib-orjson", "discord.py 2.7 logic (zlib, orjson)", "zlib", "discord.py", lambda _, c=dpy()["zlib_ctx"]: c(), _dpy_run(dpy()["from_json_orjson"]), inflater=_sys_zlib_label()),
        "dpy-zlib-json": lambda: Baseline("dpy-zlib-json", "discord.py 2.7 logic (zlib, json)", "zlib", "discord.py", lambda _, c=dpy()["zlib_ctx"]: c(), _dpy_run(dpy()["from_json_json"]), inflater=_sys_zlib_label()),
        "floor-zlib-orjson": lambda: Baseline("floor-zlib-orjson", f"floor: {_sys_zlib_label()} raw inflate + orjson.loads", "zlib", "floor", sys_raw, _raw_inflate_loads, role="floor", checks_seq=False, inflater=_sys_zlib_label()),
        "floor-zlibng-orjson": lambda: Baseline("floor-zlibng-orjson", f"floor: {_ng_label()} raw inflate + orjson.loads", "zlib", "floor", ng_raw, _raw_inflate_loads, role="floor", checks_seq=False, inflater=_ng_label()),
        "floor-zlib": lambda: Baseline("floor-zlib", f"{_sys_zlib_label()} raw inflate alone", "zlib", "floor", sys_raw, _raw_inflate, checks_seq=False, inflater=_sys_zlib_label()),
        "floor-zlibng": lambda: Baseline("floor-zlibng", f"{_ng_label()} raw inflate alone", "zlib", "floor", ng_raw, _raw_inflate, checks_seq=False, inflater=_ng_label()),
        "floor-orjson-zlib": lambda: Baseline("floor-orjson-zlib", "orjson.loads alone", "zlib", "floor", lambda _: None, _floor_loads, "payloads", checks_seq=False),
        # zstd-stream (one open frame)
        "hikari-zstd": lambda: Baseline("hikari-zstd", "hikari 2.7 logic (zstd, orjson)", "zstd", "hikari", lambda _: _zstd.ZstdDecompressor(), _hikari_zstd_logic(hikari_loads()), role="hikari"),
        "dpy-zstd-orjson": lambda: Baseline("dpy-zstd-orjson", f"discord.py 2.7 logic (zstd via {dpy()['zstd_source']}, orjson)", "zstd", "discord.py", lambda _, c=_dpy_zstd_ctx(): c(), _dpy_run(dpy()["from_json_orjson"])),
        "floor-zstd-orjson": lambda: Baseline("floor-zstd-orjson", f"floor: libzstd {_zstd.zstd_version} + orjson.loads", "zstd", "floor", lambda _: _zstd.ZstdDecompressor(), _floor_decompress_loads, role="floor", checks_seq=False),
        "floor-zstd": lambda: Baseline("floor-zstd", f"libzstd {_zstd.zstd_version} alone", "zstd", "floor", lambda _: _zstd.ZstdDecompressor(), _floor_decompress, checks_seq=False),
        "floor-orjson-zstd": lambda: Baseline("floor-orjson-zstd", "orjson.loads alone", "zstd", "floor", lambda _: None, _floor_loads, "payloads", checks_seq=False),
        # zstd-stream, one closed frame per payload (Spacebar): neither library decodes it
        "floor-zstd-frames-orjson": lambda: Baseline("floor-zstd-frames-orjson", f"floor: one-shot libzstd {_zstd.zstd_version} decompress + orjson.loads", "zstd-frames", "floor", lambda _: _OneShotZstd(), _floor_decompress_loads, role="floor", checks_seq=False),
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


BASELINE_IDS = list(_specs())
HIKARI = {"zlib": "hikari-zlib", "zstd": "hikari-zstd"}

hikari_run = _hikari_run  # public name for test_compat.py


def case_timer(config: Any) -> tuple[Callable[[], float], str]:
    """The clock of the interleaved groups' case spans (test_decode.py,
    test_compat.py) and its name: ``--case-timer`` (benches/conftest.py;
    default ``time.thread_time``, this thread's CPU time, which is all of a
    case's work and is steadier than wall time on a machine that other work
    shares)."""
    name = str(config.getoption("case_timer", None) or "time.thread_time")
    module, _, attr = name.rpartition(".")
    try:
        timer = getattr(importlib.import_module(module or "time"), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        import pytest

        raise pytest.UsageError(f"--case-timer {name!r}: {exc}") from None
    return timer, name


def interleaved_rounds(benchmark: Any, cases: list, time_once: Callable[[Any], float], rounds: int) -> int:
    """The rounds of an interleaved group (test_decode.py, test_compat.py): a
    warm-up round (imports, caches, first-use costs; not recorded), then
    ``rounds`` rounds under ``benchmark.pedantic``, each running every case
    once through ``time_once(case)`` in an order rotated by one every round
    (so every case runs in every position equally often), its time appended
    to ``case.times``. Returns the rounds run, the warm-up included."""
    for case in cases:
        time_once(case)
    counter = [0]

    def one_round() -> None:
        k = counter[0] % len(cases)
        counter[0] += 1
        for case in cases[k:] + cases[:k]:
            case.times.append(time_once(case))

    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=0, iterations=1)
    return counter[0] + 1
