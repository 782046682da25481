"""Memory: buffers come back after huge payloads, and small payloads leave no growth."""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest

from tests._helpers import zlib_stream, zstd_open_frame

ACK = b'{"t":null,"s":null,"op":11,"d":null}'


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
def test_a_million_small_payloads_leave_no_growth(codec, mode):
    messages = zlib_stream([ACK] * 1000) if mode == "zlib-stream" else zstd_open_frame([ACK] * 1000)
    dec = codec.Decoder(mode)
    feed = dec.feed
    for m in messages:  # warm up: the first buffer allocation, caches
        feed(m)
    tail = messages[1:]  # identical sync-flushed blocks that reuse the window
    gc.collect()
    tracemalloc.start()
    before_traced = tracemalloc.get_traced_memory()[0]
    before_rss = _rss() if sys.platform.startswith("linux") else 0
    before_buffer = dec.buffer_size
    for _ in range(1_000_000 // len(tail)):
        for m in tail:
            feed(m)
    gc.collect()
    grown_traced = tracemalloc.get_traced_memory()[0] - before_traced
    tracemalloc.stop()
    assert dec.payloads >= 1_000_000
    assert grown_traced < 64 * 1024
    assert dec.buffer_size == before_buffer
    if sys.platform.startswith("linux"):
        assert _rss() - before_rss < 8 * 1024 * 1024


def test_retained_buffer_after_multi_mb_payload(codec):
    huge = b'{"t":"GUILD_CREATE","s":1,"op":0,"d":{"blob":"' + b"0123456789abcdef" * (300 * 1024) + b'"}}'
    dec = codec.Decoder("zlib-stream")
    messages = zlib_stream([huge, ACK])
    assert dec.feed(messages[0]).raw == huge
    assert dec.buffer_size <= 256 * 1024
    assert dec.feed(messages[1]).raw == ACK
