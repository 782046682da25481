from __future__ import annotations

import orjson
import pytest


def test_encode_compact(codec):
    assert codec.encode(codec.Opcode.HEARTBEAT, 42) == b'{"op":1,"d":42}'
    assert codec.encode(1, None) == b'{"op":1,"d":null}'
    payload = {"token": "t", "intents": 513, "properties": {"os": "linux"}}
    assert orjson.loads(codec.encode(codec.Opcode.IDENTIFY, payload)) == {"op": 2, "d": payload}


@pytest.mark.parametrize("op", [0, 7, 9, 10, 11, 5, 12])
def test_encode_refuses_unsendable_opcodes(codec, op):
    with pytest.raises(codec.EncodeError, match=str(op)):
        codec.encode(op, None)
    assert codec.encode(op, None, force=True) == b'{"op":%d,"d":null}' % op


@pytest.mark.parametrize("op", [1, 2, 3, 4, 6, 8, 31, 43, 99])
def test_encode_allows_sendable_and_unknown_opcodes(codec, op):
    assert orjson.loads(codec.encode(op, {}))["op"] == op


def test_encode_size_limit(codec):
    overhead = len(codec.encode(3, ""))
    fits = "x" * (codec.MAX_SEND_SIZE - overhead)
    assert len(codec.encode(3, fits)) == 4096
    with pytest.raises(codec.PayloadTooLarge, match="4096"):
        codec.encode(3, fits + "x")
    assert len(codec.encode(3, fits + "x", force=True)) == 4097


def test_encode_errors(codec):
    with pytest.raises(codec.EncodeError):
        codec.encode(3, {1, 2})
    with pytest.raises(codec.EncodeError):
        codec.encode("1", None)
    with pytest.raises(codec.EncodeError):
        codec.encode(True, None)


def test_opcodes_from_the_seed(codec):
    expected = {
        "DISPATCH": 0, "HEARTBEAT": 1, "IDENTIFY": 2, "PRESENCE": 3, "VOICE_STATE": 4, "VOICE_PING": 5,
        "RESUME": 6, "RECONNECT": 7, "REQUEST_MEMBERS": 8, "INVALIDATE_SESSION": 9, "HELLO": 10,
        "HEARTBEAT_ACK": 11, "GUILD_SYNC": 12, "REQUEST_SOUNDBOARD_SOUNDS": 31, "REQUEST_CHANNEL_INFO": 43,
    }
    assert {m.name: m.value for m in codec.Opcode} == expected
