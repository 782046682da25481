"""Memory of one connection's decoder, measured in a fresh process.

    python benches/memprobe.py IMPL KIND CORPUS.pickle

IMPL is ``mijcodec._codec``, ``mijcodec._codec_py`` or a baseline id of
baselines.py; KIND is "zlib" or "zstd"; the pickle holds
``{"messages": [...], "payloads": n, "last_seq": s}`` (written by
test_memory.py). Prints one JSON object.

Two passes over the whole stream, each with a fresh decoder/context that stays
alive after the last message (the connection is still open); every packet's
``d`` is read and dropped:

* RSS pass (no tracing): resident memory (``/proc/self/statm``) before the
  context exists and after the stream, with ``gc.collect()`` and glibc
  ``malloc_trim(0)`` before both readings so memory the process merely keeps
  in its allocator is not counted; the peak is ``VmHWM`` after resetting it
  (``echo 5 > /proc/self/clear_refs``) just before the pass. This is the only
  view of C-level allocations: the compiled decoder's output buffer and zlib
  state (``malloc``), zstd's decompression context and window (libzstd's own
  ``malloc``, in every implementation), zstandard's buffers. It is coarse
  (page granularity, and arenas of Python objects freed during the pass may
  stay resident), so read it with that in mind.
* tracemalloc pass: Python-level allocations (objects, ``bytes``, and zlib's
  state, which CPython's zlib module allocates through ``PyMem_RawMalloc``).
  ``retained`` = traced bytes still held after the stream minus before the
  context existed; ``peak`` = traced peak during the pass minus that base.
  tracemalloc does NOT see ``malloc`` made by C code directly: the compiled
  decoder's buffer and libzstd's context are invisible to it. For the
  compiled decoder, its ``buffer_size`` (the capacity of its reusable output
  buffer, which the API exposes) is recorded after the stream.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import pickle
import sys
import tracemalloc
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_PAGE = os.sysconf("SC_PAGE_SIZE")
try:
    _trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _trim = None


def _settle() -> None:
    gc.collect()
    if _trim is not None:
        _trim(0)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _hwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _ours(module_name: str, kind: str) -> tuple[Callable[[], Any], Callable[[Any, list], tuple]]:
    import importlib

    codec = importlib.import_module(module_name)
    compress = {"zlib": "zlib-stream", "zstd": "zstd-stream"}[kind]

    def run(dec: Any, messages: list) -> tuple:
        feed = dec.feed
        n = 0
        for m in messages:
            pkt = feed(m)
            if pkt is None:
                continue
            n += 1
            pkt.op, pkt.t, pkt.s, pkt.d
        pkt = None
        return n, dec.seq

    return (lambda: codec.Decoder(compress)), run


def main(argv: list[str]) -> int:
    impl, kind, path = argv[1], argv[2], argv[3]
    with open(path, "rb") as f:
        corpus = pickle.load(f)
    messages = corpus["messages"]
    if impl.startswith("mijcodec."):
        new, run = _ours(impl, kind)
        data = messages
    else:
        import baselines as B

        b = B.baseline(impl)
        assert b.kind == kind, (impl, kind)
        data = messages
        run = b.run

        def new() -> Any:
            return b.new(data)

    out: dict[str, Any] = {"impl": impl, "kind": kind}

    # warm up imports and one-time caches outside both measurements
    warm = new()
    run(warm, data[:2])
    del warm

    # -- RSS pass -----------------------------------------------------------
    _settle()
    rss0 = _rss()
    hwm_ok = _reset_hwm()
    state = new()
    n, last = run(state, data)
    peak_rss = _hwm() - rss0 if hwm_ok else None
    _settle()
    out["rss_retained"] = _rss() - rss0
    out["rss_peak"] = peak_rss
    out["buffer_size"] = getattr(state, "buffer_size", None)
    assert n == corpus["payloads"], (n, corpus["payloads"])
    if last is not None:
        assert last == corpus["last_seq"], (last, corpus["last_seq"])
    del state
    _settle()

    # -- tracemalloc pass -----------------------------------------------------
    tracemalloc.start()
    _settle()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    state = new()
    run(state, data)
    _, peak = tracemalloc.get_traced_memory()
    _settle()
    current = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    out["py_retained"] = current - base
    out["py_peak"] = peak - base
    del state
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
