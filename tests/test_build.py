"""Which implementation runs, and can the user see it?"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import mijcodec


def _run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MIJCODEC_")}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True).stdout.strip()


def test_the_extension_is_what_mijcodec_uses(c_extensions_wanted):
    """Guard: unless opted out, mijcodec must be running the compiled codec."""
    if not c_extensions_wanted or os.environ.get("MIJCODEC_NO_EXTENSIONS"):
        pytest.skip("pure-Python run requested")
    import mijcodec._codec

    assert mijcodec.IMPLEMENTATION == "cython"
    assert mijcodec.Decoder is mijcodec._codec.Decoder
    assert mijcodec.Packet is mijcodec._codec.Packet
    assert mijcodec.BUILD_FAILURE is None


def test_no_extensions_env_selects_python():
    out = _run("import mijcodec; print(mijcodec.IMPLEMENTATION, mijcodec.Decoder.__module__)", MIJCODEC_NO_EXTENSIONS="1")
    assert out == "python mijcodec._codec_py"


def test_no_extensions_zero_means_off(c_extensions_wanted):
    if not c_extensions_wanted:
        pytest.skip("pure-Python run requested")
    assert _run("import mijcodec; print(mijcodec.IMPLEMENTATION)", MIJCODEC_NO_EXTENSIONS="0") == "cython"


def test_python_m_mijcodec_reports_everything():
    out = subprocess.run([sys.executable, "-m", "mijcodec"], capture_output=True, text=True, check=True).stdout
    assert f"mijcodec {mijcodec.__version__}" in out
    assert f"implementation: {mijcodec.IMPLEMENTATION}" in out
    assert f"zlib: {mijcodec.ZLIB_VERSION}" in out
    assert f"zstd: {mijcodec.ZSTD_VERSION}" in out


@pytest.mark.skipif(sys.platform == "win32", reason="a pipe whose reader is gone raises EPIPE on POSIX only")
def test_python_m_mijcodec_into_a_closed_pipe():
    """``python -m mijcodec | head -n 0``: exit 141 like ``gateway run``, no traceback."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write
    try:
        proc = subprocess.run([sys.executable, "-m", "mijcodec"], stdout=w, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 141
    assert proc.stderr == b""


def test_both_modules_importable_side_by_side(c_extensions_wanted):
    import mijcodec._codec_py as fallback

    assert fallback.Decoder("zlib-stream").compress == "zlib-stream"
    if c_extensions_wanted:
        import mijcodec._codec as compiled

        assert compiled.__all__ == fallback.__all__
        assert set(mijcodec.__all__) >= set(compiled.__all__)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_SOURCE = os.path.exists(os.path.join(ROOT, "setup.py")) and os.path.exists(os.path.join(ROOT, "mijcodec", "_codec.pyx"))


def _setup_build(tree: str, build_lib: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MIJCODEC_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build", "--build-lib", build_lib, "--build-temp", os.path.join(tree, "tmp")],
        cwd=tree, env=environment, capture_output=True, text=True, timeout=600,
    )


def _stale_tree(tmp_path):
    """A copy of the source tree whose build_lib holds an earlier build's
    extension (a stand-in file under the real name) and, for the pure case,
    an earlier failure marker."""
    import importlib.machinery
    import shutil

    tree = tmp_path / "src"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.so", "*.c", "__pycache__", "tests", "benches"))
    build_lib = tmp_path / "build-lib"
    (build_lib / "mijcodec").mkdir(parents=True)
    stale = build_lib / "mijcodec" / ("_codec" + importlib.machinery.EXTENSION_SUFFIXES[0])
    stale.write_bytes(b"an earlier build's extension")
    return tree, build_lib, stale


@pytest.mark.skipif(not HAS_SOURCE, reason="needs the source tree (setup.py), not an installed wheel")
def test_failed_compile_removes_an_earlier_builds_extension(tmp_path):
    tree, build_lib, stale = _stale_tree(tmp_path)
    proc = _setup_build(str(tree), str(build_lib), CC="false", LDSHARED="false")
    assert proc.returncode == 0, proc.stderr
    assert "PURE-PYTHON BUILD" in proc.stderr
    assert not stale.exists(), "the stale extension would ship next to _BUILD_FAILED"
    assert (build_lib / "mijcodec" / "_BUILD_FAILED").exists()
    assert (build_lib / "mijcodec" / "_codec_py.py").exists()


@pytest.mark.skipif(not HAS_SOURCE, reason="needs the source tree (setup.py), not an installed wheel")
def test_no_extensions_build_removes_an_earlier_builds_extension(tmp_path):
    tree, build_lib, stale = _stale_tree(tmp_path)
    (build_lib / "mijcodec" / "_BUILD_FAILED").write_text("an old failure\n")
    proc = _setup_build(str(tree), str(build_lib), MIJCODEC_NO_EXTENSIONS="1")
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()
    assert not (build_lib / "mijcodec" / "_BUILD_FAILED").exists()
    assert (build_lib / "mijcodec" / "_codec_py.py").exists()


@pytest.mark.skipif(not HAS_SOURCE, reason="reads the source tree")
def test_no_free_threading_claim():
    """Nothing here can run a free-threaded interpreter to prove the compiled
    codec's shared fields safe, so the module must not declare itself
    free-threading compatible (Py_mod_gil) nor the wheels build cp313t/cp314t."""
    with open(os.path.join(ROOT, "mijcodec", "_codec.pyx"), encoding="utf-8") as f:
        pyx = f.read()
    assert "freethreading_compatible" not in pyx
    wheels = os.path.join(ROOT, ".github", "workflows", "wheels.yml")
    if os.path.exists(wheels):
        with open(wheels, encoding="utf-8") as f:
            text = f.read()
        assert "cpython-freethreading" not in text  # the cp313t opt-in
        assert 'CIBW_SKIP: "cp3??t-*"' in text  # cibuildwheel builds cp314t unless told not to
        for tag in ('"cp313t"', '"cp314t"'):  # the expected-wheel list
            assert tag not in text, tag


@pytest.mark.skipif(not HAS_SOURCE, reason="needs the source tree (setup.py), not an installed wheel")
def test_failed_in_place_build_removes_the_old_extension_and_names_the_cause(tmp_path):
    """`pip install -e .` / build_ext --inplace without a compiler: the
    extension an earlier in-place build left in mijcodec/ would be imported
    despite the _BUILD_FAILED marker, and the marker named the follow-up
    copy error instead of the compile failure."""
    tree, _, _ = _stale_tree(tmp_path)
    import importlib.machinery

    stale = tree / "mijcodec" / ("_codec" + importlib.machinery.EXTENSION_SUFFIXES[0])
    stale.write_bytes(b"an earlier in-place build")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MIJCODEC_")}
    environment.update(CC="false", LDSHARED="false")
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("PURE-PYTHON BUILD") == 1
    assert not stale.exists()
    reason = (tree / "mijcodec" / "_BUILD_FAILED").read_text()
    assert "can't copy" not in reason and reason.strip(), reason
