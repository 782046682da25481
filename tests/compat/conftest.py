"""Fixtures for the drop-in tests (mijcodec.compat) with the real discord.py and hikari."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mijcodec.compat import discord_py as compat_dpy
from mijcodec.compat import disnake as compat_disnake
from mijcodec.compat import hikari as compat_hikari
from mijcodec.compat import nextcord as compat_nextcord
from mijcodec.compat import pycord as compat_pycord

#: every drop-in; none imports its library until install()
MODULES = (compat_dpy, compat_hikari, compat_pycord, compat_nextcord, compat_disnake)
FAMILIES = (compat_dpy._family, compat_pycord._dropin, compat_nextcord._dropin, compat_disnake._dropin)


@pytest.fixture(autouse=True)
def _uninstall_after() -> Any:
    """Every test starts and ends with every library unpatched."""
    for mod in MODULES:
        mod.uninstall()
    for family in FAMILIES:
        family.last_error.clear()  # the repeated-error delay is per client; tests are independent
    yield
    for mod in MODULES:
        mod.uninstall()


@pytest.fixture
def impl(codec: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a test on each mijcodec implementation: the compat modules build
    their Decoders from the implementation under test."""
    for mod in MODULES:
        monkeypatch.setattr(mod, "Decoder", codec.Decoder)
    return codec


@pytest.fixture
def quiet_access_log() -> Any:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    yield


@pytest.fixture
def fork(request: pytest.FixtureRequest) -> Any:
    """The fork a test module declares as ``FORK = load_fork(...)`` (tests/compat/_fork_e2e.py)."""
    return request.module.FORK
