"""Helpers shared by the tests: recorders of zlib-stream/zstd-stream traffic and the real captures."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import zlib

DATA = pathlib.Path(__file__).parent / "data"
REALDATA = DATA / "realdata"


def zlib_stream(payloads: list[bytes], level: int = 6) -> list[bytes]:
    """One zlib context, Z_SYNC_FLUSH per payload: the messages Discord sends."""
    c = zlib.compressobj(level)
    return [c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH) for p in payloads]


def zstd_module():
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    return zstd


def zstd_open_frame(payloads: list[bytes]) -> list[bytes]:
    """One zstd frame kept open for the connection, flushed per payload (Discord)."""
    zstd = zstd_module()
    c = zstd.ZstdCompressor()
    return [c.compress(p, zstd.ZstdCompressor.FLUSH_BLOCK) for p in payloads]


def zstd_closed_frames(payloads: list[bytes]) -> list[bytes]:
    """One complete zstd frame per payload (Spacebar)."""
    zstd = zstd_module()
    return [zstd.compress(p) for p in payloads]


def real_payloads() -> list[bytes]:
    """Every captured JSON payload of tests/data/realdata/payloads, compact."""
    out = []
    for path in sorted((REALDATA / "payloads").glob("*.json")):
        data = json.loads(path.read_bytes())
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict) and "op" in item:
                out.append(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
    return out


def python_m_mijcodec_line(prefix: str) -> str:
    """The line of ``python -m mijcodec`` that starts with ``prefix``, run in a
    fresh interpreter on the mijcodec this test imports."""
    import mijcodec

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(mijcodec.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    out = subprocess.run([sys.executable, "-m", "mijcodec"], capture_output=True, text=True, env=env, timeout=120).stdout
    return next(x for x in out.splitlines() if x.startswith(prefix))
