"""The GIL is released while inflating big messages, so other threads (say,
discord.py's heartbeat thread) keep running."""

from __future__ import annotations

import threading
import time

import pytest

from tests._helpers import zlib_stream, zstd_open_frame


def _spin_while(fn):
    """Run fn() while another thread spins, noting the time of each turn; return
    fn's result and how many turns fell in the middle half of fn's run. Only
    turns there count: a thread can also run just before fn enters C code or
    just after it returns (the interpreter hands the GIL over at those
    points), but in the middle of a long C call only if the call released
    the GIL."""
    turns: list[float] = []
    stop = threading.Event()
    started = threading.Event()
    clock = time.perf_counter

    def spin():
        note = turns.append
        started.set()
        while not stop.is_set():
            note(clock())

    thread = threading.Thread(target=spin)
    thread.start()
    started.wait()
    try:
        t0 = clock()
        result = fn()
        t1 = clock()
    finally:
        stop.set()
        thread.join()
    assert t1 - t0 > 0.02, "the call was too short to tell"
    lo, hi = t0 + (t1 - t0) / 4, t1 - (t1 - t0) / 4
    return result, sum(1 for t in turns if lo <= t <= hi)


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_other_threads_run_while_a_big_message_inflates(codec, mode):
    # ~64 MB of output from a few KB (zstd) or ~120 KB (zlib) of input keeps the
    # decompressor busy for tens of milliseconds at least: the compiled codec
    # releases the GIL from 16 KiB of input, or, below that, as soon as the
    # payload outgrows its buffer (the fallback's libraries do so themselves)
    big = b'{"op":0,"d":"' + bytes(range(48, 58)) * (6 * 1024 * 1024) + b'"}'
    message = (zlib_stream if mode == "zlib-stream" else zstd_open_frame)([big])[0]
    dec = codec.Decoder(mode, max_payload_size=len(big))
    # feed_raw: the decompression alone (feed() would go on to read this
    # payload's envelope in Python code, where threads take turns anyway)
    raw, during = _spin_while(lambda: dec.feed_raw(message))
    assert raw == big
    assert during > 100, "another thread could not run while the message was inflating"
