"""The GIL is released while inflating big messages, so other threads (say,
discord.py's heartbeat thread) keep running."""

from __future__ import annotations

import threading

import pytest

from tests._helpers import zlib_stream, zstd_open_frame


def _spin_while(fn):
    """Run fn() while another thread counts; return how far it counted during fn()."""
    count = 0
    stop = threading.Event()
    started = threading.Event()

    def spin():
        nonlocal count
        started.set()
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=spin)
    thread.start()
    started.wait()
    before = count
    try:
        result = fn()
        during = count - before
    finally:
        stop.set()
        thread.join()
    return result, during


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_other_threads_run_while_a_big_message_inflates(codec, mode):
    # ~64 MB of output from ~a few hundred KB of input keeps the decompressor
    # busy long enough that a thread holding no lock counts far.
    big = b'{"op":0,"d":"' + bytes(range(48, 58)) * (6 * 1024 * 1024) + b'"}'
    message = (zlib_stream if mode == "zlib-stream" else zstd_open_frame)([big])[0]
    if mode == "zlib-stream":
        assert len(message) >= 16 * 1024  # the compiled codec releases the GIL from 16 KiB of input
    dec = codec.Decoder(mode, max_payload_size=len(big))
    pkt, during = _spin_while(lambda: dec.feed(message))
    assert pkt.raw == big
    assert during > 1000, "another thread could not run while the message was inflating"
