"""The thread policy has one owner: every entry point that trains, searches or evaluates models
applies it itself, so the Python API runs as the CLI does (issue 25, new user item 1)."""

from __future__ import annotations

import logging

import optuna
import pytest
import torch

from harmonic_nas import pipeline
from harmonic_nas.fusion.runner import run_inner_tier
from harmonic_nas.search.baselines import run_baselines
from harmonic_nas.search.driver import finalize, run_search
from harmonic_nas.search.objective import optuna_log_level
from harmonic_nas.utils.env import LOG_ENV, THREADS_ENV
from harmonic_nas.utils.threads import thread_policy, under_policy

#: every library entry point that trains, searches or evaluates models
ENTRY_POINTS = [
    pipeline.run,
    pipeline.run_fusion,
    run_search,
    finalize,
    run_baselines,
    run_inner_tier,
]


@pytest.mark.parametrize("fn", ENTRY_POINTS, ids=lambda f: f.__qualname__)
def test_entry_points_apply_the_policy(fn: object) -> None:
    assert under_policy(fn)


@pytest.mark.parametrize(("env", "inside"), [(None, 1), ("2", 2)])
def test_policy_applies_inside_and_restores(
    monkeypatch: pytest.MonkeyPatch, env: str | None, inside: int
) -> None:
    if env is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, env)
    seen: list[int] = []

    @thread_policy
    def work(x: int) -> int:
        seen.append(torch.get_num_threads())
        return x + 1

    before = torch.get_num_threads()
    torch.set_num_threads(3)  # a caller's own setting (a notebook's default on a big machine)
    try:
        assert work(1) == 2
        assert seen == [inside]
        assert torch.get_num_threads() == 3  # the caller's count is back
    finally:
        torch.set_num_threads(before)


def test_policy_restores_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)

    @thread_policy
    def boom() -> None:
        raise ValueError("x")

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with pytest.raises(ValueError, match="x"):
            boom()
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("env", "level"), [(None, logging.WARNING), ("INFO", logging.INFO)])
def test_optuna_log_level_for_api_callers(
    monkeypatch: pytest.MonkeyPatch, env: str | None, level: int
) -> None:
    """Optuna's per-trial INFO lines are off during a search (unless $HARMONIC_NAS_LOG asks for
    them); the caller's verbosity is restored after."""
    if env is None:
        monkeypatch.delenv(LOG_ENV, raising=False)
    else:
        monkeypatch.setenv(LOG_ENV, env)
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        with optuna_log_level():
            assert optuna.logging.get_verbosity() == level
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)
