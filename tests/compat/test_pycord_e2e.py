"""End to end with the real py-cord (from PyPI) against the gateway simulator:
the scenarios of tests/compat/_fork_e2e.py (READY, every dispatch once, op 7,
zombie, dropped connection, corrupt frame, split zlib suffix, Spacebar, each
with install() and install(compress="zstd-stream")) and the stock controls.

py-cord installs the import name ``discord``, like discord.py, so it lives in
its own environment (.ci/run builds it); where ``discord`` is discord.py this
module skips (or fails when MIJCODEC_COMPAT_REQUIRE lists py-cord)."""

from __future__ import annotations

from tests.compat._helpers import require_library

discord = require_library("py-cord", "discord")

import discord.http  # noqa: E402
import pytest  # noqa: E402

from mijcodec.compat import pycord as compat  # noqa: E402
from tests.compat._fork_e2e import *  # noqa: E402,F401,F403  (the shared tests)
from tests.compat._fork_e2e import Fork  # noqa: E402


@pytest.fixture
def fork() -> Fork:
    return Fork(
        "py-cord",
        discord,
        compat,
        lambda mp, url: mp.setattr(discord.http.Route, "API_BASE_URL", url),
        shutdown_error="Session is closed",
    )
