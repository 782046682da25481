"""mijcodec.compat.hikari against the real hikari, unit level: the transports
(fed by a fake websocket), hikari's loads step, install/uninstall, the
compression default and the version gate. Every transport test runs on both
mijcodec implementations (the ``impl`` fixture)."""

from __future__ import annotations

from tests.compat._helpers import require_library

require_library("hikari", "hikari")  # skips (or, when CI requires it, fails) without hikari

import contextlib
import json
import logging
from typing import Any

import aiohttp
import hikari
import pytest
from hikari import errors
from hikari.api import shard as shard_api
from hikari.impl import shard as shard_impl
from hikari.internal import data_binding

import mijcodec
from mijcodec.compat import UnsupportedLibraryError
from mijcodec.compat import hikari as compat
from tests.compat._helpers import SUFFIX, payload, zlib_messages, zstd_messages

HELLO = payload(None, None, 10, {"heartbeat_interval": 41250})
READY = payload("READY", 1, 0, {"session_id": "abc", "v": 10})
MSG = payload("MESSAGE_CREATE", 2, 0, {"content": "héllo ✓", "id": "1"})


class FakeWS:
    """Stands in for aiohttp's ClientWebSocketResponse: hands out queued messages."""

    def __init__(self, messages: list[Any]) -> None:
        self.messages = [
            m if isinstance(m, aiohttp.WSMessage) else aiohttp.WSMessage(aiohttp.WSMsgType.BINARY, m, None)
            for m in messages
        ]

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        if not self.messages:
            return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
        return self.messages.pop(0)

    def exception(self) -> None:
        return None

    async def close(self, **kwargs: Any) -> bool:
        return True


def make_transport(cls: type, messages: list[Any], *, loads: Any = data_binding.default_json_loads) -> Any:
    return cls(
        ws=FakeWS(messages),
        exit_stack=contextlib.AsyncExitStack(),
        logger=logging.getLogger("hikari.gateway.test"),
        log_filterer=lambda b: b,
        dumps=data_binding.default_json_dumps,
        loads=loads,
    )


def classes() -> dict[str, type]:
    return compat.transport_classes()


# -- transports ------------------------------------------------------------------


async def test_zlib_transport_split_suffix_and_envelope(impl: Any) -> None:
    m1, m2, m3 = zlib_messages([HELLO, READY, MSG])
    tr = make_transport(classes()["zlib-stream"], [m1, m2[:-2], m2[-2:], m3[:-1], m3[-1:]])
    assert isinstance(tr._inflator, impl.Decoder)
    assert isinstance(tr, shard_impl._GatewayZlibStreamTransport)  # still hikari's class
    got = [await tr.receive_json() for _ in range(3)]
    assert got == [json.loads(HELLO), json.loads(READY), json.loads(MSG)]
    assert all(type(g["op"]) is int for g in got)
    assert tr._inflator.payloads == 3


async def test_zlib_transport_byte_by_byte(impl: Any) -> None:
    msgs = [m[i : i + 1] for m in zlib_messages([HELLO, MSG]) for i in range(len(m))]
    tr = make_transport(classes()["zlib-stream"], msgs)
    assert await tr.receive_json() == json.loads(HELLO)
    assert await tr.receive_json() == json.loads(MSG)


async def test_receive_and_check_returns_the_payload_bytes(impl: Any) -> None:
    tr = make_transport(classes()["zstd-stream"], zstd_messages([HELLO]))
    assert await tr._receive_and_check() == HELLO


@pytest.mark.parametrize("spacebar", [False, True], ids=["discord", "spacebar"])
async def test_zstd_transport(impl: Any, spacebar: bool) -> None:
    tr = make_transport(classes()["zstd-stream"], zstd_messages([HELLO, READY, MSG], spacebar=spacebar))
    assert [await tr.receive_json() for _ in range(3)] == [json.loads(HELLO), json.loads(READY), json.loads(MSG)]


async def test_stock_hikari_fails_on_spacebar_zstd() -> None:
    """Control: the failure the drop-in fixes is real in the installed hikari."""
    tr = make_transport(shard_impl._GatewayZstdStreamTransport, zstd_messages([HELLO, READY], spacebar=True))
    assert await tr.receive_json() == json.loads(HELLO)
    with pytest.raises(Exception) as info:
        await tr.receive_json()
    assert not isinstance(info.value, errors.GatewayError)  # escapes hikari's reconnect handling


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
async def test_corrupt_frame_becomes_transport_error(impl: Any, compress: str) -> None:
    good = zlib_messages([HELLO])[0] if compress == "zlib-stream" else zstd_messages([HELLO])[0]
    bad = b"\xff\xff\xff\xff\xff" + SUFFIX if compress == "zlib-stream" else b"\xff\xff\xff\xff\xff\xff"
    before = compat.stats()["codec_errors"]
    tr = make_transport(classes()[compress], [good, bad])
    assert await tr.receive_json() == json.loads(HELLO)
    with pytest.raises(errors.GatewayTransportError) as info:
        await tr.receive_json()
    assert isinstance(info.value.__cause__, mijcodec.DecompressError)
    assert compat.stats()["codec_errors"] == before + 1


@pytest.mark.parametrize("bad", [b'{"t":"X","s":3,"op":0,"d":{"a":', b'{"t":"X","s":3,"op":0,"d":{"a":}'])
async def test_not_json_payload_becomes_transport_error(impl: Any, bad: bytes) -> None:
    tr = make_transport(classes()["zlib-stream"], zlib_messages([bad]))
    with pytest.raises(errors.GatewayTransportError):
        await tr.receive_json()


async def test_custom_loads_is_respected(impl: Any) -> None:
    seen: list[bytes] = []

    def my_loads(raw: Any) -> Any:
        seen.append(bytes(raw))
        return dict(json.loads(raw), mine=True)

    tr = make_transport(classes()["zlib-stream"], zlib_messages([MSG]), loads=my_loads)
    assert await tr.receive_json() == dict(json.loads(MSG), mine=True)
    assert seen == [MSG]


async def test_other_message_types_handled_like_hikari(impl: Any) -> None:
    close = aiohttp.WSMessage(aiohttp.WSMsgType.CLOSE, 4000, "bye")
    tr = make_transport(classes()["zlib-stream"], [close])
    with pytest.raises(errors.GatewayServerClosedConnectionError) as info:
        await tr.receive_json()
    assert info.value.code == 4000 and info.value.can_reconnect
    text = aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, b"{}", None)
    tr = make_transport(classes()["zstd-stream"], [text])
    with pytest.raises(errors.GatewayTransportError):
        await tr.receive_json()


# -- install / uninstall -----------------------------------------------------------


def state() -> tuple[Any, Any, Any]:
    return (
        getattr(shard_impl, "_GatewayZlibStreamTransport", None),
        getattr(shard_impl, "_GatewayZstdStreamTransport", None),
        shard_impl.GatewayShardImpl.__init__.__kwdefaults__["compression"],
    )


def test_install_keeps_hikari_choice_and_is_idempotent(caplog: pytest.LogCaptureFixture) -> None:
    stock = state()
    own = {
        shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM: "zlib-stream",
        shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM: "zstd-stream",
    }[stock[2]]
    with caplog.at_level(logging.INFO, logger="mijcodec.compat"):
        assert compat.install() == own
        patched = state()
        assert compat.install() == own
    assert state() == patched
    assert patched[2] == stock[2]  # hikari's own compression choice kept
    assert patched[0] is classes()["zlib-stream"] and patched[1] is classes()["zstd-stream"]
    infos = [r for r in caplog.records if r.name == "mijcodec.compat" and r.levelno == logging.INFO]
    assert len(infos) == 1
    assert mijcodec.IMPLEMENTATION in infos[0].getMessage() and own in infos[0].getMessage()
    compat.uninstall()
    compat.uninstall()
    assert state() == stock


@pytest.mark.parametrize("compress", ["zlib-stream", "zstd-stream"])
def test_install_compress_sets_shard_default(compress: str) -> None:
    stock = state()
    compat.install(compress=compress)
    expected = getattr(shard_api.GatewayCompression, "TRANSPORT_" + compress.split("-")[0].upper() + "_STREAM")
    assert state()[2] == expected
    other = "zstd-stream" if compress == "zlib-stream" else "zlib-stream"
    compat.install(compress=other)
    assert state()[2] != expected
    compat.uninstall()
    assert state() == stock


def test_gateway_bot_shard_uses_the_default() -> None:
    """GatewayBot does not pass compression= to its shards, so the default decides."""
    compat.install(compress="zlib-stream")
    shard = shard_impl.GatewayShardImpl(
        intents=hikari.Intents.NONE,
        http_settings=hikari.impl.HTTPSettings(),
        proxy_settings=hikari.impl.ProxySettings(),
        event_manager=None,  # type: ignore[arg-type]
        event_factory=None,  # type: ignore[arg-type]
        token="x",
        url="ws://127.0.0.1:1/",
    )
    assert shard._compression == shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM


@pytest.mark.parametrize("version", ["2.4.0", "2.0.0.dev126", "1.3.5", "nonsense"])
def test_old_version_refused_patching_nothing(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(hikari, "__version__", version)
    stock = state()
    with pytest.raises(UnsupportedLibraryError, match="hikari >= 2.5"):
        compat.install()
    assert state() == stock and not compat.is_installed()


def test_missing_transport_refused_patching_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(shard_impl, "_GatewayZstdStreamTransport")
    zlib_cls = shard_impl._GatewayZlibStreamTransport
    default = shard_impl.GatewayShardImpl.__init__.__kwdefaults__["compression"]
    with pytest.raises(UnsupportedLibraryError, match="_GatewayZstdStreamTransport"):
        compat.install()
    assert shard_impl._GatewayZlibStreamTransport is zlib_cls
    assert shard_impl.GatewayShardImpl.__init__.__kwdefaults__["compression"] == default


def test_rejects_unknown_compress_patching_nothing() -> None:
    stock = state()
    with pytest.raises(ValueError):
        compat.install(compress="payload_zlib_stream")
    assert state() == stock


async def test_trace_logging_like_hikari(impl: Any, caplog: pytest.LogCaptureFixture) -> None:
    from hikari.internal import ux

    tr = make_transport(classes()["zlib-stream"], zlib_messages([MSG]))
    tr._log_filterer = lambda b: b.replace(b"1", b"*")
    with caplog.at_level(ux.TRACE, logger="hikari.gateway.test"):
        assert await tr.receive_json() == json.loads(MSG)
    assert any("received payload with size" in r.getMessage() for r in caplog.records)


# -- issue 9: exact loads, every private name checked ----------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"op":11,"d":null,"x":1}',  # extra top-level key, no t/s
        b'{"d":{"a":[1,2]},"op":0,"s":7,"t":"MIJ","_trace":["x"]}',  # another order, extra key
        b'{"t":"MIJ","s":8,"op":0,"d":{},"extra":{"deep":true}}',  # canonical prefix, extra key
    ],
)
async def test_non_canonical_payload_is_exactly_hikari_loads(impl: Any, raw: bytes) -> None:
    """receive_json returns what hikari's own loads returns: keys kept, none added."""
    tr = make_transport(classes()["zlib-stream"], zlib_messages([raw]))
    got = await tr.receive_json()
    assert got == data_binding.default_json_loads(raw)
    assert list(got) == list(json.loads(raw))


async def test_payload_not_an_object_becomes_transport_error(impl: Any) -> None:
    tr = make_transport(classes()["zlib-stream"], zlib_messages([b"[1,2]"]))
    with pytest.raises(errors.GatewayTransportError):
        await tr.receive_json()


def _without_slot(cls: type, name: str) -> dict:
    slots = vars(cls)["__slots__"]
    slots = (slots,) if isinstance(slots, str) else slots
    return {"__slots__": tuple(s for s in slots if s != name)}


@pytest.mark.parametrize(
    "owner,attr,how,named",
    [
        ("_GatewayZlibStreamTransport", "_inflator", "slot", "_inflator"),
        ("_GatewayZstdStreamTransport", "_inflator", "slot", "_inflator"),
        ("_GatewayTransport", "_ws", "slot", "_ws"),
        ("_GatewayTransport", "_loads", "slot", "_loads"),
        ("_GatewayTransport", "_log_filterer", "slot", "_log_filterer"),
        ("_GatewayTransport", "_logger", "slot", "_logger"),
        ("_GatewayTransport", "_handle_other_message", "del", "_handle_other_message"),
        ("_GatewayTransport", "receive_json", "body", "_receive_and_check"),
        ("shard_impl", "_GatewayTransport", "del", "_GatewayTransport"),
        ("shard_impl", "_GatewayZlibStreamTransport", "del", "_GatewayZlibStreamTransport"),
        ("data_binding", "default_json_loads", "del", "default_json_loads"),
    ],
)
def test_each_renamed_private_name_refused_patching_nothing(
    monkeypatch: pytest.MonkeyPatch, owner: str, attr: str, how: str, named: str
) -> None:
    """issue 9: a renamed ``_inflator`` (or any other name relied on) refuses
    install() instead of every connection failing later with AttributeError."""
    if owner == "shard_impl":
        monkeypatch.delattr(shard_impl, attr)
    elif owner == "data_binding":
        monkeypatch.delattr(data_binding, attr)
    else:
        cls = getattr(shard_impl, owner)
        if how == "slot":  # the class as hikari would declare it with the slot renamed
            monkeypatch.setattr(cls, "__slots__", _without_slot(cls, attr)["__slots__"])
        elif how == "del":
            monkeypatch.delattr(cls, attr)
        else:

            async def receive_json(self: Any) -> Any:  # reads something else now
                return self._loads(await self._receive_payload())

            monkeypatch.setattr(cls, attr, receive_json)
    before = state()
    with pytest.raises(UnsupportedLibraryError, match="nothing was patched") as info:
        compat.install(compress="zstd-stream")
    assert named in str(info.value)
    assert state() == before and not compat.is_installed()
