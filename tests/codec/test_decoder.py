"""Decoder behaviour, run on both implementations through the ``codec`` fixture."""

from __future__ import annotations

import array
import ctypes
import json
import mmap
import sys
import zlib

import orjson
import pytest

from tests._helpers import (
    REALDATA,
    real_payloads,
    zlib_stream,
    zstd_closed_frames,
    zstd_module,
    zstd_open_frame,
)

HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}'
ACK = b'{"t":null,"s":null,"op":11,"d":null}'


def dispatch(t: str, s: int, d: object) -> bytes:
    return b'{"t":"%s","s":%d,"op":0,"d":%s}' % (t.encode(), s, orjson.dumps(d))


# -- real captures -----------------------------------------------------------


def test_real_zlib_stream_three_messages_in_order(codec):
    """The DiscordBM capture: frames 1 and 2 inflate only with the context left by the ones before."""
    dec = codec.Decoder("zlib-stream")
    for i in range(3):
        pkt = dec.feed((REALDATA / f"zlib-stream/discordbm-frame{i}.bin").read_bytes())
        expected = (REALDATA / f"zlib-stream/discordbm-frame{i}.json").read_bytes()
        assert pkt.raw == expected
        obj = json.loads(expected)
        assert (pkt.op, pkt.s, pkt.t, pkt.d) == (obj["op"], obj["s"], obj["t"], obj["d"])
    assert dec.seq == 2
    assert dec.payloads == 3


def test_real_zlib_stream_out_of_order_fails(codec):
    dec = codec.Decoder("zlib-stream")
    # frame 1 without frame 0 before it: no zlib header, so this cannot be a stream start
    with pytest.raises(codec.DecompressError):
        dec.feed((REALDATA / "zlib-stream/discordbm-frame1.bin").read_bytes())


@pytest.mark.parametrize(
    "mode, name", [("zlib-stream", "zlib-stream/twilight-hello"), ("zstd-stream", "zstd-stream/twilight-hello")]
)
def test_real_hello_captures(codec, mode, name):
    dec = codec.Decoder(mode)
    pkt = dec.feed((REALDATA / f"{name}.bin").read_bytes())
    expected = (REALDATA / f"{name}.json").read_bytes()
    assert pkt.raw == expected
    assert pkt.op == codec.Opcode.HELLO
    assert pkt.d == json.loads(expected)["d"]


def test_real_payloads_every_mode(codec):
    payloads = real_payloads()
    assert len(payloads) > 20
    for mode, messages in [
        ("zlib-stream", zlib_stream(payloads)),
        ("zstd-stream", zstd_open_frame(payloads)),
        ("zstd-stream", zstd_closed_frames(payloads)),
        (None, payloads),
    ]:
        dec = codec.Decoder(mode)
        for raw, message in zip(payloads, messages):
            pkt = dec.feed(message)
            obj = json.loads(raw)
            assert (pkt.op, pkt.s, pkt.t, pkt.d) == (obj["op"], obj.get("s"), obj.get("t"), obj.get("d"))


# -- zlib-stream framing --------------------------------------------------------


def test_zlib_payload_split_across_messages(codec):
    payloads = [HELLO, dispatch("MESSAGE_CREATE", 1, {"content": "x" * 5000}), ACK]
    dec = codec.Decoder("zlib-stream")
    for raw, message in zip(payloads, zlib_stream(payloads)):
        parts = [message[i : i + 7] for i in range(0, len(message), 7)]
        results = [dec.feed(p) for p in parts]
        assert results[:-1] == [None] * (len(parts) - 1)
        assert results[-1].raw == raw


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_zlib_suffix_split_inside_00_00_ff_ff(codec, cut):
    payloads = [HELLO, dispatch("GUILD_CREATE", 1, {"id": "1"}), dispatch("TYPING_START", 2, {})]
    dec = codec.Decoder("zlib-stream")
    for raw, message in zip(payloads, zlib_stream(payloads)):
        head, tail = message[:-cut], message[-cut:]
        assert dec.feed(head) is None
        assert dec.feed(tail).raw == raw
    assert dec.seq == 2


def test_zlib_one_byte_messages(codec):
    payloads = [HELLO, dispatch("READY", 1, {"session_id": "abc"})]
    dec = codec.Decoder("zlib-stream")
    got = []
    for message in zlib_stream(payloads):
        for i in range(len(message)):
            pkt = dec.feed(message[i : i + 1])
            if pkt is not None:
                got.append(pkt.raw)
    assert got == payloads


def test_empty_message_is_nothing(codec):
    for mode in ("zlib-stream", "zstd-stream"):
        dec = codec.Decoder(mode)
        assert dec.feed(b"") is None
        assert dec.bytes_in == 0


def _mmap(b: bytes):
    m = mmap.mmap(-1, max(len(b), 1))
    m.write(b)
    return memoryview(m)[: len(b)]


def _ctypes_chars(b: bytes):
    return (ctypes.c_char * len(b)).from_buffer_copy(b)


#: Every kind of bytes-like message the decoders accept, by name.
BUFFER_KINDS = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "memoryview-b": lambda b: memoryview(b).cast("b"),
    "memoryview-c": lambda b: memoryview(b).cast("c"),
    "array-b": lambda b: array.array("b", b),
    "array-B": lambda b: array.array("B", b),
    "2d-view": lambda b: memoryview(b).cast("B", shape=[1, len(b)]) if b else memoryview(b),
    "readonly-bytearray-view": lambda b: memoryview(bytearray(b)).toreadonly(),
    "sliced-view": lambda b: memoryview(b"xx" + b + b"yy")[2:-2],
    "mmap": _mmap,
    "ctypes-char": _ctypes_chars,
    "bytes-subclass": lambda b: type("B", (bytes,), {})(b),
}


@pytest.mark.parametrize("kind", list(BUFFER_KINDS))
def test_buffer_types(codec, kind):
    make = BUFFER_KINDS[kind]
    payloads = [HELLO, dispatch("A", 1, [1, 2, 3])]
    for mode, messages in [
        ("zlib-stream", zlib_stream(payloads)),
        ("zstd-stream", zstd_open_frame(payloads)),
        (None, payloads),
    ]:
        dec = codec.Decoder(mode)
        got = [dec.feed(make(m)) for m in messages]
        assert [type(p.raw) for p in got] == [bytes, bytes]
        assert [p.raw for p in got] == payloads
        dec = codec.Decoder(mode)
        assert [dec.feed_raw(make(m)) for m in messages] == payloads


@pytest.mark.parametrize("kind", ["memoryview-b", "memoryview-c", "array-b"])
def test_one_byte_signed_formats_byte_by_byte(codec, kind):
    """The issue's case: the fallback compared a signed view with the 00 00 ff ff
    suffix and kept buffering, or read a negative zstd magic number."""
    make = BUFFER_KINDS[kind]
    payloads = [HELLO, dispatch("A", 1, {"x": "\u00ff" * 10})]
    for mode, messages in [("zlib-stream", zlib_stream(payloads)), ("zstd-stream", zstd_open_frame(payloads))]:
        dec = codec.Decoder(mode)
        assert [dec.feed(make(m)).raw for m in messages] == payloads
    dec = codec.Decoder("zlib-stream")
    got = [dec.feed(make(m[i : i + 1])) for m in zlib_stream(payloads) for i in range(len(m))]
    assert [p.raw for p in got if p is not None] == payloads


def test_non_contiguous_buffers_are_type_errors(codec):
    data = zlib_stream([HELLO])[0]
    strided = memoryview(data + data)[::2]
    for mode in ("zlib-stream", "zstd-stream", None):
        dec = codec.Decoder(mode)
        with pytest.raises(TypeError, match="contiguous"):
            dec.feed(strided)
        with pytest.raises(TypeError, match="contiguous"):
            dec.feed_raw(strided)
        assert not dec.poisoned and dec.bytes_in == 0


def test_str_messages_only_without_compression(codec):
    dec = codec.Decoder(None)
    pkt = dec.feed('{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"content":"h\\u00e9 \U0001f600"}}')
    assert pkt.d == {"content": "h\u00e9 \U0001f600"}
    assert pkt.raw == '{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"content":"h\\u00e9 \U0001f600"}}'.encode()
    assert codec.Decoder("none").compress is None
    for mode in ("zlib-stream", "zstd-stream"):
        with pytest.raises(TypeError):
            codec.Decoder(mode).feed("text")


def test_not_a_buffer_is_type_error(codec):
    for mode in ("zlib-stream", "zstd-stream", None):
        with pytest.raises(TypeError):
            codec.Decoder(mode).feed(12345)


def test_bad_arguments(codec):
    with pytest.raises(ValueError):
        codec.Decoder("gzip")
    for bad in (0, -1, True, 1.0, "10", None):
        with pytest.raises(ValueError, match="max_payload_size"):
            codec.Decoder("zlib-stream", max_payload_size=bad)


@pytest.mark.parametrize("value", [2**62 - 1, 2**62, 2**63 - 1, 2**63, 2**64, 10**30])
def test_huge_max_payload_size_one_rule(codec, value):
    """Clamped to a quarter of the address space (2**62 - 1 on 64-bit), read
    back clamped, and never an OverflowError from feed() (the fallback raised
    one, unpoisoned, for values >= 2**63 - 1)."""
    from mijcodec._common import MAX_PAYLOAD_LIMIT

    assert MAX_PAYLOAD_LIMIT == sys.maxsize >> 1
    for mode, message in [("zlib-stream", zlib_stream([HELLO])[0]), ("zstd-stream", zstd_open_frame([HELLO])[0]), (None, HELLO)]:
        dec = codec.Decoder(mode, max_payload_size=value)
        assert dec.max_payload_size == min(value, MAX_PAYLOAD_LIMIT)
        assert dec.feed(message).raw == HELLO
        assert dec.feed_raw(message if mode is None else b"") == (HELLO if mode is None else None)


def test_counters_are_read_only(codec):
    dec = codec.Decoder(None)
    dec.feed(HELLO)
    for name in ("payloads", "bytes_in", "bytes_out", "seq", "compress", "max_payload_size", "poisoned", "buffer_size"):
        before = getattr(dec, name)
        for value in (5, -1, 2**70):
            with pytest.raises(AttributeError):
                setattr(dec, name, value)
        assert getattr(dec, name) == before
    assert (dec.payloads, dec.bytes_in, dec.bytes_out) == (1, len(HELLO), len(HELLO))


def test_buffer_size_is_implementation_specific(codec):
    """Both report the capacity of the output buffer they hold (documented as
    implementation-specific): the compiled decoder keeps one reusable buffer
    (64 KiB once a payload was inflated, given back past 256 KiB), the fallback
    only buffers a zlib-stream payload spread over several messages."""
    compiled = codec.__name__ == "mijcodec._codec"
    # the compiled decoder's own buffer: zlib-stream, and zstd-stream when it
    # calls libzstd itself (else the decompressor object allocates its output)
    buffered = {"zlib-stream": compiled, "zstd-stream": codec.ZSTD_DECOMPRESSOR == "libzstd", None: False}
    assert not buffered["zstd-stream"] or compiled
    big = dispatch("A", 1, {"x": bytes(range(256)).hex() * 600})  # > 256 KiB
    for mode in ("zlib-stream", "zstd-stream", None):
        dec = codec.Decoder(mode)
        assert dec.buffer_size == 0
        messages = (zlib_stream if mode == "zlib-stream" else zstd_open_frame if mode else list)([HELLO, big, HELLO])
        dec.feed(messages[0])
        assert dec.buffer_size == (64 * 1024 if buffered[mode] else 0)
        dec.feed(messages[1])
        assert dec.buffer_size == 0  # the compiled one gave its grown buffer back
        dec.feed(messages[2])
        assert dec.buffer_size == (64 * 1024 if buffered[mode] else 0)
    # the invariant both keep: a split payload is held, within max_payload_size + 1
    dec = codec.Decoder("zlib-stream", max_payload_size=len(big))
    message = zlib_stream([big])[0]
    assert dec.feed(message[: len(message) // 2]) is None
    assert 0 < dec.buffer_size <= len(big) + 1
    assert dec.feed(message[len(message) // 2 :]).raw == big
    assert dec.buffer_size <= 256 * 1024


def test_not_utf8_says_where(codec):
    raw = b'{"t":"A","s":1,"op":0,"d":{"k":"ok \xe2\x82"}}'
    for mode, message in [(None, raw), ("zlib-stream", zlib_stream([raw])[0]), ("zstd-stream", zstd_open_frame([raw])[0])]:
        pkt = codec.Decoder(mode).feed(message)  # envelope read lazily: d is broken
        at = raw.index(b"\xe2")
        with pytest.raises(codec.DecodeError, match=rf"not valid UTF-8 at byte {at} \(invalid continuation byte: e2 82\)"):
            pkt.d
    with pytest.raises(codec.DecodeError, match="not valid UTF-8 at byte 0 .invalid start byte: ff"):
        codec.Decoder(None).feed(b'\xff{"op":1}')
    with pytest.raises(codec.DecodeError, match="surrogate U\\+D800 at index 3"):
        codec.Decoder(None).feed('{"o\ud800":1}')


# -- zstd-stream -----------------------------------------------------------------


def test_zstd_open_frame_and_closed_frames(codec):
    payloads = [HELLO] + [dispatch("MESSAGE_CREATE", i, {"n": i, "pad": "y" * i}) for i in range(1, 200)]
    for messages in (zstd_open_frame(payloads), zstd_closed_frames(payloads)):
        dec = codec.Decoder("zstd-stream")
        assert [dec.feed(m).raw for m in messages] == payloads
        assert dec.seq == 199


def test_zstd_two_closed_frames_in_one_message(codec):
    zstd = zstd_module()
    dec = codec.Decoder("zstd-stream")
    pkt = dec.feed(zstd.compress(b'{"op":11,') + zstd.compress(b'"d":{}}'))
    assert pkt.op == 11 and pkt.d == {}


def test_zstd_checksummed_frames(codec):
    zstd = zstd_module()
    payloads = [HELLO, ACK, dispatch("X", 1, {})]
    dec = codec.Decoder("zstd-stream")
    for p in payloads:
        frame = zstd.compress(p, options={zstd.CompressionParameter.checksum_flag: 1})
        assert dec.feed(frame).raw == p


def test_zstd_skippable_frame_gives_nothing(codec):
    dec = codec.Decoder("zstd-stream")
    skippable = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    assert dec.feed(skippable) is None
    assert dec.feed(zstd_closed_frames([ACK])[0]).raw == ACK


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 9])
def test_zstd_truncated_message_is_decompress_error(codec, cut):
    message = zstd_open_frame([HELLO])[0]
    dec = codec.Decoder("zstd-stream")
    with pytest.raises(codec.DecompressError, match="truncated"):
        dec.feed(message[:-cut])
    assert dec.poisoned


# -- the envelope ------------------------------------------------------------------


def test_spacebar_envelopes_without_t_and_s(codec):
    dec = codec.Decoder(None)
    hello = dec.feed(b'{"op":10,"d":{"heartbeat_interval":45000}}')
    assert (hello.op, hello.s, hello.t, hello.d) == (codec.Opcode.HELLO, None, None, {"heartbeat_interval": 45000})
    ack = dec.feed(b'{"op":11,"d":{}}')
    assert (ack.op, ack.s, ack.t, ack.d) == (11, None, None, {})
    bare = dec.feed(b'{"op":11}')
    assert bare.d is None


def test_unknown_opcodes_pass_as_int(codec):
    dec = codec.Decoder(None)
    for raw in (b'{"t":null,"s":null,"op":99,"d":1}', b'{"op":99,"d":1}', b'{"t":null,"s":null,"op":123456789012345678,"d":1}'):
        pkt = dec.feed(raw)
        assert type(pkt.op) is int and pkt.op == json.loads(raw)["op"]
    assert type(dec.feed(b'{"t":null,"s":null,"op":9,"d":true}').op) is codec.Opcode


@pytest.mark.parametrize(
    "raw",
    [
        b'{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"a":"}"}}',
        b'{"s":42,"t":"MESSAGE_CREATE","op":0,"d":{"a":"}"}}',
        b'{ "t" : "MESSAGE_CREATE", "s" : 42, "op" : 0, "d" : {"a":"}"} }',
        b'{"d":{"a":"}"},"op":0,"s":42,"t":"MESSAGE_CREATE"}',
        b'{"t":"MESSAGE_\\u0043REATE","s":42,"op":0,"d":{"a":"}"}}',
        b'{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"a":"}"},"x":[1,2]}',
        b'{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"a":"}"}}\n',
    ],
)
def test_any_key_order_or_spacing_gives_the_same_packet(codec, raw):
    pkt = codec.Decoder(None).feed(raw)
    assert (pkt.op, pkt.s, pkt.t, pkt.d) == (0, 42, "MESSAGE_CREATE", {"a": "}"})


def test_d_is_lazy_and_cached(codec):
    dec = codec.Decoder(None)
    # The envelope is readable and seq is tracked without parsing d...
    pkt = dec.feed(b'{"t":"PRESENCE_UPDATE","s":7,"op":0,"d":{"broken":}')
    assert (pkt.op, pkt.s, pkt.t, dec.seq) == (0, 7, "PRESENCE_UPDATE", 7)
    # ...and d is only parsed (and found broken) when read.
    with pytest.raises(codec.DecodeError):
        pkt.d
    good = dec.feed(dispatch("MESSAGE_CREATE", 8, {"k": [1]}))
    assert good.d is good.d


def test_repeated_envelope_keys_after_d_are_never_silently_wrong(codec):
    dec = codec.Decoder(None)
    pkt = dec.feed(b'{"t":"A","s":1,"op":0,"d":{},"s":2}')
    with pytest.raises(codec.DecodeError, match="ambiguous"):
        pkt.d


@pytest.mark.parametrize(
    "raw, what",
    [
        (b"", "JSON"),
        (b"not json", "JSON"),
        (b"[1,2]", "object"),
        (b'"op"', "object"),
        (b'{"t":null,"s":null,"d":1}', "op"),
        (b'{"op":"0"}', "op"),
        (b'{"op":1.5}', "op"),
        (b'{"op":true}', "op"),
        (b'{"op":0,"s":"1"}', '"s"'),
        (b'{"op":0,"s":1.0}', '"s"'),
        (b'{"op":0,"s":false}', '"s"'),
        (b'{"op":0,"t":5}', '"t"'),
        (b'{"op":0,"t":["X"]}', '"t"'),
        (b'{"t":"X","s":1,"op":0,"d":', "JSON"),
        (b'\xff\xfe{"op":1}', "JSON"),
    ],
)
def test_bad_payloads_raise_decode_error(codec, raw, what):
    for mode, message in [(None, raw), ("zlib-stream", zlib_stream([raw])[0]), ("zstd-stream", zstd_open_frame([raw])[0])]:
        if mode == "zstd-stream" and raw == b"":
            continue  # an empty zstd payload is no payload at all
        dec = codec.Decoder(mode)
        with pytest.raises(codec.DecodeError, match=what):
            dec.feed(message)
        assert not dec.poisoned  # a bad payload is not a broken stream


def test_decode_error_does_not_poison_the_stream(codec):
    payloads = [b'{"op":"bad"}', HELLO]
    for mode, messages in [("zlib-stream", zlib_stream(payloads)), ("zstd-stream", zstd_open_frame(payloads))]:
        dec = codec.Decoder(mode)
        with pytest.raises(codec.DecodeError):
            dec.feed(messages[0])
        assert dec.feed(messages[1]).raw == HELLO


# -- sequence, reset, counters --------------------------------------------------


def test_seq_tracks_last_dispatch_only_and_survives_reset(codec):
    dec = codec.Decoder(None)
    assert dec.seq is None
    dec.feed(HELLO)
    assert dec.seq is None
    dec.feed(dispatch("A", 5, {}))
    dec.feed(b'{"t":null,"s":99,"op":11,"d":null}')  # s on a non-dispatch is not a sequence
    dec.feed(dispatch("B", 6, {}))
    assert dec.seq == 6
    dec.reset()
    assert dec.seq == 6


def test_reset_gives_a_fresh_context(codec):
    payloads = [HELLO, dispatch("A", 1, {})]
    dec = codec.Decoder("zlib-stream")
    first = zlib_stream(payloads)
    dec.feed(first[0])
    dec.feed(first[1][:5])  # half a payload pending
    dec.reset()
    second = zlib_stream(payloads)  # a new connection starts a new zlib stream
    assert [dec.feed(m).raw for m in second] == payloads


def test_counters(codec):
    payloads = [HELLO, dispatch("A", 1, {"x": "y" * 1000})]
    messages = zlib_stream(payloads)
    dec = codec.Decoder("zlib-stream")
    for m in messages:
        dec.feed(m)
    assert dec.payloads == 2
    assert dec.bytes_in == sum(map(len, messages))
    assert dec.bytes_out == sum(map(len, payloads))
    dec.reset()
    assert dec.payloads == 2


# -- errors and poisoning ----------------------------------------------------------


def test_error_hierarchy(codec):
    assert issubclass(codec.CodecError, ValueError)
    for name in ("DecompressError", "DecodeError", "PayloadTooLarge", "EncodeError"):
        assert issubclass(getattr(codec, name), codec.CodecError)
    import mijcodec._codec_py as fallback

    assert codec.DecodeError is fallback.DecodeError  # one hierarchy for both implementations


@pytest.mark.parametrize(
    "mode, message",
    [
        ("zlib-stream", b"\x78\x9c\xff\xff\xff\xff\x00\x00\xff\xff"),
        ("zlib-stream", b"GET / HTTP/1.1\r\n"),
        ("zlib-stream", b"\x78\x9d"),  # header checksum wrong
        ("zlib-stream", b"\x78\xbb"),  # preset dictionary: never in a gateway stream
        ("zstd-stream", b"\x28\xb5\x2f\xfd\x08"),  # reserved bit
        ("zstd-stream", b"garbage that is no zstd frame"),
        ("zstd-stream", b"\x28\xb5\x2f\xfd\x00\x00\x07\x00\x00"),  # reserved block type
    ],
)
def test_corrupt_stream_poisons_until_reset(codec, mode, message):
    dec = codec.Decoder(mode)
    with pytest.raises(codec.DecompressError):
        dec.feed(message)
    assert dec.poisoned
    good = zlib_stream([HELLO])[0] if mode == "zlib-stream" else zstd_open_frame([HELLO])[0]
    for _ in range(3):
        with pytest.raises(codec.DecompressError, match="poisoned"):
            dec.feed(good)
    dec.reset()
    assert not dec.poisoned
    assert dec.feed(good).raw == HELLO


def test_corrupted_middle_of_stream(codec):
    payloads = [HELLO] + [dispatch("M", i, {"i": i, "text": "hello world " * 20}) for i in range(1, 5)]
    messages = zlib_stream(payloads)
    dec = codec.Decoder("zlib-stream")
    dec.feed(messages[0])
    dec.feed(messages[1])
    bad = bytearray(messages[2])
    bad[3] ^= 0xFF
    with pytest.raises(codec.CodecError):
        dec.feed(bytes(bad))
        dec.feed(messages[3])  # garbage may inflate; then the stream desyncs at the latest here


def test_finished_zlib_stream_is_an_error(codec):
    dec = codec.Decoder("zlib-stream")
    with pytest.raises(codec.DecompressError, match="ended"):
        dec.feed(zlib.compress(HELLO))


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_decompression_bomb_is_payload_too_large(codec, mode):
    bomb = b'{"op":0,"d":"' + b"A" * (20 * 1024 * 1024) + b'"}'
    message = zlib_stream([bomb])[0] if mode == "zlib-stream" else zstd_open_frame([bomb])[0]
    assert len(message) < 100 * 1024
    dec = codec.Decoder(mode, max_payload_size=1024 * 1024)
    with pytest.raises(codec.PayloadTooLarge):
        dec.feed(message)
    assert dec.buffer_size <= 1024 * 1024 + 1
    with pytest.raises(codec.PayloadTooLarge):
        dec.feed(message)
    dec.reset()
    assert dec.feed(zlib_stream([ACK])[0] if mode == "zlib-stream" else zstd_open_frame([ACK])[0]).raw == ACK


def test_bomb_split_over_many_messages(codec):
    bomb = b'{"op":0,"d":"' + b"A" * (4 * 1024 * 1024) + b'"}'
    message = zlib_stream([bomb])[0]
    dec = codec.Decoder("zlib-stream", max_payload_size=1024 * 1024)
    with pytest.raises(codec.PayloadTooLarge):
        for i in range(0, len(message), 100):
            dec.feed(message[i : i + 100])


def test_exact_max_payload_size_is_allowed(codec):
    raw = b'{"op":1,"d":"' + b"x" * 100 + b'"}'
    for mode, message in [("zlib-stream", zlib_stream([raw])[0]), ("zstd-stream", zstd_open_frame([raw])[0]), (None, raw)]:
        assert codec.Decoder(mode, max_payload_size=len(raw)).feed(message).raw == raw
        with pytest.raises(codec.PayloadTooLarge):
            codec.Decoder(mode, max_payload_size=len(raw) - 1).feed(message)


# -- memory ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_buffer_shrinks_after_a_huge_payload(codec, mode):
    huge = dispatch("GUILD_CREATE", 1, {"members": [{"user": {"id": str(i), "username": f"user{i}"}} for i in range(80000)]})
    assert len(huge) > 3 * 1024 * 1024
    payloads = [HELLO, huge, ACK]
    messages = zlib_stream(payloads) if mode == "zlib-stream" else zstd_open_frame(payloads)
    dec = codec.Decoder(mode)
    for raw, m in zip(payloads, messages):
        assert dec.feed(m).raw == raw
    assert dec.buffer_size < 1024 * 1024


# -- handlers -------------------------------------------------------------------------


def test_handlers_by_opcode_and_event(codec):
    dec = codec.Decoder(None)
    calls = []
    dec.on(codec.Opcode.HELLO, lambda p: calls.append(("hello", p.d["heartbeat_interval"])))
    dec.on("MESSAGE_CREATE", lambda p: calls.append(("msg", p.s, p.d["id"])))
    dec.on(codec.Opcode.DISPATCH, lambda p: calls.append(("any", p.t)))

    @dec.on(codec.Opcode.HEARTBEAT_ACK)
    def on_ack(p):
        calls.append(("ack",))

    dec.feed(HELLO)
    dec.feed(dispatch("MESSAGE_CREATE", 1, {"id": "9"}))
    dec.feed(dispatch("TYPING_START", 2, {}))
    dec.feed(ACK)
    dec.feed(b'{"op":77,"d":null}')
    assert calls == [
        ("hello", 41250),
        ("msg", 1, "9"),
        ("any", "MESSAGE_CREATE"),
        ("any", "TYPING_START"),
        ("ack",),
    ]
    dec.off(codec.Opcode.DISPATCH)
    dec.off(codec.Opcode.HEARTBEAT_ACK, on_ack)
    calls.clear()
    dec.feed(ACK)
    dec.feed(dispatch("TYPING_START", 3, {}))
    assert calls == []
    with pytest.raises(ValueError):
        dec.off(codec.Opcode.HEARTBEAT_ACK, on_ack)
    with pytest.raises(TypeError):
        dec.on(1.5, print)
    with pytest.raises(TypeError):
        dec.on(True, print)


def test_unhandled_dispatch_is_skipped_without_decoding_d(codec):
    dec = codec.Decoder(None)
    seen = []
    dec.on("MESSAGE_CREATE", lambda p: seen.append(p.d))
    # broken d on an event nobody handles: no error, seq still tracked
    dec.feed(b'{"t":"PRESENCE_UPDATE","s":10,"op":0,"d":{"x":nope}')
    dec.feed(dispatch("MESSAGE_CREATE", 11, {"ok": True}))
    assert seen == [{"ok": True}]
    assert dec.seq == 11


def test_handler_exception_propagates_after_seq_update(codec):
    dec = codec.Decoder(None)

    def boom(p):
        raise RuntimeError("handler failed")

    dec.on("A", boom)
    with pytest.raises(RuntimeError, match="handler failed"):
        dec.feed(dispatch("A", 4, {}))
    assert dec.seq == 4
    assert dec.feed(ACK).op == 11


def test_handlers_may_feed_and_reset_but_feed_is_not_reentrant_midway(codec):
    dec = codec.Decoder(None)
    inner = []
    dec.on("OUTER", lambda p: inner.append(dec.feed(ACK).op))
    dec.on(codec.Opcode.RECONNECT, lambda p: dec.reset())
    dec.feed(dispatch("OUTER", 1, {}))
    dec.feed(b'{"t":null,"s":null,"op":7,"d":null}')
    assert inner == [11]


def test_packet_repr_and_readonly(codec):
    pkt = codec.Decoder(None).feed(dispatch("A", 1, {}))
    assert repr(pkt) == "Packet(op=<Opcode.DISPATCH: 0>, s=1, t='A')"
    with pytest.raises(AttributeError):
        pkt.op = 3


def test_same_public_names(both):
    compiled, fallback = both
    assert compiled.__all__ == fallback.__all__
    for name in compiled.__all__:
        assert hasattr(compiled, name) and hasattr(fallback, name), name
    for cls in ("Decoder", "Packet"):
        names_c = {n for n in dir(getattr(compiled, cls)) if not n.startswith("_")}
        names_p = {n for n in dir(getattr(fallback, cls)) if not n.startswith("_")}
        assert names_c == names_p, cls
