"""Drop-in benchmarks (issue 5): each library's own decode path, stock and with
``mijcodec.compat.<library>.install()`` in effect, on the same recorded frames,
in one run.

One ``benchmark.group`` per (library, compression), realistic traffic:

* discord.py: its decompression context (``_ActiveDecompressionContext``, one
  per connection) + ``utils._from_json`` + the steps of
  ``DiscordWebSocket.received_message`` (baselines.dpy_received_message: the
  same lines as the discord.py baselines of test_decode.py, as one coroutine
  per message like the original). Stock uses discord.py's own context class
  and orjson ``_from_json`` (baselines.py says where they come from);
  installed uses what ``install(compress=...)`` put in ``discord.utils``, read
  there when each connection's context is made (as ``DiscordWebSocket.__init__``
  does), and ``received_message`` wrapped by the very wrapper install() puts
  on ``DiscordWebSocket`` (its cost is part of install()'s).
* py-cord, nextcord, disnake: the fork's own ``DiscordWebSocket`` (a real
  instance, made as ``from_client`` makes it minus the network: a stand-in
  socket, no parsers, ``log_receive`` counting payloads) and its real
  ``received_message`` per websocket message, run to completion without an
  event loop (it never suspends). Stock inflates zlib-stream inline; installed
  is the instance's ``received_message`` that install()'s ``__init__`` gave it.
  The forks have no zstd-stream of their own: in their zstd groups the stock
  entry is the stock zlib-stream path on the same payloads, so the ratio is
  what ``install(compress="zstd-stream")`` gives over what the bot had.
  py-cord and nextcord cannot share the main environment (py-cord installs
  ``discord``; nextcord 3 needs Python >= 3.12): their cases skip there and run
  in their own venvs (``pytest benches/test_compat.py -k pycord``).
* hikari: its ``_GatewayZlibStreamTransport`` / ``_GatewayZstdStreamTransport``,
  ``receive_json()`` driven by the replay websocket, hikari's default
  ``loads`` (orjson). Installed: the class ``install()`` put in
  ``hikari.impl.shard`` (looked up there like the shard does).

A group's cases (stock, installed on the compiled codec, installed on the
fallback; the compiled one left out with ``--no-c-extensions``, as in
test_decode) run in interleaved rounds: each round runs every case once on the
whole connection, in an order rotated by one every round, so report.py takes
the installed/stock ratio per round (the median of those, with their
interquartile range), as for the decode groups. ``install()`` (with the compat
module's ``Decoder`` pointed at the implementation, as tests/compat does),
``uninstall()``, the fresh context/transport and ``gc.collect()`` happen
outside each case's timed span. Each installed round asserts the
context/transport is mijcodec's, and each test checks with the module's
``stats()`` that every payload of every installed round went through mijcodec.

Plain ``pytest benches`` (smoke mode) runs each case once, and
``test_installed_decodes_like_stock`` checks, payload by payload, that the
installed path hands the library exactly what the stock path does.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
from typing import Any, Callable, Iterator

import pytest

import baselines as B
import traffic
from mijcodec.compat import discord_py as compat_dpy
from mijcodec.compat import disnake as compat_disnake
from mijcodec.compat import hikari as compat_hikari
from mijcodec.compat import nextcord as compat_nextcord
from mijcodec.compat import pycord as compat_pycord
from mijcodec.compat._dpy_family import owning_distribution

MIX = "realistic"
ROUNDS = 14  # as test_decode's realistic full decode
KINDS = ("zlib", "zstd")
LIBS = ("discord.py", "hikari", "py-cord", "nextcord", "disnake")
FORKS = {"py-cord": ("discord", compat_pycord), "nextcord": ("nextcord", compat_nextcord), "disnake": ("disnake", compat_disnake)}
COMPRESS = {"zlib": "zlib-stream", "zstd": "zstd-stream"}
KIND_LABEL = {"zlib": "zlib-stream", "zstd": "zstd-stream (open frame)"}
COMPAT = {"discord.py": compat_dpy, "hikari": compat_hikari, **{lib: mod for lib, (_n, mod) in FORKS.items()}}
HIKARI_ATTR = {"zlib": "_GatewayZlibStreamTransport", "zstd": "_GatewayZstdStreamTransport"}


def group_name(lib: str, kind: str) -> str:
    return f"drop-in {lib}, {KIND_LABEL[kind]}, {MIX}: stock vs install()"


def _library(lib: str) -> Any:
    """The library's top module; skips when this environment lacks it (py-cord
    and discord.py are told apart by distribution, as the drop-ins do)."""
    name = FORKS[lib][0] if lib in FORKS else {"discord.py": "discord", "hikari": "hikari"}[lib]
    try:
        mod = importlib.import_module(name)
    except ImportError:
        mod = None
    if mod is None or owning_distribution(mod, [lib]) is None:
        pytest.skip(f"{lib} is not installed in this environment (run this case in a venv with {lib})")
    return mod


def _version(lib: str) -> str:
    return ".".join(str(_library(lib).__version__).split(".")[:2])


def _impl_name(codec: Any) -> str:
    return "mijcodec (compiled)" if codec.__name__.endswith("._codec") else "mijcodec (fallback)"


def _info(benchmark: Any, *, lib: str, kind: str) -> None:
    st = traffic.stats(MIX)
    benchmark.group = group_name(lib, kind)
    benchmark.extra_info.update(
        compat=lib,
        mix=MIX,
        kind=kind,
        transport=KIND_LABEL[kind],
        selective=False,
        payloads=st["payloads"],
        payload_bytes=st["bytes"],
        wire_bytes=sum(map(len, traffic.messages(MIX, kind))),
    )


def _check(result: tuple) -> None:
    n, last = result
    assert n == len(traffic.payloads(MIX)), f"decoded {n} payloads of {len(traffic.payloads(MIX))}"
    assert last == traffic.expected_last_seq(MIX)


_WS: dict[str, list] = {}


def _ws(kind: str) -> list:
    """The recorded messages as aiohttp WSMessage objects (made once)."""
    if kind not in _WS:
        _WS[kind] = B.ws_messages(traffic.messages(MIX, kind))
    return _WS[kind]


@contextlib.contextmanager
def _installed(lib: str, kind: str, codec: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``install(compress=...)`` in effect, decoding with ``codec``; always
    uninstalled afterwards. Yields the compat module."""
    mod = COMPAT[lib]
    if lib == "discord.py":
        B.dpy_contexts()  # discord.py's stock objects, captured while it is stock
    mod.uninstall()
    monkeypatch.setattr(mod, "Decoder", codec.Decoder)
    assert mod.install(compress=COMPRESS[kind]) == COMPRESS[kind]
    try:
        yield mod
    finally:
        mod.uninstall()


# -- the two paths of each library ------------------------------------------------------


def _dpy_run(steps: Callable[..., Any]) -> Callable[[Any, list], tuple]:
    return lambda ws, messages: B.dpy_drive(steps, ws, messages)


def _dpy_stock(kind: str) -> tuple[Callable[[], Any], Callable[[Any, list], tuple], list]:
    ctx_cls = B.dpy_contexts()[kind]
    if ctx_cls is None:
        pytest.skip("discord.py has no zstd-stream context here (needs zstandard on Python < 3.14)")
    return lambda: B.DpyWebSocket(ctx_cls()), _dpy_run(B.dpy_received_message()), traffic.messages(MIX, kind)


def _dpy_installed(kind: str, decoder_cls: type) -> tuple[Callable[[], Any], Callable[[Any, list], tuple], list]:
    """While installed: the context class and wrapper install() put in place."""
    import discord.gateway
    import discord.utils

    installed_rm = vars(discord.gateway.DiscordWebSocket)["received_message"]
    steps = compat_dpy._make_received_message(B.dpy_received_message(), discord.gateway.ReconnectWebSocket)
    # the same wrapper code install() put on DiscordWebSocket, around our reproduction of its steps
    assert getattr(installed_rm, "_mijcodec", False) and installed_rm.__code__ is steps.__code__

    def new() -> Any:
        ctx = discord.utils._ActiveDecompressionContext()  # what DiscordWebSocket.__init__ does
        assert isinstance(ctx, compat_dpy._MijcodecContext) and ctx.COMPRESSION_TYPE == COMPRESS[kind]
        assert type(ctx.decoder) is decoder_cls
        return B.DpyWebSocket(ctx)

    return new, _dpy_run(steps), traffic.messages(MIX, kind)


def _hikari_stock(kind: str) -> tuple[Callable[[], Any], Callable[[Any, list], tuple], list]:
    cls = B.hikari_stock_class(kind)
    loads = B.hikari_loads()
    ws = _ws(kind)
    return lambda: B.hikari_transport(cls, ws, loads), B.hikari_run, ws


def _hikari_installed(kind: str, decoder_cls: type) -> tuple[Callable[[], Any], Callable[[Any, list], tuple], list]:
    from hikari.impl import shard

    loads = B.hikari_loads()
    ws = _ws(kind)
    ours = compat_hikari.transport_classes()[COMPRESS[kind]]

    def new() -> Any:
        cls = getattr(shard, HIKARI_ATTR[kind])  # what the shard's connect() looks up
        assert cls is ours
        transport = B.hikari_transport(cls, ws, loads)
        assert type(transport._inflator) is decoder_cls
        return transport

    return new, B.hikari_run, ws


class _Counter:
    """The fork's ``log_receive`` (called once per payload by its own
    received_message, stock or installed): counts payloads."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, _msg: Any, /) -> None:
        self.n += 1


class _Socket:
    closed = False
    close_code = None

    async def send_str(self, data: str) -> None:  # pragma: no cover - nothing is sent
        return None


def _fork_ws(lib: str, compress: str) -> Any:
    """A real DiscordWebSocket of the fork, wired as from_client wires it (minus
    the network). HELLO is read as an unknown op (``ws.HELLO = -1``), so no
    heartbeat thread starts; the same for stock and installed."""
    import asyncio
    import logging

    gateway = importlib.import_module(FORKS[lib][0] + ".gateway")
    logging.getLogger(gateway.__name__).setLevel(logging.ERROR)  # the one "unknown op" warning per round
    loop = asyncio.new_event_loop()
    ws = gateway.DiscordWebSocket(_Socket(), loop=loop)
    loop.close()
    ws._dispatch = lambda *args: None
    ws._discord_parsers = {}
    ws._connection = None
    ws._max_heartbeat_timeout = 60.0
    ws.gateway = f"wss://gateway.example/?encoding=json&v=10&compress={compress}"
    ws.shard_id = None
    ws.session_id = None
    ws.HELLO = -1
    ws.log_receive = _Counter()
    return ws


def _fork_run(ws: Any, messages: list) -> tuple:
    B.drive(ws.received_message, messages)
    return ws.log_receive.n, ws.sequence


def _fork_stock(lib: str) -> Callable[[str], tuple]:
    def stock(kind: str) -> tuple[Callable[[], Any], Callable[[Any, list], tuple], list]:
        _library(lib)
        # no zstd-stream of their own: the stock entry of the zstd group is zlib-stream, same payloads
        return lambda: _fork_ws(lib, "zlib-stream"), _fork_run, traffic.messages(MIX, "zlib")

    return stock


def _fork_installed(lib: str) -> Callable[[str, type], tuple]:
    def installed(kind: str, decoder_cls: type) -> tuple[Callable[[], Any], Callable[[Any, list], tuple], list]:
        def new() -> Any:
            ws = _fork_ws(lib, COMPRESS[kind])
            assert getattr(vars(ws).get("received_message"), "_mijcodec", False)  # install()'s __init__ gave it
            return ws

        def run(ws: Any, messages: list) -> tuple:
            result = _fork_run(ws, messages)
            assert type(ws._mijcodec_decoder) is decoder_cls and ws._mijcodec_decoder.compress == COMPRESS[kind]
            return result

        return new, run, traffic.messages(MIX, kind)

    return installed


STOCK = {"discord.py": _dpy_stock, "hikari": _hikari_stock, **{lib: _fork_stock(lib) for lib in FORKS}}
INSTALLED = {"discord.py": _dpy_installed, "hikari": _hikari_installed, **{lib: _fork_installed(lib) for lib in FORKS}}


def _stock_label(lib: str, kind: str) -> str:
    if lib in FORKS:
        utils = importlib.import_module(FORKS[lib][0] + ".utils")
        parser = getattr(utils, COMPAT[lib]._dropin.from_json_attr)
        parser_name = getattr(parser, "__module__", None) or "?"  # orjson, json, msgspec.json
        return f"{lib} {_version(lib)} stock (zlib, {parser_name}{'; it has no zstd-stream' if kind == 'zstd' else ''})"
    if lib == "discord.py" and kind == "zstd":
        return f"discord.py {_version(lib)} stock (zstd via {B._dpy()['zstd_source']}, orjson)"
    return f"{lib} {_version(lib)} stock ({kind}, orjson)"


CASES = [(lib, kind) for lib in LIBS for kind in KINDS]
IDS = [f"{'dpy' if lib == 'discord.py' else lib.replace('-', '')}-{kind}" for lib, kind in CASES]
IMPLS = [pytest.param("cython", marks=pytest.mark.c_extension), "python"]


def _codec(request: pytest.FixtureRequest, impl: str) -> Any:
    """The mijcodec implementation the installed drop-in decodes with; like the
    ``codec`` fixture (conftest.py), but chosen per test so that a group's
    stock and installed runs follow each other (less drift between them on a
    busy machine than the session fixture's grouping by implementation)."""
    if impl == "cython":
        if request.config.getoption("--no-c-extensions"):
            pytest.skip("--no-c-extensions given")
        return importlib.import_module("mijcodec._codec")  # a missing build fails here
    return importlib.import_module("mijcodec._codec_py")


class _Case:
    """One case of a drop-in group: stock, or install() decoding with one
    mijcodec implementation; its fresh per-connection state, loop, input and
    the round times measured so far."""

    __slots__ = ("key", "info", "codec", "new", "run", "data", "times")

    def __init__(self, key: str, info: dict, codec: Any, new: Callable[[], Any], run: Callable[[Any, list], tuple], data: list) -> None:
        self.key, self.info, self.codec, self.new, self.run, self.data = key, info, codec, new, run, data
        self.times: list = []


@contextlib.contextmanager
def _state(lib: str, kind: str, codec: Any) -> Iterator[Any]:
    """The library stock (``codec`` None) or with install(compress=...) in
    effect decoding with ``codec``; uninstalled (and the compat module's
    ``Decoder`` put back) afterwards, whatever happens."""
    mod = COMPAT[lib]
    original = mod.Decoder
    mod.uninstall()
    try:
        if codec is not None:
            mod.Decoder = codec.Decoder
            assert mod.install(compress=COMPRESS[kind]) == COMPRESS[kind]
        yield mod
    finally:
        mod.uninstall()
        mod.Decoder = original


def _time_once(case: _Case, lib: str, kind: str, timer: Callable[[], float]) -> float:
    """One round of one case: the state made (install()/uninstall() and
    ``gc.collect()`` included) outside the timed span."""
    with _state(lib, kind, case.codec):
        state = case.new()
        gc.collect()
        t0 = timer()
        result = case.run(state, case.data)
        elapsed = timer() - t0
    _check(result)
    return elapsed


@pytest.mark.parametrize("lib,kind", CASES, ids=IDS)
def test_drop_in(benchmark: Any, request: pytest.FixtureRequest, lib: str, kind: str) -> None:
    """Stock, install() on the compiled codec and install() on the fallback, in
    interleaved rounds: every round runs each once on the whole recorded
    connection from a fresh context/transport, in an order rotated by one
    every round (like test_decode's groups), so that a ratio is taken per
    round, between runs seconds apart, not between runs minutes apart on a
    machine whose speed drifts. The round times go into
    ``extra_info["cases"]``, which report.py reads; the round time
    pytest-benchmark reports for this test is all three plus setup: ignore it."""
    _library(lib)
    if lib == "discord.py":
        B.dpy_contexts()  # discord.py's stock objects, captured while it is stock
    assert not COMPAT[lib].is_installed()
    cases, missing = [], {}
    new, run, data = STOCK[lib](kind)  # skips when the library lacks this transport
    info = dict(impl=_stock_label(lib, kind), family=lib, role="stock")
    cases.append(_Case("stock", info, None, new, run, data))
    for impl in ("cython", "python"):
        if impl == "cython" and request.config.getoption("--no-c-extensions"):
            missing[impl] = "--no-c-extensions given"
            continue
        codec = _codec(request, impl)
        with _state(lib, kind, codec):  # the installed objects are looked up while installed
            new, run, data = INSTALLED[lib](kind, codec.Decoder)
        info = dict(impl=f"{lib} {_version(lib)} + install(): {_impl_name(codec)}", family="ours", role="installed")
        cases.append(_Case(impl, info, codec, new, run, data))
    mod = COMPAT[lib]
    timer, timer_name = B.case_timer(request.config)
    before = mod.stats()
    rounds = B.interleaved_rounds(benchmark, cases, lambda case: _time_once(case, lib, kind, timer), ROUNDS)
    after = mod.stats()
    assert not mod.is_installed()
    # every payload of every installed round (the warm-up's too) went through mijcodec, without an error
    n = len(traffic.payloads(MIX))
    installed_rounds = rounds * (len(cases) - 1)
    assert after["payloads"] - before["payloads"] == installed_rounds * n
    assert after["connections"] - before["connections"] >= installed_rounds
    assert after["codec_errors"] == before["codec_errors"]
    _info(benchmark, lib=lib, kind=kind)
    benchmark.extra_info.update(
        interleaved=True,
        timer=timer_name,
        title=group_name(lib, kind),
        unavailable=missing,
        cases=[dict(case.info, id=case.key, times=case.times) for case in cases],
    )


# -- correctness: installed hands the library what stock does ---------------------------


def _dpy_outputs(ctx: Any, from_json: Callable[[Any], Any], messages: list) -> Iterator[tuple]:
    """(text, envelope dict) per payload: what decompress() gives discord.py
    (on_socket_raw_receive gets the text) and what ``_from_json`` makes of it."""
    for m in messages:
        text = ctx.decompress(m)
        if text is not None:
            yield text, from_json(text)


def _hikari_outputs(transport: Any, n: int) -> Iterator[Any]:
    for _ in range(n):
        coro = transport.receive_json()
        try:
            coro.send(None)
        except StopIteration as done:
            yield done.value
        else:  # pragma: no cover
            coro.close()
            raise RuntimeError("hikari transport suspended")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("lib,kind", CASES, ids=IDS)
def test_installed_decodes_like_stock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, lib: str, kind: str, impl: str) -> None:
    """Payload by payload, in lockstep (not a benchmark: skipped by
    --benchmark-only): the installed path gives the library exactly what its
    stock path gives, on the benchmark's frames."""
    codec = _codec(request, impl)
    n = len(traffic.payloads(MIX))
    if lib == "discord.py":
        ctx_cls = B.dpy_contexts()[kind]
        if ctx_cls is None:
            pytest.skip("discord.py has no zstd-stream context here")
        msgs = traffic.messages(MIX, kind)
        stock = _dpy_outputs(ctx_cls(), B._dpy()["from_json_orjson"], msgs)
        with _installed(lib, kind, codec, monkeypatch) as mod:
            import discord.utils

            before = mod.stats()["payloads"]
            ctx = discord.utils._ActiveDecompressionContext()
            assert type(ctx.decoder) is codec.Decoder
            ours = _dpy_outputs(ctx, discord.utils._from_json, msgs)
            count = 0
            for (s_text, s_msg), (o_text, o_msg) in zip(stock, ours, strict=True):
                assert type(o_text) is str and o_text == s_text
                assert type(o_msg) is dict and o_msg == s_msg, (count, s_msg.get("t"))
                assert type(o_msg["op"]) is int
                count += 1
            assert mod.stats()["payloads"] - before == n
    elif lib in FORKS:
        _library(lib)

        def outputs(ws: Any, messages: list) -> list[tuple]:
            seen: list[tuple] = []  # (text, t, d) per payload: what the library's own code got

            class Parsers(dict):
                def __missing__(self, t: str) -> Any:
                    return lambda d: seen.append((texts[-1], t, d))

            texts: list[str] = []
            ws.log_receive = texts.append
            ws._discord_parsers = Parsers()
            B.drive(ws.received_message, messages)
            assert all(type(t) is str for t in texts)
            return [*seen, ("texts", tuple(texts))]

        stock_out = outputs(_fork_ws(lib, "zlib-stream"), traffic.messages(MIX, "zlib"))
        with _installed(lib, kind, codec, monkeypatch) as mod:
            before = mod.stats()["payloads"]
            ws = _fork_ws(lib, COMPRESS[kind])
            ours = outputs(ws, traffic.messages(MIX, kind))
            assert type(ws._mijcodec_decoder) is codec.Decoder
            assert ours == stock_out
            assert mod.stats()["payloads"] - before == n
        count = len(stock_out[-1][1])
    else:
        ws = _ws(kind)
        stock = _hikari_outputs(B.hikari_transport(B.hikari_stock_class(kind), ws, B.hikari_loads()), n)
        with _installed(lib, kind, codec, monkeypatch) as mod:
            before = mod.stats()["payloads"]
            t = B.hikari_transport(compat_hikari.transport_classes()[COMPRESS[kind]], ws, B.hikari_loads())
            assert type(t._inflator) is codec.Decoder
            count = 0
            for s_msg, o_msg in zip(stock, _hikari_outputs(t, n), strict=True):
                assert type(o_msg) is dict and o_msg == s_msg, (count, s_msg.get("t"))
                assert type(o_msg["op"]) is int
                count += 1
            assert mod.stats()["payloads"] - before == n
    assert count == n
