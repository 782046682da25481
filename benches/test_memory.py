"""Memory per connection: peak and retained bytes of one decoder/context, for
each implementation and baseline, after the realistic stream and after a
multi-MB GUILD_CREATE (followed by 200 small events, so a decoder that gives
its big buffer back has had the chance to).

Each measurement runs benches/memprobe.py in a fresh interpreter (see its
docstring for what RSS and tracemalloc can and cannot see). The numbers go
into the benchmark's ``extra_info`` (so into the JSON that report.py reads):
``py_peak``, ``py_retained`` (tracemalloc, Python-level), ``rss_peak``,
``rss_retained`` (whole process, C allocations included) and, for the
compiled decoder, ``buffer_size``. The timed part is just the probe's wall
time (one round) and means nothing.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from typing import Any

import pytest

import baselines as B
import traffic

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "memprobe.py")

MEM_SCENARIOS = {"realistic": "realistic", "huge": "huge-tail"}
MEM_BASELINES = {
    "zlib": ["hikari-zlib", "dpy-zlib-orjson", "floor-zlib-orjson"],
    "zstd": ["hikari-zstd", "dpy-zstd-orjson", "floor-zstd-orjson"],
}
OURS = {"mijcodec._codec": "mijcodec (compiled)", "mijcodec._codec_py": "mijcodec (fallback)"}


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("memcorpus")
    files = {}
    for scenario, mix in MEM_SCENARIOS.items():
        for kind in ("zlib", "zstd"):
            path = root / f"{mix}-{kind}.pickle"
            with open(path, "wb") as f:
                pickle.dump({"messages": traffic.messages(mix, kind), "payloads": len(traffic.payloads(mix)), "last_seq": traffic.expected_last_seq(mix)}, f)
            files[scenario, kind] = str(path)
    return files


def child_env() -> dict:
    """Environment for a child interpreter that imports the same mijcodec as
    this process (an installed one, or the source tree on PYTHONPATH)."""
    import mijcodec

    env = dict(os.environ)
    where = os.path.dirname(os.path.dirname(os.path.abspath(mijcodec.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (where, env.get("PYTHONPATH", "")) if p)
    return env


def _probe(impl: str, kind: str, path: str) -> dict:
    env = child_env()
    proc = subprocess.run([sys.executable, PROBE, impl, kind, path], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"memprobe {impl} {kind} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cases() -> list:
    out = []
    for scenario in MEM_SCENARIOS:
        for kind in ("zlib", "zstd"):
            for module in OURS:
                out.append(pytest.param(scenario, kind, module, id=f"{scenario}-{kind}-{module.rsplit('.', 1)[1]}"))
            for bid in MEM_BASELINES[kind]:
                out.append(pytest.param(scenario, kind, bid, id=f"{scenario}-{kind}-{bid}"))
    return out


def _skip(request: pytest.FixtureRequest, impl: str) -> None:
    if impl == "mijcodec._codec" and request.config.getoption("--no-c-extensions"):
        pytest.skip("--no-c-extensions given")
    bs = getattr(request.config, "_benchmarksession", None)
    if impl not in OURS and bs is not None and bs.disabled:
        pytest.skip("smoke run: baselines' memory is probed only when measuring (--benchmark-only)")


@pytest.mark.parametrize("scenario,kind,impl", _cases())
def test_memory(benchmark: Any, request: pytest.FixtureRequest, corpus_files: dict, scenario: str, kind: str, impl: str) -> None:
    _skip(request, impl)
    benchmark.group = f"memory: {kind} {scenario}"
    if impl in OURS:
        label, family = OURS[impl], "ours"
    else:
        try:
            b = B.baseline(impl)
        except B.BaselineUnavailable as exc:
            pytest.skip(str(exc))
        label, family = b.label, b.family
    mix = MEM_SCENARIOS[scenario]
    st = traffic.stats(mix)
    benchmark.extra_info.update(impl=label, family=family, role="memory", mix=mix, kind=kind, payloads=st["payloads"], payload_bytes=st["bytes"], largest_payload=st["largest"])
    result = benchmark.pedantic(_probe, args=(impl, kind, corpus_files[scenario, kind]), rounds=1, iterations=1)
    benchmark.extra_info.update({k: v for k, v in result.items() if k not in ("impl", "kind")})
    assert result["py_retained"] < 64 * 1024 * 1024
