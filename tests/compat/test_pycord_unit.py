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

import pytest  # noqa: E402

from tests.compat._fork_unit import *  # noqa: E402,F401,F403  (the shared tests)


def test_discord_py_drop_in_refuses_py_cord_by_distribution() -> None:
    """Here ``discord`` is py-cord's (importlib.metadata says so): the discord.py
    drop-in refuses, patching nothing, and names the module to use."""
    import discord.utils

    from mijcodec.compat import UnsupportedLibraryError, discord_py
    from mijcodec.compat._dpy_family import owning_distribution

    assert owning_distribution(FORK.lib, ["discord.py", "py-cord"]) == "py-cord"
    from_json = discord.utils._from_json
    with pytest.raises(UnsupportedLibraryError, match=r"is py-cord, not discord.py: use mijcodec.compat.pycord"):
        discord_py.install()
    assert not discord_py.is_installed() and discord.utils._from_json is from_json
    FORK.compat.install()
    assert FORK.compat.is_installed()
