"""The GIL is released while inflating big messages, so other threads (say,
discord.py's heartbeat thread) keep running."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from tests._helpers import zlib_stream, zstd_open_frame


def _spin_while(fn):
    """Run fn() while another thread spins, noting the time of each turn; return
    fn's result and how many turns fell between fn's start and end.

    The switch interval is made far longer than the test, so the interpreter
    never takes the GIL from this thread to hand it over; the spinner gives it
    back on every turn (``sleep(0)``). So the spinner can only take a turn
    while fn() runs if fn() itself released the GIL (waiting on C code):
    with the GIL held from start to end it takes none."""
    turns: list[float] = []
    stop = threading.Event()
    started = threading.Event()
    clock = time.perf_counter

    def spin():
        note, pause = turns.append, time.sleep
        started.set()
        while not stop.is_set():
            note(clock())
            pause(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    thread = threading.Thread(target=spin)
    try:
        thread.start()
        started.wait()
        t0 = clock()
        result = fn()
        t1 = clock()
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    return result, sum(1 for t in turns if t0 <= t <= t1)


def test_the_probe_sees_a_held_gil():
    """The control: C code that holds the GIL (sum over a range, ~0.1 s) lets
    the spinner take no turn; one that releases it (a blocking sleep) lets it."""
    total, during = _spin_while(lambda: sum(range(3_000_000)))
    assert total == 3_000_000 * 2_999_999 // 2 and during == 0
    _, during = _spin_while(lambda: time.sleep(0.05))
    assert during > 100


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_other_threads_run_while_a_big_message_inflates(codec, mode):
    # ~64 MB of output from a few KB (zstd) or ~120 KB (zlib) of input keeps the
    # decompressor busy for tens of milliseconds at least: the compiled codec
    # releases the GIL from 16 KiB of input, or, below that, as soon as the
    # payload outgrows its buffer (the fallback's libraries do so themselves)
    big = b'{"op":0,"d":"' + bytes(range(48, 58)) * (6 * 1024 * 1024) + b'"}'
    message = (zlib_stream if mode == "zlib-stream" else zstd_open_frame)([big])[0]
    dec = codec.Decoder(mode, max_payload_size=len(big))
    # feed_raw: the decompression and the payload's bytes, no envelope read
    raw, during = _spin_while(lambda: dec.feed_raw(message))
    assert raw == big
    assert during > 100, "another thread could not run while the message was inflating"
