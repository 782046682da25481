"""End to end with the real py-cord (from PyPI) against the gateway simulator:
the scenarios of tests/compat/_fork_e2e.py (READY, every dispatch once, op 7,
zombie, dropped connection, corrupt frame, split zlib suffix, Spacebar, each
with install() and install(compress="zstd-stream")) and the stock controls.

py-cord installs the import name ``discord``, like discord.py, so it lives in
its own environment (.ci/run builds it); where ``discord`` is discord.py this
module skips (or fails when MIJCODEC_COMPAT_REQUIRE lists py-cord)."""

from __future__ import annotations

from tests.compat._fork_e2e import load_fork

FORK = load_fork("py-cord")

from tests.compat._fork_e2e import *  # noqa: E402,F401,F403  (the shared tests)
