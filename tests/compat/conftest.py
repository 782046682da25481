"""Fixtures for the drop-in tests (mijcodec.compat) with the real discord.py and hikari."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mijcodec.compat import discord_py as compat_dpy
from mijcodec.compat import hikari as compat_hikari


@pytest.fixture(autouse=True)
def _uninstall_after() -> Any:
    """Every test starts and ends with both libraries unpatched."""
    compat_dpy.uninstall()
    compat_hikari.uninstall()
    compat_dpy._last_error.clear()  # the repeated-error delay is per client; tests are independent
    yield
    compat_dpy.uninstall()
    compat_hikari.uninstall()


@pytest.fixture
def impl(codec: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a unit test on each mijcodec implementation: the compat modules build
    their Decoders from the implementation under test."""
    monkeypatch.setattr(compat_dpy, "Decoder", codec.Decoder)
    monkeypatch.setattr(compat_hikari, "Decoder", codec.Decoder)
    return codec


@pytest.fixture
def quiet_access_log() -> Any:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    yield
