"""Hypothesis differential tests: the compiled and the pure-Python codec are fed
the same messages and must agree on every result and every exception class."""

from __future__ import annotations

import json
import zlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._helpers import zlib_stream, zstd_closed_frames, zstd_open_frame
from tests.codec.test_decoder import BUFFER_KINDS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
event_names = st.sampled_from(["MESSAGE_CREATE", "PRESENCE_UPDATE", "TYPING_START", "GUILD_CREATE", "READY", "X"]) | st.text(max_size=12)


@st.composite
def payloads(draw) -> bytes:
    """A gateway payload: canonical, reordered, re-spaced, with keys missing or extra."""
    op = draw(st.sampled_from([0, 0, 0, 1, 7, 9, 10, 11]) | st.integers(0, 2**40))
    env: dict = {}
    if op == 0:
        env["t"] = draw(event_names)
        env["s"] = draw(st.integers(0, 2**53))
    else:
        env["t"] = None
        env["s"] = None
    env["op"] = op
    env["d"] = draw(json_values)
    keys = ["t", "s", "op", "d"]
    style = draw(st.sampled_from(["canonical", "canonical", "shuffled", "spaced", "missing", "extra"]))
    if style == "shuffled":
        keys = draw(st.permutations(keys))
    elif style == "missing":
        keys = [k for k in keys if k == "op" or draw(st.booleans())]
    elif style == "extra":
        keys = keys + ["x"]
        env["x"] = draw(json_values)
    obj = {k: env[k] for k in keys}
    if style == "spaced":
        return json.dumps(obj, indent=draw(st.sampled_from([None, 1, 2])), ensure_ascii=draw(st.booleans())).encode()
    return orjson.dumps(obj)


garbage = st.binary(max_size=64)


def outcome(decoder, message):
    """What feeding one message does: the packet's fields, or the exception class."""
    try:
        pkt = decoder.feed(message)
    except Exception as exc:  # compared across implementations
        return ("raised", type(exc))
    if pkt is None:
        return None
    try:
        d = pkt.d
    except Exception as exc:
        d = ("raised", type(exc))
    try:
        raw_d = pkt.raw_d
    except Exception as exc:
        raw_d = ("raised", type(exc))
    return (int(pkt.op), type(pkt.op).__name__, pkt.s, pkt.t, pkt.raw, repr(d), raw_d, decoder.seq, decoder.poisoned)


def run_both(both, mode, messages, **kw):
    compiled, fallback = both
    dc, dp = compiled.Decoder(mode, **kw), fallback.Decoder(mode, **kw)
    results_c = [outcome(dc, m) for m in messages]
    results_p = [outcome(dp, m) for m in messages]
    assert results_c == results_p
    assert (dc.payloads, dc.bytes_in, dc.bytes_out, dc.seq) == (dp.payloads, dp.bytes_in, dp.bytes_out, dp.seq)
    return results_c


def split(draw, message: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(message)), max_size=4)))
    pieces, last = [], 0
    for c in cuts + [len(message)]:
        pieces.append(message[last:c])
        last = c
    return pieces


@SETTINGS
@given(st.lists(payloads(), min_size=1, max_size=8), st.data())
def test_zlib_stream_random_payloads_and_splits(both, items, data):
    messages = []
    for m in zlib_stream(items):
        # cuts anywhere, including inside the 00 00 ff ff suffix
        if data.draw(st.booleans()):
            messages.append(m[:-data.draw(st.integers(1, 4))])
            messages.append(m[len(messages[-1]) :])
        else:
            messages.extend(split(data.draw, m))
    results = run_both(both, "zlib-stream", messages)
    packets = [r for r in results if r is not None and r[0] != "raised"]
    assert [p[4] for p in packets] == [p for p in items if not _bad_envelope(p)] or any(
        r is not None and r[0] == "raised" for r in results
    )


def _bad_envelope(raw: bytes) -> bool:
    obj = json.loads(raw)
    return not (type(obj.get("op")) is int)


@SETTINGS
@given(st.lists(payloads(), min_size=1, max_size=8), st.booleans())
def test_zstd_stream_both_framings(both, items, closed):
    messages = zstd_closed_frames(items) if closed else zstd_open_frame(items)
    results = run_both(both, "zstd-stream", messages)
    assert [r[4] for r in results] == items


@SETTINGS
@given(st.lists(payloads(), min_size=1, max_size=8))
def test_plain_json(both, items):
    results = run_both(both, None, items)
    for raw, r in zip(items, results):
        obj = json.loads(raw)
        assert r[0] == obj["op"] and r[2] == obj.get("s") and r[3] == obj.get("t")
        assert r[5] == repr(json.loads(raw).get("d")) or r[5] == repr(orjson.loads(raw).get("d"))


@SETTINGS
@given(st.lists(garbage, min_size=1, max_size=4))
def test_garbage_everywhere(both, messages):
    for mode in ("zlib-stream", "zstd-stream", None):
        run_both(both, mode, messages)


@SETTINGS
@given(st.lists(payloads(), min_size=2, max_size=6), st.data())
def test_truncated_and_corrupted_streams(both, items, data):
    for mode, messages in (("zlib-stream", zlib_stream(items)), ("zstd-stream", zstd_open_frame(items))):
        messages = list(messages)
        i = data.draw(st.integers(0, len(messages) - 1))
        m = bytearray(messages[i])
        action = data.draw(st.sampled_from(["truncate", "flip", "insert", "drop"]))
        if action == "truncate" and len(m) > 1:
            del m[data.draw(st.integers(1, len(m) - 1)) :]
        elif action == "flip":
            j = data.draw(st.integers(0, len(m) - 1))
            m[j] ^= data.draw(st.integers(1, 255))
        elif action == "insert":
            m[data.draw(st.integers(0, len(m))) : 0] = data.draw(st.binary(min_size=1, max_size=8))
        messages[i] = bytes(m)
        if action == "drop":
            del messages[i]
        run_both(both, mode, messages)


@SETTINGS
@given(st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=4), st.integers(1, 4096))
def test_max_payload_size_boundaries(both, blobs, limit):
    items = [b'{"op":1,"d":"' + b.hex().encode() + b'"}' for b in blobs]
    run_both(both, "zlib-stream", zlib_stream(items), max_payload_size=limit)
    run_both(both, "zstd-stream", zstd_open_frame(items), max_payload_size=limit)
    run_both(both, None, items, max_payload_size=limit)


@SETTINGS
@given(st.integers(0, 64), st.one_of(st.none(), json_values), st.booleans())
def test_encode_identical(both, op, d, force):
    compiled, fallback = both
    assert compiled.encode is fallback.encode or _same_call(compiled.encode, fallback.encode, op, d, force)


def _same_call(f, g, *args):
    def run(fn):
        try:
            return fn(args[0], args[1], force=args[2])
        except Exception as exc:
            return type(exc)

    return run(f) == run(g)


def test_zlib_level_and_strategy_variety(both):
    """Stored, fixed-Huffman and dynamic blocks: every deflate block type decodes the same."""
    items = [orjson.dumps({"t": "A", "s": i, "op": 0, "d": {"i": i, "text": "ab" * i}}) for i in range(1, 60)]
    for level in (0, 1, 9):
        for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FIXED, zlib.Z_HUFFMAN_ONLY):
            c = zlib.compressobj(level, zlib.DEFLATED, 15, 8, strategy)
            messages = [c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH) for p in items]
            assert [r[4] for r in run_both(both, "zlib-stream", messages)] == items


@SETTINGS
@given(st.lists(payloads() | garbage, min_size=1, max_size=6), st.sampled_from(["zlib-stream", "zstd-stream", None]), st.data())
def test_every_buffer_type_decodes_identically(both, items, mode, data):
    """Each message as a drawn bytes-like type (signed and char views, arrays,
    mmap, ctypes, 2-D and sliced views...): the same results in both
    implementations as for plain bytes."""
    messages = {"zlib-stream": zlib_stream, "zstd-stream": zstd_open_frame, None: list}[mode](items)
    if mode == "zlib-stream" and data.draw(st.booleans()):
        messages = [piece for m in messages for piece in split(data.draw, m)]
    kinds = data.draw(st.lists(st.sampled_from(sorted(BUFFER_KINDS)), min_size=len(messages), max_size=len(messages)))
    as_bytes = run_both(both, mode, messages)
    as_kinds = run_both(both, mode, [BUFFER_KINDS[k](m) for k, m in zip(kinds, messages)])
    assert as_kinds == as_bytes


@pytest.mark.parametrize("limit", [2**62 - 1, 2**62, 2**63 - 1, 2**63, 2**64])
def test_huge_limits_identical(both, limit):
    items = [b'{"t":"A","s":1,"op":0,"d":{}}', b'{"op":11}']
    for mode, messages in (("zlib-stream", zlib_stream(items)), ("zstd-stream", zstd_open_frame(items)), (None, items)):
        run_both(both, mode, messages, max_payload_size=limit)
    compiled, fallback = both
    assert compiled.Decoder(None, max_payload_size=limit).max_payload_size == fallback.Decoder(None, max_payload_size=limit).max_payload_size


def _state(dec):
    return (dec.compress, dec.max_payload_size, dec.seq, dec.poisoned, dec.payloads, dec.bytes_in, dec.bytes_out)


@pytest.mark.parametrize("args", [("zlib-stream",), ("zstd-stream",), (None,), ("bogus",), ()])
def test_reinit_identical(both, args):
    compiled, fallback = both
    results = []
    for impl in both:
        dec = impl.Decoder("zlib-stream", max_payload_size=100)
        dec.feed(zlib_stream([b'{"op":11}'])[0])
        try:
            dec.__init__(*args, max_payload_size=5)
            outcome_ = "accepted"
        except Exception as exc:
            outcome_ = type(exc).__name__
        results.append((outcome_, _state(dec)))
        fresh = impl.Decoder.__new__(impl.Decoder)
        results.append(_state(fresh))
    assert results[:2] == results[2:]
    assert results[0][0] == "TypeError"
