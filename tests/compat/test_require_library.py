"""The guard every compat test module starts with: a library absent from this
environment skips the module, unless .ci/run (MIJCODEC_COMPAT_REQUIRE) or CI=true
requires it; then the module fails. Present, it is imported and returned."""

from __future__ import annotations

import pytest

from tests.compat._helpers import REQUIRE_ENV, require_library


def test_present_library_is_returned() -> None:
    import pytest as mod

    # any installed distribution owning its import name will do: pytest itself
    assert require_library("pytest", "pytest") is mod


@pytest.mark.parametrize("ci", ["", "true"])
def test_absent_library_skips_unless_required(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="not installed in this environment"):
        require_library("no-such-library", "no_such_library_mijcodec")


def test_absent_library_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "hikari, no-such-library")
    with pytest.raises(pytest.fail.Exception, match=r"no-such-library is required here \(MIJCODEC_COMPAT_REQUIRE\)"):
        require_library("no-such-library", "no_such_library_mijcodec")


def test_ci_requires_the_test_extra_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"disnake is required here \(CI=true\)"):
        require_library("disnake", "no_such_library_mijcodec")


def test_another_distributions_import_name_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """py-cord and discord.py both install ``discord``: the owner decides."""
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="another distribution's"):
        require_library("not-pytest", "pytest")
