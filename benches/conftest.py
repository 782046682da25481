"""Fixtures of the benchmark suite.

``implementation(config, "compiled" | "fallback")`` gives the decode
benchmarks the module under test with the tests' rules (tests/conftest.py's
``codec`` fixture and ``--no-c-extensions`` option, shared from there): the
compiled one imports ``mijcodec._codec`` directly so a missing build fails
loudly; ``--no-c-extensions`` skips it explicitly. The decode benchmarks take
the implementation as a plain parameter rather than through the
session-scoped ``codec`` fixture because pytest regroups the items by a
session-scoped fixture's parameter: all compiled cases first, then all
fallback ones, minutes away from the references of their groups.

Run modes:

* ``pytest benches --benchmark-only`` (optionally ``--benchmark-json=...``)
  measures: every case runs its fixed number of rounds (see ``ROUNDS`` in
  test_decode.py), plus the memory probes.
* plain ``pytest benches`` is a smoke run: benchmarking is switched off (each
  case decodes its corpus once and checks the result), so it takes about as
  long as generating the traffic. ``--benchmark-enable``, ``--benchmark-json``
  or ``--benchmark-save``/``--benchmark-autosave`` switch measuring back on.
"""

from __future__ import annotations

import gc
import os
import sys
import time
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # benches/ modules import each other by name
    sys.path.insert(0, HERE)

import traffic  # noqa: E402

# THE implementation fixture and the --no-c-extensions option, shared with the
# tests (run from the repository root, which pytest puts on sys.path).
from tests.conftest import _c_wanted, codec  # noqa: E402,F401
from tests.conftest import pytest_addoption as _tests_addoption  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    _tests_addoption(parser)
    try:
        parser.addoption(
            "--case-timer",
            default="time.thread_time",
            help="clock of the interleaved decode and drop-in cases (default time.thread_time: this "
            "thread's CPU time, all the decoding work included, steady on a shared machine; "
            "time.perf_counter for wall time). pytest-benchmark's --benchmark-timer still times "
            "the other benchmarks (the bridge's events/s are wall time).",
        )
    except ValueError:  # defined already in this run
        pass

_IMPLEMENTATIONS = {"compiled": "mijcodec._codec", "fallback": "mijcodec._codec_py"}


def implementation(config: pytest.Config, which: str) -> types.ModuleType:
    """``mijcodec._codec`` ("compiled") or ``mijcodec._codec_py`` ("fallback")."""
    import importlib

    if which == "compiled" and not _c_wanted(config):
        pytest.skip("--no-c-extensions given")
    return importlib.import_module(_IMPLEMENTATIONS[which])  # a missing build fails here

_GENERATION: dict[str, float] = {}
_LOAD: dict[str, str] = {}


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def pytest_sessionstart(session: pytest.Session) -> None:
    _LOAD["start"] = _loadavg()


def _measuring(config: pytest.Config) -> bool:
    opt = config.getoption
    return bool(
        opt("benchmark_only", False)
        or opt("benchmark_enable", False)
        or opt("benchmark_json", None)
        or opt("benchmark_save", None)
        or opt("benchmark_autosave", False)
    )


@pytest.hookimpl(trylast=True)  # after pytest-benchmark made its session
def pytest_configure(config: pytest.Config) -> None:
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None and not _measuring(config):
        bs.disabled = True  # smoke mode: each benchmark body runs once
    config.addinivalue_line("markers", "c_extension: runs on the compiled mijcodec._codec")
    # discord.py imports audioop at import time (deprecated since 3.11): not ours to fix
    config.addinivalue_line("filterwarnings", "ignore:'audioop' is deprecated:DeprecationWarning")


@pytest.fixture(scope="session", autouse=True)
def corpora() -> types.ModuleType:
    """Generates (once per session) every traffic mix in every recording, so
    no benchmark ever times generation; returns the ``traffic`` module."""
    t0 = time.perf_counter()
    for mix in traffic.MIXES:
        traffic.payloads(mix)
        for kind in ("zlib", "zstd", "zstd-frames"):
            traffic.messages(mix, kind)
    _GENERATION["seconds"] = time.perf_counter() - t0
    # The harness's own objects (the corpora, discord.py, hikari, aiohttp,
    # pytest) go to the collector's permanent generation: the gc.collect()
    # before every round then takes about a millisecond instead of ~100 ms
    # (which made the suite's wall time mostly collections), and a full
    # collection that the decoding itself triggers while timed traverses what
    # the decoding made, not 80,000 objects of the test harness, whatever
    # case happens to trigger it.
    for name in ("discord.utils", "discord.gateway", "hikari.impl.shard", "aiohttp"):
        try:
            __import__(name)
        except ImportError:
            pass
    gc.collect()
    gc.freeze()
    return traffic


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if "seconds" in _GENERATION:
        terminalreporter.write_line(f"mijcodec benches: traffic generated in {_GENERATION['seconds']:.1f}s")
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None and bs.disabled and not _measuring(config):
        terminalreporter.write_line(
            "mijcodec benches: smoke run (benchmarks ran once, unmeasured); "
            "measure with: pytest benches --benchmark-only --benchmark-json=bench.json"
        )


def pytest_benchmark_update_machine_info(config, machine_info) -> None:  # noqa: ANN001
    """Record what ran: ``python -m mijcodec`` and the baselines' versions."""
    import subprocess
    from importlib import metadata

    info: dict = {}
    try:
        import mijcodec

        where = os.path.dirname(os.path.dirname(os.path.abspath(mijcodec.__file__)))
    except ImportError:
        where = ""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (where, env.get("PYTHONPATH", "")) if p)
    try:
        out = subprocess.run([sys.executable, "-m", "mijcodec"], capture_output=True, text=True, env=env, timeout=60)
        info["python -m mijcodec"] = (out.stdout or out.stderr).strip()
    except Exception as exc:  # noqa: BLE001 - informational only
        info["python -m mijcodec"] = f"failed: {exc}"
    versions = {}
    for dist in ("discord.py", "hikari", "orjson", "zstandard", "backports.zstd", "aiohttp", "pytest-benchmark"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    info["versions"] = versions
    # 1/5/15-minute load averages: at the start (other work on the machine)
    # and at the end (includes this run's own load of ~1)
    info["load_start"] = _LOAD.get("start", "n/a")
    info["load_end"] = _loadavg()
    machine_info["mijcodec"] = info
