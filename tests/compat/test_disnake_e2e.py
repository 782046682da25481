"""End to end with the real disnake (from PyPI) against the gateway simulator:
the scenarios of tests/compat/_fork_e2e.py (READY, every dispatch once, op 7,
zombie, dropped connection, corrupt frame, split zlib suffix, Spacebar, each
with install() and install(compress="zstd-stream")) and the stock controls."""

from __future__ import annotations

from tests.compat._fork_e2e import load_fork

FORK = load_fork("disnake")

from tests.compat._fork_e2e import *  # noqa: E402,F401,F403  (the shared tests)
