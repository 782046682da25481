"""mijcodec.compat.nextcord against the real nextcord (from PyPI), unit level: the
shared fork unit tests of tests/compat/_fork_unit.py (the per-connection path on
both mijcodec implementations, the _from_json fast path, the codec-error path,
zstd-stream URLs, install/uninstall, the version gate, every private name
renamed).

nextcord 3 needs Python >= 3.12: .ci/run finds such an interpreter and runs
this module in a venv of its own; elsewhere it skips (or fails when
MIJCODEC_COMPAT_REQUIRE lists nextcord)."""

from __future__ import annotations

from tests.compat._fork_e2e import load_fork

FORK = load_fork("nextcord")

from tests.compat._fork_unit import *  # noqa: E402,F401,F403  (the shared tests)
