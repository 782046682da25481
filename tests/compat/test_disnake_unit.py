"""mijcodec.compat.disnake against the real disnake (from PyPI), unit level: the
shared fork unit tests of tests/compat/_fork_unit.py (the per-connection path on
both mijcodec implementations, the _from_json fast path, the codec-error path,
zstd-stream URLs, install/uninstall, the version gate, every private name
renamed).
"""

from __future__ import annotations

from tests.compat._fork_e2e import load_fork

FORK = load_fork("disnake")

from tests.compat._fork_unit import *  # noqa: E402,F401,F403  (the shared tests)
