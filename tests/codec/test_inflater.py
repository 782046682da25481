"""Which zlib inflates zlib-stream: the install's default (``ZLIB_INFLATER``),
``Decoder(inflater=...)``, and the same behaviour whichever library it is,
on both implementations through the ``codec`` fixture."""

from __future__ import annotations

import zlib

import pytest

from mijcodec._common import INFLATER_NAMES, install_inflater, zlib_ng_module
from tests._helpers import REALDATA, python_m_mijcodec_line, zlib_stream

HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}'
BIG = b'{"t":"GUILD_CREATE","s":1,"op":0,"d":{"members":[%s]}}' % b",".join(
    b'{"user":{"id":"%d","username":"member%d"},"roles":["%d"]}' % (i, i, i * 7) for i in range(4000)
)


def _frames() -> list[tuple[bytes, bytes]]:
    """The real DiscordBM connection: (message, expected payload) x 3."""
    return [
        ((REALDATA / f"zlib-stream/discordbm-frame{i}.bin").read_bytes(), (REALDATA / f"zlib-stream/discordbm-frame{i}.json").read_bytes())
        for i in range(3)
    ]


def test_default_inflater_is_the_install_rule(codec):
    assert codec.ZLIB_INFLATER in codec.INFLATERS
    assert codec.ZLIB_VERSION == codec.INFLATERS[codec.ZLIB_INFLATER]
    assert set(codec.INFLATERS) <= set(INFLATER_NAMES) and "zlib" in codec.INFLATERS
    if codec.__name__.endswith("_py"):
        assert codec.INFLATERS["zlib"] == zlib.ZLIB_RUNTIME_VERSION
        assert ("zlib-ng" in codec.INFLATERS) == (zlib_ng_module() is not None)
        assert codec.ZLIB_INFLATER == install_inflater(from_fallback=True)
    else:
        assert codec.ZLIB_INFLATER == install_inflater(codec.INFLATERS.get("zlib-ng", ""))
    if zlib_ng_module() is None:  # the fallback could not follow zlib-ng
        assert codec.ZLIB_INFLATER == "zlib"
    if "zlib-ng" in codec.INFLATERS:
        assert codec.INFLATERS["zlib-ng"].startswith("2.")


def test_both_implementations_default_to_the_same_inflater(both):
    """So that they agree on corrupt input (the reason for the rule)."""
    compiled, fallback = both
    assert compiled.ZLIB_INFLATER == fallback.ZLIB_INFLATER
    if "zlib-ng" in compiled.INFLATERS and zlib_ng_module() is not None:
        assert compiled.ZLIB_INFLATER == "zlib-ng"


def test_install_rule():
    package = zlib_ng_module()
    if package is None:
        for compiled in (None, "", "2.3.3"):
            assert install_inflater(compiled) == "zlib"
        return
    same = package.ZLIBNG_RUNTIME_VERSION
    assert install_inflater(None) == "zlib-ng"  # no compiled codec: the fallback alone
    assert install_inflater(same) == "zlib-ng"  # both inflate with this release
    assert install_inflater("") == "zlib"  # a compiled codec without zlib-ng: both use zlib
    other = "1.0.0" if same != "1.0.0" else "1.0.1"
    assert install_inflater(other) == "zlib"  # another zlib-ng release: both use zlib


def test_inflater_argument(codec):
    assert codec.Decoder("zlib-stream").inflater == codec.ZLIB_INFLATER
    assert codec.Decoder("zlib-stream", inflater=None).inflater == codec.ZLIB_INFLATER
    for name in codec.INFLATERS:
        assert codec.Decoder("zlib-stream", inflater=name).inflater == name
    for bad in ("zlib_ng", "ZLIB", "", 1, b"zlib"):
        with pytest.raises(ValueError, match="inflater must be"):
            codec.Decoder("zlib-stream", inflater=bad)
    for missing in set(INFLATER_NAMES) - set(codec.INFLATERS):
        with pytest.raises(ValueError, match="not available"):
            codec.Decoder("zlib-stream", inflater=missing)


@pytest.fixture(params=INFLATER_NAMES)
def inflater(request, codec):
    if request.param not in codec.INFLATERS:
        pytest.skip(f"{request.param} is not available to {codec.__name__} here")
    return request.param


def test_real_stream(codec, inflater):
    dec = codec.Decoder("zlib-stream", inflater=inflater)
    for message, expected in _frames():
        assert dec.feed(message).raw == expected
    assert dec.seq == 2


def test_split_messages_and_reset(codec, inflater):
    dec = codec.Decoder("zlib-stream", inflater=inflater)
    payloads = [HELLO, BIG, HELLO]
    msgs = zlib_stream(payloads)
    big = msgs[1]
    got = [dec.feed(msgs[0]).raw]
    for piece in (big[:1], big[1:1000], big[1000:-2], big[-2:]):  # the suffix split too
        pkt = dec.feed(piece)
    got.append(pkt.raw)
    got.append(dec.feed(msgs[2]).raw)
    assert got == payloads
    dec.reset()
    assert [dec.feed(m).raw for m in msgs] == payloads


def test_bounded_output(codec, inflater):
    dec = codec.Decoder("zlib-stream", inflater=inflater, max_payload_size=len(BIG) - 1)
    msgs = zlib_stream([HELLO, BIG])
    assert dec.feed(msgs[0]).raw == HELLO
    with pytest.raises(codec.PayloadTooLarge):
        dec.feed(msgs[1])
    assert dec.poisoned


def _corrupt_cases() -> dict[str, list[bytes]]:
    good = zlib_stream([HELLO, HELLO])
    c = zlib.compressobj()
    final = c.compress(HELLO) + c.flush(zlib.Z_FINISH)  # the deflate stream ends
    return {
        "bad header": [b"\x78\x00" + good[0][2:]],
        "reserved block type": [good[0][:2] + b"\x07\x00\x00\xff\xff"],
        "bad stored block lengths": [good[0], b"\x00\x05\x00\x05\x00" + b"x" * 5 + b"\x00\x00\xff\xff"],
        "garbage after the header": [good[0][:2] + bytes(range(255, 200, -1)) + b"\x00\x00\xff\xff"],
        "stream ends": [final],
    }


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_corrupt_input_poisons(codec, inflater, case):
    dec = codec.Decoder("zlib-stream", inflater=inflater)
    with pytest.raises(codec.DecompressError):
        for m in _corrupt_cases()[case]:
            dec.feed(m)
    assert dec.poisoned
    with pytest.raises(codec.DecompressError, match="poisoned"):
        dec.feed(zlib_stream([HELLO])[0])
    dec.reset()
    assert dec.feed(zlib_stream([HELLO])[0]).raw == HELLO


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_implementations_agree_per_inflater(both, case):
    """For every inflater both have, the same outcome message by message."""
    compiled, fallback = both
    for name in set(compiled.INFLATERS) & set(fallback.INFLATERS):
        outcomes = []
        for mod in both:
            dec = mod.Decoder("zlib-stream", inflater=name)
            seen = []
            for m in _corrupt_cases()[case]:
                try:
                    pkt = dec.feed(m)
                    seen.append(None if pkt is None else pkt.raw)
                except Exception as exc:  # compared across implementations
                    seen.append(type(exc))
                    break
            outcomes.append((seen, dec.poisoned))
        assert outcomes[0] == outcomes[1], (name, case)


def test_python_m_mijcodec_names_the_inflater():
    import mijcodec

    line = python_m_mijcodec_line("zlib: ")
    name = "system zlib" if mijcodec.ZLIB_INFLATER == "zlib" else mijcodec.ZLIB_INFLATER
    assert line.startswith(f"zlib: {mijcodec.ZLIB_VERSION} ({name}")
