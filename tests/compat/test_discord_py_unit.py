"""mijcodec.compat.discord_py against the real discord.py, unit level: the
decompression contexts, the _from_json fast path, the received_message wrapper,
install/uninstall and the version gate. Every test runs on both mijcodec
implementations (the ``impl`` fixture)."""

from __future__ import annotations

from tests.compat._helpers import require_library

require_library("discord.py", "discord")  # skips (or, when CI requires it, fails) without discord.py

import json
import logging
from typing import Any

import discord
import discord.gateway
import discord.utils
import pytest

import mijcodec
from mijcodec.compat import UnsupportedLibraryError
from mijcodec.compat import discord_py as compat
from tests.compat._helpers import SUFFIX, FakeClient, FakeSocket, payload, zlib_messages, zstd_messages

HELLO = payload(None, None, 10, {"heartbeat_interval": 41250})
READY = payload("READY", 1, 0, {"session_id": "abc", "v": 10, "guilds": [], "resume_gateway_url": "wss://r.example"})
MSG = payload("MESSAGE_CREATE", 2, 0, {"content": "héllo ✓", "id": "1"})


def originals() -> tuple[Any, Any, Any]:
    return (
        discord.utils._ActiveDecompressionContext,
        discord.utils._from_json,
        vars(discord.gateway.DiscordWebSocket)["received_message"],
    )


# -- contexts ---------------------------------------------------------------------


def test_zlib_context_split_suffix(impl: Any) -> None:
    """The 00 00 ff ff suffix split across two websocket messages: stock discord.py
    only looks at the newest message's last 4 bytes and never completes it."""
    ctx = compat.ZlibStreamContext()
    m1, m2, m3 = zlib_messages([HELLO, READY, MSG])
    assert m1.endswith(SUFFIX) and m2.endswith(SUFFIX)
    assert ctx.decompress(m1) == HELLO.decode()
    # READY's suffix split 00 00 | ff ff, then MSG's split 00 00 ff | ff
    assert ctx.decompress(m2[:-2]) is None
    assert ctx.decompress(m2[-2:]) == READY.decode()
    assert ctx.decompress(m3[:-1]) is None
    assert ctx.decompress(m3[-1:]) == MSG.decode()
    assert ctx.decoder.payloads == 3


def test_zlib_context_byte_by_byte(impl: Any) -> None:
    ctx = compat.ZlibStreamContext()
    out = []
    for m in zlib_messages([HELLO, READY, MSG]):
        for i in range(len(m)):
            r = ctx.decompress(m[i : i + 1])
            if r is not None:
                out.append(r)
    assert out == [HELLO.decode(), READY.decode(), MSG.decode()]


def test_zlib_context_corrupt_frame_raises_decompress_error(impl: Any) -> None:
    ctx = compat.ZlibStreamContext()
    m1, _ = zlib_messages([HELLO, READY])
    assert ctx.decompress(m1) == HELLO.decode()
    with pytest.raises(mijcodec.DecompressError):
        ctx.decompress(b"\xff\xff\xff\xff\xff" + SUFFIX)


def test_zstd_context_discord_open_frame(impl: Any) -> None:
    ctx = compat.ZstdStreamContext()
    assert [ctx.decompress(m) for m in zstd_messages([HELLO, READY, MSG])] == [
        HELLO.decode(),
        READY.decode(),
        MSG.decode(),
    ]


def test_zstd_context_spacebar_closed_frames(impl: Any) -> None:
    """Spacebar closes one zstd frame per payload; stock discord.py (zstandard)
    fails on the second payload."""
    ctx = compat.ZstdStreamContext()
    msgs = zstd_messages([HELLO, READY, MSG], spacebar=True)
    assert [ctx.decompress(m) for m in msgs] == [HELLO.decode(), READY.decode(), MSG.decode()]


def test_stock_discord_py_fails_on_spacebar_zstd() -> None:
    """Control: the failure the drop-in fixes is real in the installed discord.py."""
    stock = getattr(discord.utils, "_ZstdDecompressionContext", None)
    if stock is None:
        pytest.skip("this discord.py negotiates zlib-stream (no zstandard/compression.zstd)")
    ctx = stock()
    msgs = zstd_messages([HELLO, READY], spacebar=True)
    assert ctx.decompress(msgs[0]) == HELLO.decode()
    with pytest.raises(Exception):
        ctx.decompress(msgs[1])


def test_context_returns_str_and_one_instance_per_connection(impl: Any) -> None:
    a, b = compat.ZlibStreamContext(), compat.ZlibStreamContext()
    assert a.decoder is not b.decoder
    assert compat.ZlibStreamContext.COMPRESSION_TYPE == "zlib-stream"
    assert compat.ZstdStreamContext.COMPRESSION_TYPE == "zstd-stream"
    out = a.decompress(zlib_messages([MSG])[0])
    assert type(out) is str and out == MSG.decode()


# -- _from_json fast path ----------------------------------------------------------


def test_from_json_identity_fast_path_is_exact_and_one_shot(impl: Any) -> None:
    compat.install(compress="zlib-stream")
    ctx = discord.utils._ActiveDecompressionContext()
    text = ctx.decompress(zlib_messages([MSG])[0])
    first = discord.utils._from_json(text)
    assert first == json.loads(MSG)
    assert type(first["op"]) is int
    # one-shot: the same object again is parsed normally (a fresh, equal dict)
    second = discord.utils._from_json(text)
    assert second == first and second is not first
    # an equal but different str never takes the fast path
    copy = "".join(list(text))
    assert copy == text and copy is not text
    assert discord.utils._from_json(copy) == json.loads(MSG)


def test_from_json_other_arguments_use_discord_py_parser(impl: Any) -> None:
    compat.install()
    assert discord.utils._from_json('{"a":[1,2,{"b":null}]}') == {"a": [1, 2, {"b": None}]}
    with pytest.raises(ValueError):
        discord.utils._from_json("{not json")


def test_from_json_fast_path_envelope_without_t_s(impl: Any) -> None:
    """Spacebar-style HELLO without t/s: discord.py reads them with .get(), None."""
    compat.install(compress="zlib-stream")
    ctx = discord.utils._ActiveDecompressionContext()
    raw = b'{"op":10,"d":{"heartbeat_interval":1000}}'
    msg = discord.utils._from_json(ctx.decompress(zlib_messages([raw])[0]))
    assert msg.get("op") == 10 and msg.get("d") == {"heartbeat_interval": 1000}
    assert msg.get("t") is None and msg.get("s") is None


# -- the received_message wrapper ----------------------------------------------------


def make_ws(loop: Any, *, session: str | None) -> tuple[Any, FakeSocket, FakeClient]:
    sock = FakeSocket()
    client = FakeClient()
    ws = discord.gateway.DiscordWebSocket(sock, loop=loop)
    ws._dispatch = client.dispatch
    ws._discord_parsers = {}
    ws._connection = object()
    ws.shard_id = None
    ws.session_id = session
    ws.sequence = 5 if session else None
    ws.log_receive = lambda msg: client.dispatch("socket_raw_receive", msg)
    return ws, sock, client


async def test_corrupt_frame_closes_4000_and_raises_reconnect_resume(impl: Any) -> None:
    import asyncio

    compat.install(compress="zlib-stream")
    before = compat.stats()["codec_errors"]
    ws, sock, client = make_ws(asyncio.get_running_loop(), session="sess")
    assert isinstance(ws._decompressor, compat.ZlibStreamContext)
    m1, m2 = zlib_messages([READY, MSG])
    await ws.received_message(m1)
    assert ("socket_raw_receive", READY.decode()) in client.dispatched
    with pytest.raises(discord.gateway.ReconnectWebSocket) as info:
        await ws.received_message(b"\xff\xff\xff\xff\xff" + SUFFIX)
    assert info.value.resume is True
    assert isinstance(info.value.__cause__, mijcodec.DecompressError)
    assert sock.closed_with == [4000]  # not 1000/1001: the session stays resumable
    assert compat.stats()["codec_errors"] == before + 1


async def test_corrupt_hello_on_first_connection_identifies_again(impl: Any) -> None:
    """No session yet: ask for IDENTIFY, and give Client.connect a ws to read
    (discord.py crashes on client.ws None otherwise)."""
    import asyncio

    compat.install(compress="zlib-stream")
    ws, sock, client = make_ws(asyncio.get_running_loop(), session=None)
    with pytest.raises(discord.gateway.ReconnectWebSocket) as info:
        await ws.received_message(b"\x78\x9c\xff\xff\xff\xff\xff" + SUFFIX)
    assert info.value.resume is False
    assert client.ws is ws
    assert sock.closed_with == [4000]


@pytest.mark.parametrize(
    "bad",
    [
        b'{"t":"X","s":3,"op":0,"d":{"a":',  # mijcodec's feed rejects it
        b'{"t":"X","s":3,"op":0,"d":{"a":}',  # canonical prefix: only the parse of d finds it
    ],
)
async def test_not_json_payload_also_reconnects(impl: Any, bad: bytes) -> None:
    """Stock discord.py dispatches socket_raw_receive with the text before its
    parse fails; so does the drop-in, then it closes (4000) and resumes."""
    import asyncio

    compat.install(compress="zlib-stream")
    ws, sock, client = make_ws(asyncio.get_running_loop(), session="sess")
    with pytest.raises(discord.gateway.ReconnectWebSocket) as info:
        await ws.received_message(zlib_messages([bad])[0])
    assert [e[1] for e in client.dispatched if e[0] == "socket_raw_receive"] == [bad.decode()]
    assert isinstance(info.value.__cause__, mijcodec.DecodeError)
    assert info.value.resume is True
    assert sock.closed_with == [4000]


async def test_stock_discord_py_logs_not_json_payload_before_failing() -> None:
    """Control (stock discord.py, nothing installed): the promise kept above."""
    import asyncio

    bad = b'{"t":"X","s":3,"op":0,"d":{"a":}'
    ws, _sock, client = make_ws(asyncio.get_running_loop(), session="sess")  # discord.py's own context
    kind = ws._decompressor.COMPRESSION_TYPE
    message = zlib_messages([bad])[0] if kind == "zlib-stream" else zstd_messages([bad])[0]
    with pytest.raises(ValueError):
        await ws.received_message(message)
    assert [e[1] for e in client.dispatched if e[0] == "socket_raw_receive"] == [bad.decode()]


async def test_payload_not_an_object_reconnects(impl: Any) -> None:
    import asyncio

    compat.install(compress="zlib-stream")
    ws, sock, _client = make_ws(asyncio.get_running_loop(), session="sess")
    with pytest.raises(discord.gateway.ReconnectWebSocket):
        await ws.received_message(zlib_messages([b"[1,2]"])[0])
    assert sock.closed_with == [4000]


async def test_non_canonical_payload_is_exactly_discord_py_dict(impl: Any) -> None:
    """Any key order, extra top-level keys: _from_json gives what discord.py's
    own parse gives (no envelope rebuilt)."""
    import asyncio

    compat.install(compress="zlib-stream")
    seen: list[Any] = []
    ws, _sock, _client = make_ws(asyncio.get_running_loop(), session="sess")
    original = compat._originals["from_json"]
    raw = b'{"op":0,"d":{"n":1},"x":[1],"s":9,"t":"MIJ"}'
    ws._discord_parsers = {"MIJ": seen.append}
    await ws.received_message(zlib_messages([raw])[0])
    assert seen == [{"n": 1}] and ws.sequence == 9
    ctx = discord.utils._ActiveDecompressionContext()
    text = ctx.decompress(zlib_messages([raw])[0])
    assert discord.utils._from_json(text) == original(raw.decode()) == json.loads(raw)


async def test_text_frames_still_work(impl: Any) -> None:
    import asyncio

    compat.install()
    ws, _sock, client = make_ws(asyncio.get_running_loop(), session="sess")
    await ws.received_message(MSG.decode())
    assert ("socket_event_type", "MESSAGE_CREATE") in client.dispatched
    assert ws.sequence == 2


# -- install / uninstall -----------------------------------------------------------


def test_install_keeps_discord_py_choice_and_is_idempotent(caplog: pytest.LogCaptureFixture) -> None:
    own = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    stock = originals()
    with caplog.at_level(logging.INFO, logger="mijcodec.compat"):
        assert compat.install() == own
        patched = originals()
        assert compat.install() == own
    assert originals() == patched
    assert patched[0].COMPRESSION_TYPE == own
    assert all(p is not s for p, s in zip(patched, stock))
    infos = [r for r in caplog.records if r.name == "mijcodec.compat" and r.levelno == logging.INFO]
    assert len(infos) == 1, "the second install() must not log again at INFO"
    assert mijcodec.IMPLEMENTATION in infos[0].getMessage()
    assert own in infos[0].getMessage()
    assert compat.is_installed()
    compat.uninstall()
    compat.uninstall()
    assert originals() == stock
    assert not compat.is_installed()


def test_install_compress_override_and_switch() -> None:
    assert compat.install(compress="zlib-stream") == "zlib-stream"
    assert discord.utils._ActiveDecompressionContext is compat.ZlibStreamContext
    assert compat.install(compress="zstd-stream") == "zstd-stream"
    assert discord.utils._ActiveDecompressionContext is compat.ZstdStreamContext
    compat.uninstall()
    assert not issubclass(discord.utils._ActiveDecompressionContext, compat._MijcodecContext)


def test_install_rejects_unknown_compress_patching_nothing() -> None:
    stock = originals()
    with pytest.raises(ValueError):
        compat.install(compress="zlib")
    assert originals() == stock


@pytest.mark.parametrize("version", ["2.4.2", "1.7.3", "2.0.0a1", "garbage"])
def test_old_version_refused_patching_nothing(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(discord, "__version__", version)
    stock = originals()
    with pytest.raises(UnsupportedLibraryError, match="discord.py >= 2.5"):
        compat.install()
    assert originals() == stock
    assert not compat.is_installed()


def test_newer_and_dev_versions_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord, "__version__", "2.8.0a5213+g1234abcd")
    compat.install()
    assert compat.is_installed()


def _renamed_init(self: Any, socket: Any, *, loop: Any) -> None:
    """DiscordWebSocket.__init__ as if discord.py renamed ``_decompressor``."""
    self.socket = socket
    self.loop = loop
    self._decomp = discord.utils._ActiveDecompressionContext()


def _renamed_received_message(self: Any, msg: Any, /) -> Any:
    """received_message as if discord.py renamed ``_decompressor``."""
    raise NotImplementedError(self._decomp, self.log_receive, discord.utils._from_json)


@pytest.mark.parametrize(
    "owner,attr,replacement,named",
    [
        ("utils", "_ActiveDecompressionContext", None, "_ActiveDecompressionContext"),
        ("utils", "_from_json", None, "_from_json"),
        ("gateway", "ReconnectWebSocket", None, "ReconnectWebSocket"),
        ("ws", "__init__", _renamed_init, "_decompressor"),
        ("ws", "received_message", _renamed_received_message, "_decompressor"),
        ("context", "COMPRESSION_TYPE", None, "COMPRESSION_TYPE"),
        ("context", "decompress", None, "decompress"),
    ],
)
def test_each_renamed_private_name_refused_patching_nothing(
    monkeypatch: pytest.MonkeyPatch, owner: str, attr: str, replacement: Any, named: str
) -> None:
    """issue 9: a renamed ``_decompressor`` (or any other name relied on) refuses
    install() instead of silently losing the reconnect-on-codec-error path."""
    target = {
        "utils": discord.utils,
        "gateway": discord.gateway,
        "ws": discord.gateway.DiscordWebSocket,
        "context": discord.utils._ActiveDecompressionContext,
    }[owner]
    if owner == "context":  # a context class without one of the contract's names
        contract = {"COMPRESSION_TYPE": "zlib-stream", "decompress": lambda self, data: None}
        del contract[attr]
        monkeypatch.setattr(discord.utils, "_ActiveDecompressionContext", type("RenamedContext", (), contract))
    elif replacement is None:
        monkeypatch.delattr(target, attr)
    else:
        monkeypatch.setattr(target, attr, replacement)
    stock = (
        getattr(discord.utils, "_ActiveDecompressionContext", None),
        getattr(discord.utils, "_from_json", None),
        vars(discord.gateway.DiscordWebSocket)["received_message"],
    )
    with pytest.raises(UnsupportedLibraryError, match="nothing was patched") as info:
        compat.install()
    assert named in str(info.value)
    assert not compat.is_installed()
    assert (
        getattr(discord.utils, "_ActiveDecompressionContext", None),
        getattr(discord.utils, "_from_json", None),
        vars(discord.gateway.DiscordWebSocket)["received_message"],
    ) == stock


def test_py_cord_is_told_apart_by_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    """py-cord installs ``discord`` too: the distribution that owns the imported
    package decides, and each drop-in points at the other."""
    from mijcodec.compat import _dpy_family, pycord

    assert _dpy_family.owning_distribution(discord, ["discord.py", "py-cord"]) == "discord.py"
    with pytest.raises(UnsupportedLibraryError, match=r"is discord.py, not py-cord: use mijcodec.compat.discord_py"):
        pycord.install()
    assert not pycord.is_installed()
    # as if the imported discord were py-cord's
    monkeypatch.setattr(_dpy_family, "owning_distribution", lambda module, candidates: "py-cord")
    stock = originals()
    with pytest.raises(UnsupportedLibraryError, match=r"is py-cord, not discord.py: use mijcodec.compat.pycord"):
        compat.install()
    assert originals() == stock


def test_missing_hook_refused_patching_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(discord.utils, "_ActiveDecompressionContext")
    from_json = discord.utils._from_json
    received = vars(discord.gateway.DiscordWebSocket)["received_message"]
    with pytest.raises(UnsupportedLibraryError, match="_ActiveDecompressionContext"):
        compat.install()
    assert discord.utils._from_json is from_json
    assert vars(discord.gateway.DiscordWebSocket)["received_message"] is received


def test_uninstall_leaves_foreign_patches_alone(caplog: pytest.LogCaptureFixture) -> None:
    stock_from_json = discord.utils._from_json
    compat.install()
    stock_context = compat._originals["context"]

    def foreign(s: Any) -> Any:
        return None

    discord.utils._from_json = foreign
    try:
        with caplog.at_level(logging.WARNING, logger="mijcodec.compat"):
            compat.uninstall()
        assert discord.utils._from_json is foreign
        assert discord.utils._ActiveDecompressionContext is stock_context
        assert any("_from_json" in r.getMessage() for r in caplog.records)
    finally:
        discord.utils._from_json = stock_from_json
