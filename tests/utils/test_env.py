"""Environment variables are validated with one-line errors (issue 14 item 6)."""

from __future__ import annotations

import logging

import pytest

from harmonic_nas.errors import ConfigError
from harmonic_nas.utils.env import LOG_ENV, THREADS_ENV, log_level_from_env, threads_from_env


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "", " 3 ", "99999"])
def test_threads(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(THREADS_ENV, value)
    if value.strip() in ("", "3"):
        assert threads_from_env() == (3 if value.strip() else 1)
        return
    with pytest.raises(ConfigError, match=THREADS_ENV) as info:
        threads_from_env()
    assert "integer from 1" in str(info.value) and "\n" not in str(info.value)


def test_threads_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert threads_from_env() == 1 and threads_from_env(4) == 4


@pytest.mark.parametrize(
    ("value", "level"), [("info", logging.INFO), ("DEBUG", logging.DEBUG), ("", logging.WARNING)]
)
def test_log_level(monkeypatch: pytest.MonkeyPatch, value: str, level: int) -> None:
    monkeypatch.setenv(LOG_ENV, value)
    assert log_level_from_env() == level


@pytest.mark.parametrize("value", ["verbose", "10", "WARN ING"])
def test_bad_log_level(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(LOG_ENV, value)
    with pytest.raises(ConfigError, match=LOG_ENV) as info:
        log_level_from_env()
    assert "DEBUG, INFO, WARNING" in str(info.value)
