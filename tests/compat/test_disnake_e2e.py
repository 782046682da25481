"""End to end with the real disnake (from PyPI) against the gateway simulator:
the scenarios of tests/compat/_fork_e2e.py (READY, every dispatch once, op 7,
zombie, dropped connection, corrupt frame, split zlib suffix, Spacebar, each
with install() and install(compress="zstd-stream")) and the stock controls."""

from __future__ import annotations

from tests.compat._helpers import require_library

disnake = require_library("disnake", "disnake")

import disnake.http  # noqa: E402
import pytest  # noqa: E402

from mijcodec.compat import disnake as compat  # noqa: E402
from tests.compat._fork_e2e import *  # noqa: E402,F401,F403  (the shared tests)
from tests.compat._fork_e2e import Fork  # noqa: E402


@pytest.fixture
def fork() -> Fork:
    return Fork("disnake", disnake, compat, lambda mp, url: mp.setattr(disnake.http.Route, "BASE", url))
