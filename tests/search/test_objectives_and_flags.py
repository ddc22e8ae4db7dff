"""Modelled energy is no objective; unimodal candidates are infeasible (or flagged)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.search import run_search
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.problem import Evaluation
from harmonic_nas.testing.synthetic_problem import SyntheticProblem
from harmonic_nas.utils.io import read_json
from harmonic_nas.utils.progress import ProgressFn, no_progress


@dataclasses.dataclass(frozen=True)
class _Modelled(SyntheticProblem):
    """The synthetic problem on a device without an energy sensor (energy = P x latency)."""

    @property
    def energy_modelled(self) -> bool:
        return True

    @property
    def energy_source(self) -> str:
        return "model:constant power 15 W x latency"

    def evaluate(
        self, genome: MultimodalGenome, *, seed: int, progress: ProgressFn = no_progress
    ) -> Evaluation:
        ev = super().evaluate(genome, seed=seed, progress=progress)
        return dataclasses.replace(ev, energy_mj=15.0 * ev.latency_ms)


@dataclasses.dataclass(frozen=True)
class _SometimesUnimodal(SyntheticProblem):
    """One-cell candidates read image features only (and are the most accurate per latency)."""

    def evaluate(
        self, genome: MultimodalGenome, *, seed: int, progress: ProgressFn = no_progress
    ) -> Evaluation:
        ev = super().evaluate(genome, seed=seed, progress=progress)
        if genome.cells == 1:
            return dataclasses.replace(
                ev, modalities_used=["image"], val_metric=min(1.0, ev.val_metric + 0.2)
            )
        return dataclasses.replace(ev, modalities_used=["image", "audio"])


def _factory(cls: type[SyntheticProblem]) -> Callable[[ExperimentConfig], Any]:
    def build(cfg: ExperimentConfig) -> SyntheticProblem:
        return cls(cfg)

    return build


def test_modelled_energy_is_no_objective(
    make_config: Callable[..., tuple[Path, ExperimentConfig]],
) -> None:
    _, cfg = make_config("modelled")
    summary = run_search(cfg, problem=_factory(_Modelled))
    study = optuna.load_study(
        study_name=summary.study_name, storage=f"sqlite:///{cfg.run_path / 'study.db'}"
    )
    assert len(study.directions) == 2  # (val metric, latency)
    assert study.metric_names == ["val_metric", "latency_ms"]
    pareto = read_json(cfg.run_path / "pareto.json", schema_version=1)
    assert pareto["objectives"] == ["val_metric", "latency_ms"]
    assert pareto["energy"] == {
        "source": "model:constant power 15 W x latency",
        "modelled": True,
        "objective": False,
    }
    cands = read_json(cfg.run_path / "candidates.json", schema_version=1)
    assert cands["objectives"] == ["val_metric", "latency_ms"]
    # on (accuracy, latency) no member is dominated by another
    members = pareto["members"]
    for a in members:
        for b in members:
            assert not (
                b["val_metric"] >= a["val_metric"]
                and b["latency_ms"] <= a["latency_ms"]
                and (b["val_metric"], b["latency_ms"]) != (a["val_metric"], a["latency_ms"])
            )
    hv = read_json(cfg.run_path / "hypervolume.json", schema_version=1)
    assert 0.0 < hv["generations"][-1]["hypervolume"] <= 1.0


def test_measured_energy_stays_an_objective(
    make_config: Callable[..., tuple[Path, ExperimentConfig]],
) -> None:
    _, cfg = make_config("measured")
    run_search(cfg, problem=_factory(SyntheticProblem))
    pareto = read_json(cfg.run_path / "pareto.json", schema_version=1)
    assert pareto["objectives"] == ["val_metric", "latency_ms", "energy_mj"]
    assert pareto["energy"]["modelled"] is False and pareto["energy"]["objective"] is True


@pytest.mark.parametrize("require", [True, False])
def test_candidates_that_ignore_a_modality(
    make_config: Callable[..., tuple[Path, ExperimentConfig]], require: bool
) -> None:
    _, cfg = make_config(f"uni-{require}", cells=[1, 2], require_all_modalities=require)
    run_search(cfg, problem=_factory(_SometimesUnimodal))
    cands = read_json(cfg.run_path / "candidates.json", schema_version=1)["candidates"]
    uni = [c for c in cands if c["state"] == "COMPLETE" and c["missing_modalities"]]
    assert uni, "the test needs at least one one-cell candidate"
    assert all(c["missing_modalities"] == ["audio"] for c in uni)
    members = read_json(cfg.run_path / "pareto.json", schema_version=1)["members"]
    flagged = [m for m in members if m["missing_modalities"]]
    if require:
        assert all(not c["feasible"] and not c["pareto"] for c in uni)
        assert "ignores modality audio" in uni[0]["fail_reason"]
        assert not flagged
    else:
        assert flagged, "an allowed unimodal member is kept (it is the most accurate), flagged"
        assert all(m["modalities_used"] == ["image"] for m in flagged)
