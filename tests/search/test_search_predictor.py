"""The predictor strategy (``search.strategy: predictor``): NSGA-II's first generation, then
proposals by an accuracy predictor over LUT-priced genomes; budget, no duplicates, determinism,
resume, and a better front than random search on a problem whose accuracy is known."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from harmonic_nas.cli import main
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.search import predictor, run_search
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.pareto import hypervolume
from harmonic_nas.search.predictor import (
    ATTR_PREDICTION,
    fit_ensemble,
    fit_ridge,
    hv_improvement,
    loo_alpha,
)
from harmonic_nas.search.storage import default_storage_url, open_storage
from harmonic_nas.search.strategies import get_strategy, make_sampler
from harmonic_nas.testing.synthetic_problem import SyntheticFactory, SyntheticProblem
from harmonic_nas.utils.progress import ProgressFn, no_progress


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A smaller pool per proposal: the mechanics, faster (the quality test keeps the default)."""
    monkeypatch.setattr(predictor, "POOL_SIZE", 400)


def _study(cfg: ExperimentConfig, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(default_storage_url(cfg)))


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number)


def _hv2(cfg: ExperimentConfig, study: optuna.Study) -> float:
    """Hypervolume of the study's candidates in (val metric, latency), box from accuracy 0.5
    (the synthetic problem's floor) to the problem's reference latency."""
    _, ref = SyntheticFactory()(cfg).reference_costs()
    pts = [(-t.user_attrs["val_metric"], t.user_attrs["latency_ms"]) for t in _complete(study)]
    return hypervolume(pts, (-0.5, ref.latency_ms))


# -- the pieces -----------------------------------------------------------------------------------
def test_hv_improvement_is_the_exact_hypervolume_gain() -> None:
    rng = np.random.default_rng(0)
    floor, lat_ref = 0.5, 2.0
    for _ in range(30):
        front = np.column_stack([rng.uniform(0.4, 1.0, 6), rng.uniform(0.0, 2.2, 6)])
        pts = np.column_stack([rng.uniform(0.4, 1.0, 20), rng.uniform(0.0, 2.2, 20)])
        got = hv_improvement(front, pts[:, 0], pts[:, 1], floor, lat_ref)
        ref = (-floor, lat_ref)
        base = hypervolume([(-a, lat) for a, lat in front], ref)
        want = [
            hypervolume([(-a, lat) for a, lat in front] + [(-p[0], p[1])], ref) - base for p in pts
        ]
        np.testing.assert_allclose(got, want, atol=1e-12)
    # an empty front: the point's own box; a dominated point gains nothing
    assert hv_improvement(np.zeros((0, 2)), 0.9, 1.0, 0.5, 2.0) == pytest.approx(0.4)
    assert hv_improvement(np.array([[0.9, 0.5]]), 0.8, 1.0, 0.5, 2.0) == 0.0
    # broadcasting: members x candidates
    assert hv_improvement(np.array([[0.9, 0.5]]), np.ones((3, 4)), np.ones(4), 0.5, 2.0).shape == (
        3,
        4,
    )


def test_ridge_and_leave_one_out_penalty() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5))
    w = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    y = x @ w + 0.7
    alpha = loo_alpha(x, y)
    assert alpha == 0.1  # noiseless: the least penalty predicts best
    model = fit_ridge(x, y, alpha)
    xt = rng.normal(size=(10, 5))
    np.testing.assert_allclose(model.predict(xt), xt @ w + 0.7, atol=0.05)
    assert loo_alpha(x, rng.normal(size=40)) >= 30.0  # pure noise: shrink to the mean
    # a constant feature drops out instead of dividing by zero
    xc = np.column_stack([x, np.ones(40)])
    assert np.isfinite(fit_ridge(xc, y, 1.0).predict(xc)).all()
    # the ensemble: reproducible for a seed, spread where there is no data
    a = fit_ensemble(x, y, np.random.default_rng(3))
    b = fit_ensemble(x, y, np.random.default_rng(3))
    assert all(np.array_equal(m.coef, n.coef) for m, n in zip(a, b, strict=True))
    far = np.std([m.predict(20 * xt) for m in a], axis=0)
    near = np.std([m.predict(x[:10]) for m in a], axis=0)
    assert far.mean() > near.mean()


def test_the_sampler_needs_the_problem(make_config) -> None:
    _, cfg = make_config()
    strat = get_strategy("predictor", cfg.search)
    with pytest.raises(TypeError, match="needs the search problem"):
        make_sampler(strat, cfg.seed)
    assert make_sampler(strat, cfg.seed, SyntheticFactory()(cfg)) is not None


# -- the strategy on a study --------------------------------------------------------------------
def test_first_generation_is_nsga2s_then_new_predicted_genomes_within_budget(
    make_config, small_pool
) -> None:
    _, cfg = make_config(population=6, generations=3)
    s = run_search(cfg, problem=SyntheticFactory(), strategy="predictor", finalize=False)
    assert s.n_complete == 18 and s.out_dir == cfg.run_path / "search-predictor"
    run_search(cfg, problem=SyntheticFactory(), strategy="nsga2", finalize=False)
    pred = _study(cfg, f"{cfg.name}-predictor")
    nsga = _study(cfg, cfg.name)
    done = _complete(pred)
    # the same first generation (ladder + random genes from NSGA-II's seed stream)
    assert [t.params for t in done[:6]] == [t.params for t in _complete(nsga)[:6]]
    keys = [t.user_attrs["genome_key"] for t in done]
    assert len(done) == 18 and len(set(keys)) == 18
    later = [t for t in pred.get_trials() if t.number > done[5].number]
    assert all(t.state == TrialState.COMPLETE for t in later)  # it never proposed a duplicate
    for t in later:
        info = t.system_attrs[ATTR_PREDICTION]
        assert info["fitted_on"] >= 6 and info["pool"] > 100
        assert 0.0 < info["val_metric"] < 1.5 and info["latency_ms"] > 0
    assert all(ATTR_PREDICTION not in t.system_attrs for t in done[:6])


def test_same_seed_same_proposals_other_seed_differs(make_config, small_pool) -> None:
    runs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        _, cfg = make_config(name=name, population=4, generations=3)
        cfg = cfg.model_copy(update={"seed": seed})
        run_search(cfg, problem=SyntheticFactory(), strategy="predictor", finalize=False)
        runs.append([t.params for t in _complete(_study(cfg, f"{name}-predictor"))])
    assert runs[0] == runs[1]
    assert runs[0][4:] != runs[2][4:]


@dataclass(frozen=True)
class _InterruptAt:
    """The synthetic problem, with Ctrl-C during the ``at``-th evaluation of this process."""

    at: int
    calls: list[int]

    def __call__(self, cfg: ExperimentConfig) -> SyntheticProblem:
        outer = self

        class Interrupting(SyntheticProblem):
            def evaluate(
                self,
                genome: MultimodalGenome,
                *,
                seed: int,
                progress: ProgressFn = no_progress,
                fidelity: float = 1.0,
            ):  # type: ignore[no-untyped-def]
                outer.calls.append(1)
                if len(outer.calls) == outer.at:
                    raise KeyboardInterrupt
                return super().evaluate(genome, seed=seed, progress=progress, fidelity=fidelity)

        return Interrupting(cfg)


def test_resumed_and_extended_studies_propose_what_a_straight_run_does(
    make_config, small_pool
) -> None:
    _, straight = make_config(name="straight", population=4, generations=4)
    run_search(straight, problem=SyntheticFactory(), strategy="predictor", finalize=False)
    want = [t.params for t in _complete(_study(straight, "straight-predictor"))]
    # killed during its 7th candidate (a predicted one), then resumed
    _, killed = make_config(name="killed", population=4, generations=4)
    with pytest.raises(KeyboardInterrupt):
        run_search(killed, problem=_InterruptAt(7, []), strategy="predictor", finalize=False)
    s = run_search(killed, problem=SyntheticFactory(), strategy="predictor", finalize=False)
    assert s.n_complete == 16
    assert [t.params for t in _complete(_study(killed, "killed-predictor"))] == want
    # extended: 2 generations, then 4
    _, short = make_config(name="ext", population=4, generations=2)
    run_search(short, problem=SyntheticFactory(), strategy="predictor", finalize=False)
    longer = short.model_copy(update={"search": short.search.model_copy(update={"generations": 4})})
    run_search(longer, problem=SyntheticFactory(), strategy="predictor", finalize=False)
    assert [t.params for t in _complete(_study(short, "ext-predictor"))] == want


def test_hard_budget_genomes_are_never_proposed(make_config, small_pool) -> None:
    _, cfg = make_config(population=4, generations=3, latency_budget_ms=1.3)
    run_search(cfg, problem=SyntheticFactory(), strategy="predictor", finalize=False)
    study = _study(cfg, f"{cfg.name}-predictor")
    predicted = [t for t in _complete(study) if ATTR_PREDICTION in t.system_attrs]
    assert len(predicted) == 8
    assert all(t.user_attrs["lower_bound"][0] <= 1.3 for t in predicted)


@pytest.mark.slow
def test_beats_random_search_at_equal_budget_on_a_known_problem(make_config) -> None:
    """The synthetic problem's accuracy is a closed form of the genome (capacity, fusion size)
    with a little genome noise: at 32 candidates the predictor's front holds more hypervolume in
    (val metric, latency) than random search's, on every seed."""
    for seed in (0, 1, 2):
        _, cfg = make_config(name=f"s{seed}", population=8, generations=4)
        cfg = cfg.model_copy(update={"seed": seed})
        hv = {}
        for strategy in ("predictor", "random"):
            s = run_search(cfg, problem=SyntheticFactory(), strategy=strategy, finalize=False)
            assert s.n_complete == 32
            hv[strategy] = _hv2(cfg, _study(cfg, s.study_name))
        assert hv["predictor"] > 1.1 * hv["random"], (seed, hv)


def test_config_strategy_is_the_runs_search_and_the_cli_runs_it(
    make_config, synthetic_env, capsys, small_pool
) -> None:
    path, cfg = make_config(strategy="predictor", population=4, generations=2)
    assert main(["search", str(path)]) == 0
    out = capsys.readouterr().out
    assert "8/8 candidates complete" in out and "predictor" in out
    # the config's strategy owns the run directory: report and export read its Pareto set
    assert (cfg.run_path / "pareto.json").is_file()
    assert not (cfg.run_path / "search-predictor").exists()
    # NSGA-II beside it, for comparison, goes to its own folder
    assert main(["search", str(path), "--strategy", "nsga2"]) == 0
    assert (cfg.run_path / "search-nsga2" / "pareto.json").is_file()


@pytest.mark.parametrize(
    "search",
    [{"fusion_modes": ["late", "network", "network+late"]}, {"fidelity": "halving"}],
    ids=["fusion-mode-gene", "halving"],
)
def test_a_fusion_mode_gene_and_cheap_fidelities_are_predicted_too(
    make_config, small_pool, search: dict
) -> None:
    _, cfg = make_config(population=4, generations=3, **search)
    s = run_search(cfg, problem=SyntheticFactory(), strategy="predictor", finalize=False)
    assert s.n_complete == 12
    done = _complete(_study(cfg, f"{cfg.name}-predictor"))
    predicted = [t for t in done if ATTR_PREDICTION in t.system_attrs]
    assert len(predicted) == 8
    assert len({t.user_attrs["genome_key"] for t in done}) == 12
    if "fusion_modes" in search:  # the string gene is drawn and encoded like the others
        assert {t.params["fusion_mode"] for t in done} >= {"late", "network"}
    else:  # every pick gets the cheap evaluation first, and promotion still decides
        assert all("low_fidelity" in t.user_attrs for t in done)
        assert {t.user_attrs["fidelity"] for t in done} <= {"full", "low"}
