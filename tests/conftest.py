"""Shared fixtures.

``codec`` is THE fixture every codec test builds on: one session-scoped
parameter per implementation. The compiled parameter imports
``mijcodec._codec`` directly, so a missing build is an import error that fails
the run instead of quietly testing the pure-Python code twice. Opting out of
the compiled implementation is explicit: ``--no-c-extensions``.
"""

from __future__ import annotations

import importlib
import types

import pytest

def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption(
            "--no-c-extensions",
            action="store_true",
            default=False,
            help="do not test the compiled mijcodec._codec (only the pure-Python fallback)",
        )
    except ValueError:  # benches/conftest.py, loaded in the same run, defines it too
        pass


def _c_wanted(config: pytest.Config) -> bool:
    return not config.getoption("--no-c-extensions")


@pytest.fixture(
    scope="session",
    params=[pytest.param("cython", marks=pytest.mark.c_extension), "python"],
)
def codec(request: pytest.FixtureRequest) -> types.ModuleType:
    """The implementation under test: ``mijcodec._codec`` or ``mijcodec._codec_py``."""
    if request.param == "cython":
        if not _c_wanted(request.config):
            pytest.skip("--no-c-extensions given")
        return importlib.import_module("mijcodec._codec")  # a missing build fails here
    return importlib.import_module("mijcodec._codec_py")


@pytest.fixture(scope="session")
def both(request: pytest.FixtureRequest) -> tuple[types.ModuleType, types.ModuleType]:
    """(compiled, pure) for differential tests comparing the two directly."""
    if not _c_wanted(request.config):
        pytest.skip("--no-c-extensions given: nothing to compare the fallback with")
    return importlib.import_module("mijcodec._codec"), importlib.import_module("mijcodec._codec_py")


@pytest.fixture(scope="session")
def c_extensions_wanted(request: pytest.FixtureRequest) -> bool:
    return _c_wanted(request.config)
