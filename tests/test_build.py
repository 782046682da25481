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


def test_both_modules_importable_side_by_side(c_extensions_wanted):
    import mijcodec._codec_py as fallback

    assert fallback.Decoder("zlib-stream").compress == "zlib-stream"
    if c_extensions_wanted:
        import mijcodec._codec as compiled

        assert compiled.__all__ == fallback.__all__
        assert set(mijcodec.__all__) >= set(compiled.__all__)
