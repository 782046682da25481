"""End to end with the real nextcord (from PyPI) against the gateway simulator:
the scenarios of tests/compat/_fork_e2e.py (READY, every dispatch once, op 7,
zombie, dropped connection, corrupt frame, split zlib suffix, Spacebar, each
with install() and install(compress="zstd-stream")) and the stock controls,
plus nextcord's own: Spacebar's HELLO without ``s`` kills stock nextcord.

nextcord 3 needs Python >= 3.12: .ci/run finds such an interpreter and runs
this module in a venv of its own; elsewhere it skips (or fails when
MIJCODEC_COMPAT_REQUIRE lists nextcord)."""

from __future__ import annotations

from tests.compat._fork_e2e import load_fork

FORK = load_fork("nextcord")

from tests.compat._fork_e2e import *  # noqa: E402,F401,F403  (the shared tests)


from typing import Any  # noqa: E402

from tests.compat._fork_e2e import Fork, _stock_dies  # noqa: E402


async def test_stock_dies_on_spacebar_hello_without_s(fork: Fork, env: Any) -> None:
    """CONTROL (stock nextcord, nothing installed): Spacebar's HELLO is
    ``{"op":10,"d":{...}}``; nextcord indexes ``message["s"]`` and dies with
    KeyError before READY (test_spacebar passes with install())."""
    exc, bot = await _stock_dies(fork, env, None, spacebar=True)
    assert isinstance(exc, KeyError) and exc.args == ("s",), repr(exc)
    assert bot.ready == 0
