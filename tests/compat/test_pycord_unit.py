"""mijcodec.compat.pycord against the real py-cord (from PyPI), unit level: the
shared fork unit tests of tests/compat/_fork_unit.py (the per-connection path on
both mijcodec implementations, the _from_json fast path, the codec-error path,
zstd-stream URLs, install/uninstall, the version gate, every private name
renamed).

py-cord installs the import name ``discord``, like discord.py, so it lives in
its own environment (.ci/run builds it); where ``discord`` is discord.py this
module skips (or fails when MIJCODEC_COMPAT_REQUIRE lists py-cord)."""

from __future__ import annotations

from tests.compat._fork_e2e import load_fork

FORK = load_fork("py-cord")

from tests.compat._fork_unit import *  # noqa: E402,F401,F403  (the shared tests)
