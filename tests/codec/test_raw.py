"""``Packet.raw_d`` (d's JSON text, unparsed) and ``Decoder.feed_raw()`` (the
payload's bytes, no Packet), on both implementations."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._helpers import zlib_stream, zstd_closed_frames, zstd_open_frame
from tests.codec.test_differential import garbage, json_values, payloads

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}'


# -- raw_d ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b'{"t":"A","s":1,"op":0,"d":{"a":"}"}}', b'{"a":"}"}'),
        (b'{"t":"A","s":1,"op":0,"d":"x\\"}y"}', b'"x\\"}y"'),
        (b'{"t":"A","s":1,"op":0,"d":12.5e3}', b"12.5e3"),
        (b'{"t":"A","s":1,"op":0,"d":[1,[2,{"]":"["}]] }', b'[1,[2,{"]":"["}]]'),
        (b'{"t":null,"s":null,"op":11,"d":null}', b"null"),
        (b'{"t":null,"s":null,"op":11,"d":true}', b"true"),
        # keys after d: the slice up to the final brace would be wrong
        (b'{"t":"A","s":1,"op":0,"d":{"a":1},"x":{"d":2}}', b'{"a":1}'),
        (b'{"t":"A","s":1,"op":0,"d":"q" , "x":[]}', b'"q"'),
        # not canonical: found in the fully parsed payload
        (b'{"op":1,"d":[1,"]",{}] , "x":3}', b'[1,"]",{}]'),
        (b'{ "op" : 0, "d" :\n {"k": "v"}\n, "t": "A", "s": 2 }', b'{"k": "v"}'),
        (b'{"d":{"nested":{"d":1}},"op":0}', b'{"nested":{"d":1}}'),
        (b'{"op":1,"\\u0064":5}', b"5"),  # the key "d", escaped
        (b'{"op":1,"d":1,"d":[2]}', b"[2]"),  # repeated key: the parser keeps the last
        (b'{"op":1,"dd":1,"x":"d"}', b"null"),
        (b'{"op":11}', b"null"),  # no d at all: documented as b"null"
        (b'{"op":1,"d":"h\\u00e9 \xc3\xa9"}', b'"h\\u00e9 \xc3\xa9"'),
    ],
)
def test_raw_d_is_ds_text(codec, raw, expected):
    pkt = codec.Decoder(None).feed(raw)
    assert pkt.raw_d == expected
    assert type(pkt.raw_d) is bytes
    assert orjson.loads(pkt.raw_d) == pkt.d
    assert pkt.raw_d == expected  # reading d first changes nothing


def test_raw_d_never_silently_wrong_on_ambiguous_or_broken_payloads(codec):
    dec = codec.Decoder(None)
    with pytest.raises(codec.DecodeError, match="ambiguous"):
        dec.feed(b'{"t":"A","s":1,"op":0,"d":{},"s":2}').raw_d
    # the structure around d does not close: the full parse refuses it
    for raw in (b'{"t":"A","s":1,"op":0,"d":{"a":1}}}', b'{"t":"A","s":1,"op":0,"d":1 2}', b'{"t":"A","s":1,"op":0,"d":"abc}'):
        with pytest.raises(codec.DecodeError):
            dec.feed(raw).raw_d
    # d's own text is not validated (documented): it is what is at d's place
    pkt = dec.feed(b'{"t":"A","s":1,"op":0,"d":{"broken":}}')
    assert pkt.raw_d == b'{"broken":}'
    with pytest.raises(codec.DecodeError):
        pkt.d


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream", None])
def test_raw_d_in_every_mode(codec, mode):
    items = [HELLO, b'{"t":"MESSAGE_CREATE","s":1,"op":0,"d":{"content":"x"}}', b'{"op":11,"d":{}}']
    messages = {"zlib-stream": zlib_stream, "zstd-stream": zstd_open_frame, None: lambda x: x}[mode](items)
    dec = codec.Decoder(mode)
    assert [dec.feed(m).raw_d for m in messages] == [b'{"heartbeat_interval":41250}', b'{"content":"x"}', b"{}"]


@SETTINGS
@given(payloads())
def test_raw_d_matches_the_parsed_d(both, raw):
    """For any valid payload, raw_d is a piece of raw that parses to d, the same in both."""
    compiled, fallback = both
    results = []
    for impl in (compiled, fallback):
        pkt = impl.Decoder(None).feed(raw)
        text = pkt.raw_d
        results.append(text)
        assert text == b"null" or text in raw
        assert orjson.loads(text) == orjson.loads(raw).get("d")
    assert results[0] == results[1]


@SETTINGS
@given(st.one_of(garbage, payloads().map(lambda p: p[:-1] + b',"d":1}'), st.binary(max_size=40).map(lambda b: b'{"t":"A","s":1,"op":0,"d":' + b)))
def test_raw_d_identical_on_anything(both, raw):
    compiled, fallback = both

    def run(impl):
        try:
            pkt = impl.Decoder(None).feed(raw)
        except Exception as exc:
            return ("feed raised", type(exc))
        try:
            return pkt.raw_d
        except Exception as exc:
            return ("raw_d raised", type(exc))

    assert run(compiled) == run(fallback)


# -- feed_raw -----------------------------------------------------------------------


def test_feed_raw_returns_the_payload_and_builds_nothing(codec):
    items = [HELLO, b'{"t":"A","s":5,"op":0,"d":{}}', b"not json at all", b'{"op":11,"d":null}']
    for mode, messages in [("zlib-stream", zlib_stream(items)), ("zstd-stream", zstd_open_frame(items)), (None, items)]:
        dec = codec.Decoder(mode)
        calls = []
        dec.on(codec.Opcode.DISPATCH, calls.append)
        dec.on("A", calls.append)
        assert [dec.feed_raw(m) for m in messages] == items
        assert calls == []  # no handlers
        assert dec.seq is None  # no envelope read
        assert dec.payloads == len(items)  # every complete payload counts, JSON or not
        assert dec.bytes_in == sum(map(len, messages))
        assert dec.bytes_out == sum(map(len, items))


def test_feed_raw_incomplete_and_split(codec):
    message = zlib_stream([HELLO])[0]
    dec = codec.Decoder("zlib-stream")
    assert dec.feed_raw(b"") is None
    assert dec.feed_raw(message[:3]) is None
    assert dec.feed_raw(message[3:-2]) is None
    assert dec.feed_raw(message[-2:]) == HELLO
    with pytest.raises(TypeError):
        dec.feed_raw("text")


def test_feed_raw_and_feed_share_one_stream(codec):
    items = [HELLO, b'{"t":"A","s":1,"op":0,"d":1}', b'{"t":"A","s":2,"op":0,"d":2}']
    for mode, messages in [("zlib-stream", zlib_stream(items)), ("zstd-stream", zstd_closed_frames(items))]:
        dec = codec.Decoder(mode)
        assert dec.feed_raw(messages[0]) == items[0]
        assert dec.feed(messages[1]).s == 1
        assert dec.feed_raw(messages[2]) == items[2]
        assert dec.seq == 1  # only feed() tracks seq


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_feed_raw_poisons_and_limits_like_feed(codec, mode):
    bomb = b'{"op":0,"d":"' + b"A" * (2 * 1024 * 1024) + b'"}'
    message = (zlib_stream if mode == "zlib-stream" else zstd_open_frame)([bomb])[0]
    dec = codec.Decoder(mode, max_payload_size=1024 * 1024)
    with pytest.raises(codec.PayloadTooLarge):
        dec.feed_raw(message)
    assert dec.poisoned
    with pytest.raises(codec.PayloadTooLarge, match="poisoned"):
        dec.feed_raw(message)
    with pytest.raises(codec.PayloadTooLarge, match="poisoned"):
        dec.feed(message)
    dec.reset()
    with pytest.raises(codec.DecompressError):
        dec.feed_raw(b"garbage, not a compressed stream")
    assert dec.poisoned


def test_feed_raw_plain_limits_and_str(codec):
    dec = codec.Decoder(None, max_payload_size=10)
    assert dec.feed_raw('{"op":1}') == b'{"op":1}'
    assert dec.feed_raw(bytearray(b"[]")) == b"[]"
    with pytest.raises(codec.PayloadTooLarge):
        dec.feed_raw(b"x" * 11)
    assert not dec.poisoned  # plain frames have no stream to lose
    with pytest.raises(codec.DecodeError, match="surrogate"):
        dec.feed_raw("\ud800")


def test_feed_raw_from_a_handler_is_allowed(codec):
    dec = codec.Decoder(None)
    seen = []

    def handler(pkt):
        seen.append(dec.feed_raw(b'{"op":11}'))

    dec.on(11, handler)
    dec.feed(b'{"op":11}')
    assert seen == [b'{"op":11}']  # handlers run after feed() let go of the decoder
    assert dec.payloads == 2


def test_feed_raw_refused_while_another_thread_feeds(codec):
    """One feed at a time per decoder, feed_raw included: the busy flag."""
    import os
    import threading

    big = [b'{"op":0,"d":"' + os.urandom(256 * 1024).hex().encode() + b'"}' for _ in range(8)]
    messages = zlib_stream(big, level=1)
    dec = codec.Decoder("zlib-stream")
    done = threading.Event()
    got = []

    def feeder():
        try:
            got.extend(dec.feed(m).raw for m in messages)
        finally:
            done.set()

    thread = threading.Thread(target=feeder)
    thread.start()
    refused = 0
    while not done.is_set():
        try:
            assert dec.feed_raw(b"") is None  # an empty message changes nothing
        except RuntimeError:
            refused += 1
    thread.join()
    assert got == big
    assert refused > 0  # the inflating thread let this one run, and it was refused


@SETTINGS
@given(st.lists(payloads() | garbage, min_size=1, max_size=6), st.sampled_from(["zlib-stream", "zstd-stream", None]))
def test_feed_raw_identical_in_both_and_to_feed(both, items, mode):
    """feed_raw gives every implementation the same bytes, exceptions, poisoning and
    counters, and the raw of feed()'s packets where feed() makes one."""
    messages = {"zlib-stream": zlib_stream, "zstd-stream": zstd_open_frame, None: list}[mode](items)

    def run(impl, method):
        dec = impl.Decoder(mode)
        out = []
        for m in messages:
            try:
                r = getattr(dec, method)(m)
            except Exception as exc:
                out.append(("raised", type(exc), dec.poisoned))
                continue
            out.append(r.raw if method == "feed" and r is not None else r)
        return out, (dec.bytes_in, dec.bytes_out, dec.poisoned)

    compiled, fallback = both
    raw_c, raw_p = run(compiled, "feed_raw"), run(fallback, "feed_raw")
    assert raw_c == raw_p
    fed = run(compiled, "feed")
    for got_raw, got_pkt in zip(raw_c[0], fed[0]):
        if isinstance(got_pkt, bytes):
            assert got_raw == got_pkt
        elif got_pkt is None:
            assert got_raw is None
    assert raw_c[1] == fed[1]  # same bytes in and out, same poisoning


def test_raw_d_with_json_module_dumps(codec):
    """Spacing and key orders json.dumps produces: raw_d is still d's exact text."""
    obj = {"op": 0, "s": 3, "t": "X", "d": {"a": [1, 2, {"b": None}], "c": "d"}}
    for indent in (None, 2):
        raw = json.dumps(obj, indent=indent).encode()
        pkt = codec.Decoder(None).feed(raw)
        assert pkt.raw_d in raw
        assert json.loads(pkt.raw_d) == obj["d"]


# -- a null d, and the HEARTBEAT_ACK byte for byte ---------------------------------


@pytest.mark.parametrize(
    "raw, op, s, t, d",
    [
        (b'{"t":null,"s":null,"op":11,"d":null}', 11, None, None, None),  # Discord's ACK, exactly
        (b'{"t":null,"s":null,"op":7,"d":null}', 7, None, None, None),
        (b'{"t":"X","s":5,"op":0,"d":null}', 0, 5, "X", None),
        (b'{"t":null,"s":null,"op":11,"d": null}', 11, None, None, None),
        (b'{"t":null,"s":null,"op":11,"d":null }', 11, None, None, None),
        (b'{"t":null,"s":null,"op":11,"d":"a","x":null}', 11, None, None, "a"),
        (b'{"t":null,"s":null,"op":11,"d":[null]}', 11, None, None, [None]),
    ],
)
def test_null_d_and_the_ack_read_like_any_payload(codec, raw, op, s, t, d):
    for compress in (None, "zlib-stream"):
        dec = codec.Decoder(compress)
        pkt = dec.feed(zlib_stream([raw])[0] if compress else raw)
        assert (pkt.op, pkt.s, pkt.t, pkt.d) == (op, s, t, d)
        assert pkt.op is codec.Opcode(op)
        assert pkt.raw == raw
        assert orjson.loads(pkt.raw_d) == d
        if raw.endswith(b'"d":null}'):
            assert pkt.raw_d == b"null"
        assert pkt.d is pkt.d  # cached


@pytest.mark.parametrize(
    "raw, raw_d",
    [
        (b'{"t":null,"s":null,"op":11,"d":nulx}', b"nulx"),
        (b'{"t":null,"s":null,"op":11,"d":nul}', b"nul"),
        (b'{"t":null,"s":null,"op":11,"d":null,"op":1}', None),  # the envelope repeated after d
    ],
)
def test_broken_null_d_is_a_decode_error_when_read(codec, raw, raw_d):
    """Never a None d for a payload that only looks like a null d. raw_d, as
    documented, is the unvalidated text at d's place, unless the payload's
    structure is ambiguous."""
    pkt = codec.Decoder(None).feed(raw)
    assert pkt.op == 11
    with pytest.raises(codec.DecodeError):
        pkt.d
    if raw_d is None:
        with pytest.raises(codec.DecodeError, match="ambiguous"):
            pkt.raw_d
    else:
        assert pkt.raw_d == raw_d
