"""How much faster zlib-ng inflates gateway traffic than the system zlib.

    python benches/inflaters.py [--rounds N] [--json out.json]

Both inflaters do the same work: a raw inflate (``decompressobj(-15)``, no
adler32) of one connection's zlib-stream, the 2-byte zlib header stripped
once, one ``decompress`` call per websocket message, through each library's
CPython binding (``zlib`` for the system zlib, ``zlib_ng.zlib_ng`` from the
``zlib-ng`` PyPI package). Rounds are interleaved (system, zlib-ng, system,
... in an order that alternates every round), so a change of machine load
hits both; each round's ratio zlib-ng / system is taken from the two
adjacent timings, and the figures are the median (and interquartile range)
of those per-round ratios and of the per-payload times.

Streams:

* every traffic mix of benches/traffic.py (realistic, presence-heavy, huge,
  ack-storm);
* ``realdata-discordbm``: the three consecutive zlib-stream messages of one
  real connection in shared/realdata/zlib-stream (HELLO, READY,
  GUILD_CREATE), replayed as a stream of many connections;
* ``realdata-payloads``: every captured payload of shared/realdata/payloads
  (Accord.jl, freya022) compacted and recompressed as one zlib-stream (system
  zlib, default level, ``Z_SYNC_FLUSH`` per payload), repeated 20 times in
  one stream.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import time
import zlib
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import traffic  # noqa: E402


def realdata_dir() -> str | None:
    """shared/realdata beside the checkout (or MIJCODEC_REALDATA), if present."""
    for d in (os.environ.get("MIJCODEC_REALDATA"), os.path.join(ROOT, "..", "shared", "realdata"),
              os.path.join(ROOT, "tests", "data", "realdata")):
        if d and os.path.isdir(d):
            return d
    return None


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def streams() -> dict[str, list[list[bytes]]]:
    """name -> list of connections, each a list of websocket messages."""
    out: dict[str, list[list[bytes]]] = {}
    for mix in ("realistic", "presence-heavy", "huge", "ack-storm"):
        out[mix] = [traffic.zlib_stream(mix)]
    rd = realdata_dir()
    if rd:
        frames = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(rd, "zlib-stream", "discordbm-frame*.bin")))]
        if frames:
            out["realdata-discordbm"] = [frames] * 400
        payloads: list[bytes] = []
        for p in sorted(glob.glob(os.path.join(rd, "payloads", "*.json"))):
            data = json.load(open(p, encoding="utf-8"))
            for item in data if isinstance(data, list) else [data]:
                payloads.append(_compact(item))
        if payloads:
            c = zlib.compressobj()
            msgs = [c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH) for p in payloads * 20]
            out["realdata-payloads"] = [msgs]
    return out


def inflaters() -> dict[str, Any]:
    found = {"system zlib " + zlib.ZLIB_RUNTIME_VERSION: zlib}
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        print("zlib-ng is not installed (pip install zlib-ng): only the system zlib is measured", file=sys.stderr)
    else:
        found["zlib-ng " + zlib_ng.ZLIBNG_RUNTIME_VERSION] = zlib_ng
    return found


def _run(mod: Any, conns: list[list[bytes]]) -> float:
    decompressobj = mod.decompressobj
    t0 = time.perf_counter()
    for msgs in conns:
        d = decompressobj(-15)
        decompress = d.decompress
        decompress(msgs[0][2:])
        for m in msgs[1:]:
            decompress(m)
    return time.perf_counter() - t0


def _check(mod: Any, conns: list[list[bytes]]) -> int:
    """Both inflaters give the same bytes (and the stream is what it claims)."""
    out = 0
    d = mod.decompressobj(-15)
    ref = zlib.decompressobj()
    msgs = conns[0]
    for i, m in enumerate(msgs):
        a = d.decompress(m[2:] if i == 0 else m)
        assert a == ref.decompress(m)
        out += len(a)
    return out


def _q(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def measure(rounds: int, budget: float) -> dict:
    mods = inflaters()
    names = list(mods)
    result: dict = {"inflaters": names, "load_start": os.getloadavg(), "streams": {}}
    for sname, conns in streams().items():
        payload_count = sum(len(c) for c in conns)
        for mod in mods.values():
            _check(mod, conns)
        # size the rounds: at least `rounds`, more for fast streams, within the budget
        one = _run(zlib, conns)
        n = max(rounds, min(200, int(budget / max(one * len(names), 1e-6))))
        times: dict[str, list[float]] = {k: [] for k in names}
        for r in range(n):
            order = names if r % 2 == 0 else names[::-1]
            for k in order:
                times[k].append(_run(mods[k], conns))
        row: dict = {"payloads": payload_count, "messages_per_round": payload_count, "rounds": n}
        for k in names:
            q1, med, q3 = _q(times[k])
            row[k] = {"us_per_payload": [x / payload_count * 1e6 for x in (q1, med, q3)]}
        if len(names) == 2:
            ratios = [b / a for a, b in zip(times[names[0]], times[names[1]])]
            row["ratio"] = list(_q(ratios))
        result["streams"][sname] = row
    result["load_end"] = os.getloadavg()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15, help="at least this many interleaved rounds per stream")
    p.add_argument("--budget", type=float, default=3.0, help="seconds per stream (more rounds for fast streams)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    res = measure(args.rounds, args.budget)
    names = res["inflaters"]
    print(f"load average at start {res['load_start']}, at end {res['load_end']}")
    head = "| stream | payloads | rounds | " + " | ".join(f"{k} us/payload (IQR)" for k in names)
    if len(names) == 2:
        head += " | zlib-ng / system, per-round median (IQR) | faster by"
    print(head + " |")
    print("|---|---:|---:|" + "---:|" * (len(names) + (2 if len(names) == 2 else 0)))
    for sname, row in res["streams"].items():
        cells = []
        for k in names:
            q1, med, q3 = row[k]["us_per_payload"]
            cells.append(f"{med:.2f} ({q1:.2f}-{q3:.2f})")
        if "ratio" in row:
            q1, med, q3 = row["ratio"]
            cells.append(f"{med:.3f}x ({q1:.3f}-{q3:.3f})")
            cells.append(f"{(1 - med) * 100:.0f} %")
        print(f"| {sname} | {row['payloads']} | {row['rounds']} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
