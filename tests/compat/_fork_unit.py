"""Unit tests shared by the py-cord, nextcord and disnake drop-ins, against the
real library: the per-connection received_message (fed directly, on both
mijcodec implementations through ``impl``), the ``_from_json`` fast path, the
codec-error path, the URL rewrite for zstd-stream, install/uninstall, the
version gate and a simulated rename of every private name relied on. The test
modules (test_<fork>_unit.py) import these and define ``fork``."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

import mijcodec
from mijcodec.compat import UnsupportedLibraryError
from tests.compat._helpers import SUFFIX, FakeClient, FakeSocket, Fork, payload, zlib_messages, zstd_messages

ACK = payload(None, None, 11, None)  # not HELLO: that would start the library's heartbeat thread
READY = payload("READY", 1, 0, {"session_id": "abc", "v": 10, "guilds": [], "resume_gateway_url": "wss://r.example"})
MSG = payload("MESSAGE_CREATE", 2, 0, {"content": "héllo ✓", "id": "1"})


def make_ws(fork: Fork, *, session: str | None = "sess", url: str = "wss://g.example/?v=10&encoding=json&compress=zlib-stream") -> tuple[Any, FakeSocket, FakeClient]:
    """A real DiscordWebSocket of the fork, wired as from_client wires it (minus the network)."""
    sock = FakeSocket()
    client = FakeClient()
    ws = fork.gateway().DiscordWebSocket(sock, loop=asyncio.get_running_loop())
    ws._dispatch = client.dispatch
    ws._discord_parsers = {}
    ws._connection = object()
    ws._max_heartbeat_timeout = 60.0
    ws.gateway = url
    ws.shard_id = None
    ws.session_id = session
    ws.sequence = 5 if session else None
    ws.log_receive = lambda msg: client.dispatch("socket_raw_receive", msg)
    return ws, sock, client


def raw_received(client: FakeClient) -> list[Any]:
    return [e[1] for e in client.dispatched if e[0] == "socket_raw_receive"]


def state(fork: Fork) -> tuple:
    """Everything install() may patch (None for what is absent)."""
    import importlib

    gw = fork.gateway()
    utils = importlib.import_module(fork.lib.__name__ + ".utils")
    http = importlib.import_module(fork.lib.__name__ + ".http")
    drop = fork.compat._dropin
    ws_vars = vars(getattr(gw, "DiscordWebSocket", object))
    return (
        ws_vars.get("__init__"),
        ws_vars.get("received_message"),
        getattr(utils, drop.from_json_attr, None),
        tuple(vars(http.HTTPClient).get(b) for b in drop.url_builders),
    )


# -- the per-connection path ------------------------------------------------------


async def test_zlib_split_suffix_and_text_to_the_library(fork: Fork, impl: Any) -> None:
    """The suffix split across messages (stock glues payloads); the library's own
    received_message gets the text and sets its sequence."""
    fork.compat.install()
    ws, _sock, client = make_ws(fork)
    m1, m2, m3 = zlib_messages([ACK, READY, MSG])
    before = fork.compat.stats()
    await ws.received_message(m1[:-2])
    await ws.received_message(m1[-2:])
    await ws.received_message(m2)
    for i in range(len(m3)):
        await ws.received_message(m3[i : i + 1])
    assert raw_received(client) == [ACK.decode(), READY.decode(), MSG.decode()]
    assert all(type(t) is str for t in raw_received(client))
    assert type(ws._mijcodec_decoder) is impl.Decoder and ws._mijcodec_decoder.compress == "zlib-stream"
    assert ws.sequence == 2
    after = fork.compat.stats()
    assert after["payloads"] - before["payloads"] == 3 and after["connections"] - before["connections"] == 1


@pytest.mark.parametrize("spacebar", [False, True], ids=["discord", "spacebar"])
async def test_zstd_by_the_url_it_connected_to(fork: Fork, impl: Any, spacebar: bool) -> None:
    fork.compat.install(compress="zstd-stream")
    ws, _sock, client = make_ws(fork, url="wss://g.example/?v=10&encoding=json&compress=zstd-stream")
    for m in zstd_messages([ACK, READY, MSG], spacebar=spacebar):
        await ws.received_message(m)
    assert raw_received(client) == [ACK.decode(), READY.decode(), MSG.decode()]
    assert ws._mijcodec_decoder.compress == "zstd-stream"


async def test_from_json_identity_fast_path_one_shot(fork: Fork, impl: Any) -> None:
    import importlib

    fork.compat.install()
    utils = importlib.import_module(fork.lib.__name__ + ".utils")
    from_json = getattr(utils, fork.compat._dropin.from_json_attr)
    seen: list[Any] = []
    ws, _sock, _client = make_ws(fork)
    ws.log_receive = seen.append
    await ws.received_message(zlib_messages([MSG])[0])
    (text,) = seen
    # consumed by the library's own received_message; again: parsed normally, an equal fresh dict
    again = from_json(text)
    assert again == json.loads(MSG)
    copy = "".join(list(text))
    assert copy is not text and from_json(copy) == json.loads(MSG)
    assert from_json('{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}


async def test_corrupt_frame_closes_4000_and_raises_reconnect(fork: Fork, impl: Any) -> None:
    fork.compat.install()
    gw = fork.gateway()
    before = fork.compat.stats()["codec_errors"]
    ws, sock, _client = make_ws(fork)
    await ws.received_message(zlib_messages([READY])[0])
    with pytest.raises(gw.ReconnectWebSocket) as info:
        await ws.received_message(b"\xff\xff\xff\xff\xff" + SUFFIX)
    assert info.value.resume is True
    assert isinstance(info.value.__cause__, mijcodec.DecompressError)
    assert sock.closed_with == [4000]
    assert fork.compat.stats()["codec_errors"] == before + 1


async def test_corrupt_first_frame_identifies_again(fork: Fork, impl: Any) -> None:
    fork.compat.install()
    ws, sock, client = make_ws(fork, session=None)
    with pytest.raises(fork.gateway().ReconnectWebSocket) as info:
        await ws.received_message(b"\x78\x9c\xff\xff\xff\xff\xff" + SUFFIX)
    assert info.value.resume is False
    assert client.ws is ws  # Client.connect reads client.ws.sequence
    assert sock.closed_with == [4000]


@pytest.mark.parametrize("bad", [b'{"t":"X","s":3,"op":0,"d":{"a":', b"[1,2]", b'{"t":"X","s":3,"op":0,"d":{"a":}'])
async def test_not_json_logged_like_stock_then_reconnects(fork: Fork, impl: Any, bad: bytes) -> None:
    """A complete payload that is not a JSON object: socket_raw_receive gets
    its text first (stock dispatches it before its parse fails), then the
    connection closes with 4000 and resumes."""
    fork.compat.install()
    ws, sock, client = make_ws(fork)
    with pytest.raises(fork.gateway().ReconnectWebSocket) as info:
        await ws.received_message(zlib_messages([bad])[0])
    assert raw_received(client) == [bad.decode()]
    assert isinstance(info.value.__cause__, mijcodec.DecodeError)
    assert sock.closed_with == [4000]


async def test_envelope_without_t_s_d_or_op(fork: Fork, impl: Any) -> None:
    """Spacebar-style envelopes: the library's own code gets what it can read.
    nextcord indexes t/s/d/op: an absent t/s/d is None for it, a payload without
    op ends the connection (it would die on KeyError); the others read them with
    .get and get exactly the parsed payload."""
    fork.compat.install()
    seen: list[Any] = []
    ws, sock, client = make_ws(fork)
    ws._discord_parsers = {"MIJ": seen.append}
    no_s, message = zlib_messages([b'{"op":0,"t":"MIJ","d":{"n":1}}', b'{"t":"MIJ","s":6,"d":{"n":2}}'])
    await ws.received_message(no_s)
    assert seen == [{"n": 1}] and ws.sequence == 5  # unchanged: s is None
    if fork.compat._dropin.fill:
        with pytest.raises(fork.gateway().ReconnectWebSocket):
            await ws.received_message(message)
        assert sock.closed_with == [4000]
    else:
        await ws.received_message(message)  # the library's own handling of a missing op
        assert sock.closed_with == []
    assert raw_received(client)[-1] == '{"t":"MIJ","s":6,"d":{"n":2}}'


async def test_text_frames_go_to_the_library(fork: Fork, impl: Any) -> None:
    fork.compat.install()
    ws, _sock, client = make_ws(fork)
    await ws.received_message(MSG.decode())
    assert ("socket_event_type", "MESSAGE_CREATE") in client.dispatched
    assert ws.sequence == 2
    assert not hasattr(ws, "_mijcodec_decoder")  # no binary message yet: no Decoder made


async def test_connection_opened_while_installed_keeps_mijcodec(fork: Fork, impl: Any) -> None:
    fork.compat.install()
    ws, _sock, client = make_ws(fork)
    m1, m2 = zlib_messages([READY, MSG])
    await ws.received_message(m1)
    fork.compat.uninstall()
    await ws.received_message(m2[:-1])
    await ws.received_message(m2[-1:])  # stock would never complete this one
    assert raw_received(client) == [READY.decode(), MSG.decode()]
    fresh, _s, _c = make_ws(fork)
    assert "received_message" not in vars(fresh)  # new connections: the library's own


# -- gateway URLs ------------------------------------------------------------------


def test_zstd_rewrites_only_zlib_gateway_urls(fork: Fork) -> None:
    import importlib

    from mijcodec.compat._dpy_family import _url_wrapper

    http = importlib.import_module(fork.lib.__name__ + ".http")
    stock = state(fork)
    own = fork.compat._dropin.own_choice()  # zlib-stream for every released fork
    other = "zstd-stream" if own == "zlib-stream" else "zlib-stream"
    assert fork.compat.install() == own
    assert state(fork)[3] == stock[3]  # install() keeps the library's URLs
    assert fork.compat.install(compress=other) == other
    patched = state(fork)[3]
    assert all(p is not s for p, s in zip(patched, stock[3]))
    assert fork.compat.install(compress=own) == own
    assert state(fork)[3] == stock[3]

    # the wrapper itself: a stream compression becomes the one asked for, anything else is left
    def fmt(url: str) -> str:
        return url

    wrapped = _url_wrapper(fmt, "zstd-stream")
    assert wrapped("wss://g/?encoding=json&v=10&compress=zlib-stream") == "wss://g/?encoding=json&v=10&compress=zstd-stream"
    assert wrapped("wss://g/?encoding=json&v=10") == "wss://g/?encoding=json&v=10"
    assert _url_wrapper(fmt, "zlib-stream")("wss://g/?compress=zstd-stream") == "wss://g/?compress=zlib-stream"
    assert _url_wrapper(lambda: (2, "wss://g/?compress=zlib-stream"), "zstd-stream")() == (2, "wss://g/?compress=zstd-stream")
    fork.compat.uninstall()
    assert state(fork) == stock
    assert http.HTTPClient is not None


# -- install / uninstall -----------------------------------------------------------


def test_install_idempotent_logs_once_and_uninstall_restores(fork: Fork, caplog: pytest.LogCaptureFixture) -> None:
    stock = state(fork)
    with caplog.at_level(logging.INFO, logger="mijcodec.compat"):
        own = fork.compat._dropin.own_choice()
        assert fork.compat.install() == own
        patched = state(fork)
        assert fork.compat.install() == own
    assert state(fork) == patched
    assert patched[0] is not stock[0] and patched[2] is not stock[2]
    assert patched[1] is stock[1]  # received_message is per connection, the class keeps its own
    infos = [r for r in caplog.records if r.name == "mijcodec.compat" and r.levelno == logging.INFO]
    assert len(infos) == 1 and mijcodec.IMPLEMENTATION in infos[0].getMessage()
    assert fork.compat.is_installed()
    fork.compat.uninstall()
    fork.compat.uninstall()
    assert state(fork) == stock and not fork.compat.is_installed()


def test_rejects_unknown_compress_patching_nothing(fork: Fork) -> None:
    stock = state(fork)
    with pytest.raises(ValueError):
        fork.compat.install(compress="zlib")
    assert state(fork) == stock


@pytest.mark.parametrize("version", ["1.7.3", "0.1", "garbage"])
def test_old_version_refused_patching_nothing(fork: Fork, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(fork.lib, "__version__", version)
    stock = state(fork)
    with pytest.raises(UnsupportedLibraryError, match=">="):
        fork.compat.install()
    assert state(fork) == stock and not fork.compat.is_installed()


def _renames(fork: Fork) -> list[tuple[str, str, Any]]:
    """(what, module attribute path, how) for every name the drop-in relies on:
    each simulated as renamed by the library."""
    drop = fork.compat._dropin
    n = fork.lib.__name__
    out = [
        ("DiscordWebSocket", f"{n}.gateway", "DiscordWebSocket"),
        ("ReconnectWebSocket", f"{n}.gateway", "ReconnectWebSocket"),
        (drop.from_json_attr, f"{n}.utils", drop.from_json_attr),
        ("received_message", f"{n}.gateway.DiscordWebSocket", "received_message"),
        ("from_client", f"{n}.gateway.DiscordWebSocket", "from_client"),
    ]
    out += [(b, f"{n}.http.HTTPClient", b) for b in drop.url_builders]
    return out


def _resolve(path: str) -> Any:
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p)
        return obj
    raise ImportError(path)


def test_each_renamed_private_name_refused_patching_nothing(fork: Fork, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name the drop-in relies on, renamed by the library one at a time:
    install() refuses, names it, and patches nothing."""
    renames = _renames(fork)
    assert len(renames) >= 6
    for what, owner_path, attr in renames:
        with monkeypatch.context() as mp:
            owner = _resolve(owner_path)
            if isinstance(owner, type) and attr in ("received_message", "from_client"):
                # renamed inside: the method exists but no longer uses the names relied on
                # (received_message: log_receive + utils.<from_json>; from_client: ws.gateway)
                async def renamed(self: Any, *args: Any, **kwargs: Any) -> None:
                    return None

                mp.setattr(owner, attr, renamed)
            else:
                mp.delattr(owner, attr)
            renamed_state = state(fork)
            with pytest.raises(UnsupportedLibraryError, match="nothing was patched") as info:
                fork.compat.install(compress="zstd-stream")
            assert what in str(info.value), (what, str(info.value))
            assert not fork.compat.is_installed()
            assert state(fork) == renamed_state, what
    fork.compat.install()  # and with every name back, it installs
    assert fork.compat.is_installed()
