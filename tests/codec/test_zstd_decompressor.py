"""What decodes zstd-stream (``ZSTD_DECOMPRESSOR``): the compiled codec's own
link of libzstd when it is the release the fallback's decompressor object
runs, else that object; and, whichever it is, the two implementations give
the same payloads and the same exceptions with the same messages, also on
corrupt input and on Spacebar's closed frames."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from mijcodec._common import zstd_decompressor
from tests._helpers import python_m_mijcodec_line, zstd_closed_frames, zstd_module, zstd_open_frame

HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}'
MESSAGE = b'{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"content":"%s","id":"1"}}' % (b"hello " * 40)


def _number(info) -> int:
    return info[0] * 10000 + info[1] * 100 + info[2]


def test_the_rule():
    zstd = zstd_module()
    same = _number(zstd.zstd_version_info)
    assert zstd_decompressor(None) is None
    assert zstd_decompressor(None, same) is None
    assert zstd_decompressor(zstd, same) == "libzstd"
    assert zstd_decompressor(zstd) == zstd_decompressor(zstd, 0) == zstd.__name__
    assert zstd_decompressor(zstd, same + 1) == zstd.__name__  # another release: not used
    other = SimpleNamespace(__name__="compression.zstd", zstd_version_info=(1, 5, 6))
    assert zstd_decompressor(other, 10506) == "libzstd" and zstd_decompressor(other, 10507) == "compression.zstd"


def test_each_implementation_says_what_decodes(codec):
    zstd = zstd_module()
    assert codec.ZSTD_VERSION == zstd.zstd_version
    if codec.__name__.endswith("_py"):
        assert codec.ZSTD_DECOMPRESSOR == zstd.__name__
        return
    linked = codec._ZSTD_LINKED_VERSION
    if linked == zstd.zstd_version:
        assert codec.ZSTD_DECOMPRESSOR == "libzstd"
    else:
        assert codec.ZSTD_DECOMPRESSOR == zstd.__name__


def test_linked_libzstd_required_where_ci_says(codec):
    """.ci/run's linked build sets MIJCODEC_REQUIRE_LIBZSTD=1: there the
    compiled codec must decode with its own libzstd, not fall back silently."""
    if codec.__name__.endswith("_py"):
        assert codec.ZSTD_DECOMPRESSOR != "libzstd"  # the fallback never links anything
        return
    if not os.environ.get("MIJCODEC_REQUIRE_LIBZSTD"):
        pytest.skip("MIJCODEC_REQUIRE_LIBZSTD is not set (only .ci/run's linked build sets it)")
    assert codec.ZSTD_DECOMPRESSOR == "libzstd"


def test_python_m_mijcodec_names_the_decompressor():
    import mijcodec

    line = python_m_mijcodec_line("zstd: ")
    if mijcodec.ZSTD_DECOMPRESSOR == "libzstd":
        assert line.startswith(f"zstd: {mijcodec.ZSTD_VERSION} (libzstd linked in the compiled codec")
    else:
        assert line.startswith(f"zstd: {mijcodec.ZSTD_VERSION} ({mijcodec.ZSTD_DECOMPRESSOR}'s decompressor")


def _outcomes(codec, messages, **kw):
    dec = codec.Decoder("zstd-stream", **kw)
    seen = []
    for m in messages:
        try:
            pkt = dec.feed(m)
            seen.append(None if pkt is None else pkt.raw)
        except Exception as exc:  # compared across implementations
            seen.append((type(exc).__name__, str(exc)))
    return seen, dec.poisoned, dec.payloads, dec.bytes_in, dec.bytes_out


def _corruptions(messages):
    """Every byte of every message xor-ed with a few values, one at a time."""
    for i, m in enumerate(messages):
        for j in range(len(m)):
            for x in (0x01, 0x80, 0xFF):
                bad = bytearray(m)
                bad[j] ^= x
                yield messages[:i] + [bytes(bad)] + messages[i + 1 :]


@pytest.mark.parametrize("framing", ["open frame", "closed frames"])
def test_corrupt_input_same_errors_and_messages(both, framing):
    compiled, fallback = both
    make = zstd_open_frame if framing == "open frame" else zstd_closed_frames
    messages = make([HELLO, MESSAGE, HELLO])
    assert _outcomes(compiled, messages) == _outcomes(fallback, messages)
    cases = 0
    corrupt_seen: set[str] = set()
    for case in _corruptions(messages):
        got = _outcomes(compiled, case)
        assert got == _outcomes(fallback, case), case
        corrupt_seen.update(x[1].split(":")[0] for x in got[0] if isinstance(x, tuple))
        cases += 1
    assert cases == 3 * sum(map(len, messages))
    # libzstd itself found some of them (not only the header walk before it)
    assert "corrupt zstd-stream" in corrupt_seen


def test_frames_skippable_frames_and_limits_identical(both):
    compiled, fallback = both
    zstd = zstd_module()
    skippable = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    two = zstd.compress(HELLO) + skippable + zstd.compress(MESSAGE)  # two frames in one message
    cases = [
        [two, zstd.compress(HELLO)],
        [skippable],
        [skippable + zstd.compress(HELLO)],
        [zstd.compress(HELLO) + skippable],
        zstd_open_frame([HELLO, MESSAGE, HELLO]),
    ]
    for messages in cases:
        for limit in (len(HELLO) - 1, len(HELLO), len(HELLO) + len(MESSAGE), len(MESSAGE) + 1, 1 << 20):
            assert _outcomes(compiled, messages, max_payload_size=limit) == _outcomes(fallback, messages, max_payload_size=limit), (messages, limit)
    got = _outcomes(compiled, [two])
    assert got[0] == [HELLO + MESSAGE]  # the frames of one message make one payload, as in the fallback


def _libzstd_rejects(codec, first, message):
    """``message`` with the first byte flip that libzstd itself rejects (not
    the header walk before it) after ``first``."""
    for j in range(len(message)):
        bad = bytearray(message)
        bad[j] ^= 0xFF
        dec = codec.Decoder("zstd-stream")
        dec.feed(first)
        try:
            dec.feed(bytes(bad))
        except codec.DecompressError as exc:
            if "Unable to decompress Zstandard data" in str(exc):
                return bytes(bad)
    raise AssertionError("no byte flip that libzstd rejects")


def test_reset_after_corruption_decodes_a_new_connection(codec):
    good = zstd_open_frame([HELLO, MESSAGE])
    bad = _libzstd_rejects(codec, good[0], good[1])
    dec = codec.Decoder("zstd-stream")
    assert dec.feed(good[0]).raw == HELLO
    with pytest.raises(codec.DecompressError, match="^corrupt zstd-stream: Unable to decompress Zstandard data: "):
        dec.feed(bad)
    assert dec.poisoned
    with pytest.raises(codec.DecompressError, match="poisoned"):
        dec.feed(good[1])
    dec.reset()
    fresh = zstd_open_frame([HELLO, MESSAGE])
    assert [dec.feed(m).raw for m in fresh] == [HELLO, MESSAGE]


def test_payload_larger_than_the_buffer(codec):
    """Past the compiled decoder's 64 KiB buffer (it grows, and is given back
    after), across several messages of one open frame."""
    big = b'{"op":0,"s":1,"t":"A","d":"' + os.urandom(200_000).hex().encode() + b'"}'
    payloads = [HELLO, big, HELLO, big]
    dec = codec.Decoder("zstd-stream")
    assert [dec.feed(m).raw for m in zstd_open_frame(payloads)] == payloads
    assert dec.buffer_size <= 256 * 1024
