"""Issue 9's reproductions: no call, input or thread crashes the codec.

Every dangerous call runs in a separate interpreter (``isolated``), so a
segfault or a hang fails the test instead of killing the test run; each runs
on both implementations through the ``codec`` fixture, with the same expected
results.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def isolated(codec, code: str, timeout: float = 180) -> str:
    """Run ``code`` in a fresh interpreter with ``M`` bound to the
    implementation under test; return its stdout. A signal (segfault, abort)
    or a timeout (a hang) is a failure."""
    prelude = f"import importlib, sys\nM = importlib.import_module({codec.__name__!r})\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIJCODEC_")}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{codec.__name__}: hung for {timeout} s")
    assert proc.returncode >= 0, f"{codec.__name__}: killed by signal {-proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, f"{codec.__name__}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# -- Packet: only a Decoder makes one ----------------------------------------------


def test_packet_cannot_be_made_broken(codec):
    out = isolated(
        codec,
        """
        def outcome(fn):
            try:
                return repr(fn())
            except Exception as exc:
                return type(exc).__name__
        print("call", outcome(lambda: M.Packet()))
        print("call-args", outcome(lambda: M.Packet(b'{"op":1}')))
        p = M.Packet.__new__(M.Packet)
        print("new", outcome(lambda: p.d), outcome(lambda: p.raw_d), p.op, p.s, p.t, p.raw, repr(p))
        print("new-again", outcome(lambda: p.d))  # no cached state either
        """,
    )
    assert out.splitlines() == [
        "call TypeError",
        "call-args TypeError",
        "new TypeError TypeError None None None None Packet(op=None, s=None, t=None)",
        "new-again TypeError",
    ]


def test_no_pickling_of_packets_or_decoders(codec):
    out = isolated(
        codec,
        """
        import copy, pickle
        real = M.Decoder(None).feed(b'{"t":"A","s":300,"op":0,"d":{"a":1}}')
        # Cython's automatic pickling gave Packet a state setter that wrote
        # a broken state; then .d crashed
        print(hasattr(real, "__setstate_cython__"), hasattr(real, "__reduce_cython__"))
        for obj in (real, M.Decoder(None), M.Decoder("zlib-stream"), M.Decoder("zstd-stream")):
            for fn in (pickle.dumps, copy.copy, copy.deepcopy):
                try:
                    fn(obj)
                    print("copied", type(obj).__name__, fn.__name__)
                except TypeError:
                    pass
        print(real.d, real.raw_d)
        """,
    )
    assert out.splitlines() == ["False False", "{'a': 1} b'{\"a\":1}'"]


# -- Decoder.__init__ runs once ---------------------------------------------------------


def test_reinit_refused_while_another_thread_inflates(codec):
    """The issue's race: one thread feeds big zlib messages (the compiled codec
    releases the GIL while inflating them) while another calls __init__."""
    out = isolated(
        codec,
        """
        import os, threading
        from tests._helpers import zlib_stream
        big = [b'{"op":0,"d":"' + os.urandom(512 * 1024).hex().encode() + b'"}' for _ in range(12)]
        messages = zlib_stream(big, level=1)
        assert min(map(len, messages)) >= 16 * 1024  # the size the GIL is released from
        d = M.Decoder("zlib-stream")
        done = threading.Event()
        errors = []

        def feeder():
            try:
                for raw, m in zip(big, messages):
                    if d.feed(m).raw != raw:
                        errors.append("wrong payload")
            except Exception as exc:
                errors.append(repr(exc))
            finally:
                done.set()

        t = threading.Thread(target=feeder)
        t.start()
        refused = 0
        while not done.is_set():
            for args in (("zlib-stream",), ("zstd-stream",), ("bogus",), (None,)):
                try:
                    d.__init__(*args)
                except TypeError:
                    refused += 1
        t.join()
        print(errors, refused > 0, d.compress, d.payloads, d.poisoned)
        """,
    )
    assert out.strip() == "[] True zlib-stream 12 False"


def test_reinit_with_bad_arguments_changes_nothing(codec):
    out = isolated(
        codec,
        """
        from tests._helpers import zlib_stream
        d = M.Decoder("zlib-stream", max_payload_size=1000)
        for args, kw in [(("zstd-stream",), {}), (("bogus",), {}), ((None,), {"max_payload_size": 0}), ((), {"max_payload_size": 5})]:
            try:
                d.__init__(*args, **kw)
                print("accepted", args, kw)
            except TypeError as exc:
                assert "once" in str(exc), exc
        print(d.compress, d.max_payload_size, d.feed(zlib_stream([b'{"op":11}'])[0]).op)
        # a decoder whose first __init__ failed is not set up: a second try may succeed
        u = M.Decoder.__new__(M.Decoder)
        try:
            u.__init__("gzip")
        except ValueError:
            pass
        u.__init__(None, max_payload_size=10)
        print(u.compress, u.max_payload_size, u.feed(b'{"op":11}').op)
        """,
    )
    assert out.splitlines() == ["zlib-stream 1000 11", "None 10 11"]


def test_uninitialised_decoder_is_harmless(codec):
    out = isolated(
        codec,
        """
        d = M.Decoder.__new__(M.Decoder)
        res = []
        for name in ("feed", "feed_raw"):
            for arg in (b'{"op":1}', "x", b"\\x78\\x9c"):
                try:
                    getattr(d, name)(arg)
                except RuntimeError as exc:
                    res.append("never initialised" in str(exc))
        for call in (d.reset, lambda: d.on(1, print), lambda: d.off(1), lambda: d.on("READY")):
            try:
                call()
            except RuntimeError as exc:
                res.append("never initialised" in str(exc))
        print(res.count(True), len(res))
        print(d.compress, d.max_payload_size == M.DEFAULT_MAX_PAYLOAD_SIZE, d.seq, d.poisoned, d.buffer_size, d.payloads, d.bytes_in, d.bytes_out)
        """,
    )
    assert out.splitlines() == ["10 10", "None True None False 0 0 0 0"]


# -- zstd lengths off the wire --------------------------------------------------------------


SKIPPABLE_CASES = [
    ("502a4d18f8ffffff", "truncated"),  # size 2**32 - 8: -8 in a signed 32-bit size
    ("5f2a4d18ffffffff" + "00" * 16, "truncated"),
    ("502a4d1800000080" + "61" * 8, "truncated"),  # 2**31: negative as int32
    ("502a4d18f8ffff", "truncated"),  # the size field itself cut
    ("502a4d1800000000", None),  # empty skippable frame: no payload
    ("502a4d1803000000616263", None),
    ("502a4d1804000000616263", "truncated"),  # one byte short
]


def test_zstd_skippable_frame_sizes_are_unsigned(codec):
    cases = repr(SKIPPABLE_CASES)
    out = isolated(
        codec,
        f"""
        from tests._helpers import zstd_closed_frames
        for hexmsg, expect in {cases}:
            d = M.Decoder("zstd-stream")
            try:
                r = d.feed(bytes.fromhex(hexmsg))
                got = None if r is None else r.raw
            except M.DecompressError as exc:
                got = "truncated" if "truncated" in str(exc) else str(exc)
            assert got == expect, (hexmsg, got, expect)
            assert d.poisoned == (expect is not None)
            if expect is None:  # the stream goes on after a skipped frame
                assert d.feed(zstd_closed_frames([b'{{"op":11}}'])[0]).op == 11
        # a skippable frame of exactly the bytes that follow, then a real frame
        frame = zstd_closed_frames([b'{{"op":10,"d":1}}'])[0]
        d = M.Decoder("zstd-stream")
        print(d.feed(bytes.fromhex("532a4d1802000000ffff") + frame).op)
        """,
    )
    assert out.strip() == "10"


# -- MemoryError in the middle of a payload ---------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status")
@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_memory_error_mid_inflate_poisons(codec, mode):
    """A real MemoryError: the address space is limited to what the process
    uses plus 128 MiB, and a payload inflates to 768 MiB (max_payload_size
    allows it). The stream is lost, so the decoder must be poisoned."""
    out = isolated(
        codec,
        f"""
        import resource
        from tests._helpers import zlib_stream, zstd_open_frame, zstd_module
        mode = {mode!r}
        chunk = b"A" * (1 << 20)
        head, tail = b'{{"op":0,"d":"', b'"}}'
        if mode == "zlib-stream":
            import zlib
            c = zlib.compressobj(1)
            bomb = c.compress(head) + b"".join(c.compress(chunk) for _ in range(768)) + c.compress(tail) + c.flush(zlib.Z_SYNC_FLUSH)
            after = c.compress(b'{{"op":11}}') + c.flush(zlib.Z_SYNC_FLUSH)
            fresh = zlib_stream([b'{{"op":11}}'])[0]
        else:
            zstd = zstd_module()
            c = zstd.ZstdCompressor()
            bomb = c.compress(head) + b"".join(c.compress(chunk) for _ in range(768)) + c.compress(tail, c.FLUSH_BLOCK)
            after = c.compress(b'{{"op":11}}', c.FLUSH_BLOCK)
            fresh = zstd_open_frame([b'{{"op":11}}'])[0]
        d = M.Decoder(mode, max_payload_size=1 << 40)
        with open("/proc/self/status") as f:
            vm = [int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize")][0]
        resource.setrlimit(resource.RLIMIT_AS, (vm + (128 << 20), resource.RLIM_INFINITY))
        try:
            d.feed(bomb)
            print("no MemoryError")
        except MemoryError:
            print("MemoryError", d.poisoned)
        try:
            d.feed(after)
            print("fed on")
        except M.DecompressError as exc:
            print("poisoned:", "out of memory" in str(exc))
        d.reset()
        print(d.poisoned, d.feed(fresh).op, d.buffer_size <= 256 * 1024)
        """,
    )
    assert out.splitlines() == ["MemoryError True", "poisoned: True", "False 11 True"]


# -- the issue's "identical behaviour" reproductions, each implementation in its own process --


IDENTICAL_SCRIPT = """
import array
from tests._helpers import zlib_stream, zstd_open_frame

def outcome(fn):
    try:
        r = fn()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)
    return repr(getattr(r, "raw", r))

msg = b'{"t":"A","s":1,"op":0,"d":{"x":"\\u00ff"}}'
streams = {"zlib-stream": zlib_stream([msg])[0], "zstd-stream": zstd_open_frame([msg])[0], None: msg}
for mode, m in streams.items():
    for name, make in [("cast-b", lambda b: memoryview(b).cast("b")), ("cast-c", lambda b: memoryview(b).cast("c")),
                       ("array-b", lambda b: array.array("b", b))]:
        print(mode, name, outcome(lambda: M.Decoder(mode).feed(make(m))))
for limit in (2**62 - 1, 2**62, 2**63 - 1, 2**63):
    d = M.Decoder("zstd-stream", max_payload_size=limit)
    print(limit, d.max_payload_size, outcome(lambda: d.feed(streams["zstd-stream"])), d.poisoned)
    d = M.Decoder("zlib-stream", max_payload_size=limit)
    print(limit, outcome(lambda: d.feed(streams["zlib-stream"])), d.poisoned)
d = M.Decoder(None)
d.feed(msg)
for name in ("payloads", "bytes_in", "bytes_out"):
    print(name, outcome(lambda: setattr(d, name, -5)).split(":")[0], getattr(d, name))
print(outcome(lambda: M.Decoder(None).feed(b'{"op":1,"d":"\\xed\\xa0\\x80"}')))
"""


def test_issue_reproductions_identical_in_separate_processes(both):
    compiled, fallback = both
    outputs = [isolated(impl, IDENTICAL_SCRIPT) for impl in (compiled, fallback)]
    assert outputs[0] == outputs[1]
    lines = outputs[0].splitlines()
    assert all(line.endswith("""b'{"t":"A","s":1,"op":0,"d":{"x":"\\\\u00ff"}}'""") for line in lines[:9]), lines[:9]
    assert "OverflowError" not in outputs[0]
    assert lines[-4:-1] == ["payloads AttributeError 1", "bytes_in AttributeError 41", "bytes_out AttributeError 41"]
    assert "not valid UTF-8 at byte 13" in lines[-1]
