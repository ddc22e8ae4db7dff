"""Predictor-guided proposals (``search.strategy: predictor``): train only the genomes that an
accuracy predictor expects to improve the front.

What a candidate costs on the device is free (the LUT prices any genome without training it);
its accuracy is what the budget buys. After the first generation (the same one as NSGA-II's: the
ladder of ``search.initial``, then random genomes drawn from NSGA-II's own seed stream, so both
strategies evaluate the same first ``population`` candidates), every proposal:

1. fits an ensemble of ridge regressions (:data:`ENSEMBLE` bootstrap resamples, the ridge
   penalty chosen by exact leave-one-out error) of the val metric on genome features
   (:func:`genome_features`: one-hot genes, per-backbone depth / kernel / expand summaries, the
   fusion macro-architecture, the log of the LUT lower bound) over every evaluated candidate,
   and a ridge of the evaluated latency's excess over the LUT lower bound;
2. draws :data:`POOL_SIZE` genomes never proposed before (uniform genes, "level" genomes
   spread from the smallest to the largest network, and mutations of front members) and costs
   each with the LUT lower bound (no training; genomes whose bound breaks a hard budget are
   left out, they could only complete infeasible);
3. picks the genome with the largest expected improvement of the front's hypervolume in
   (val metric, latency): the mean over the ensemble's members of the 2-D hypervolume gained,
   each member's deviation from the ensemble mean widened :data:`EXPLORE` times (the
   exploration term: a bootstrap ensemble of a few dozen samples under-states its own
   uncertainty). Candidates being evaluated by other workers enter the front at their predicted
   accuracy, so concurrent proposals spread along the latency axis instead of piling up.

It never proposes a genome that any trial holds (evaluated, running, failed or pruned). The
proposal depends only on the study's trials and the per-trial seed, so it is reproducible for a
given seed and a resumed study proposes what an uninterrupted one would. Energy, when measured,
stays an objective of the study (recorded, on the front); the acquisition ranks in (val metric,
latency).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from harmonic_nas.search.attrs import (
    ATTR_EVALUATION,
    ATTR_FIDELITY,
    ATTR_KEY,
    ATTR_LOWER_BOUND,
    ATTR_SKIPPED,
    FIDELITY_LOW,
)
from harmonic_nas.search.genome import MultimodalGenome, SearchSpace
from harmonic_nas.search.pareto import non_dominated
from harmonic_nas.search.problem import CostBound
from harmonic_nas.utils.seeding import derive_seed

logger = logging.getLogger(__name__)

#: genomes drawn and costed per proposal (thirds: uniform, level, mutations of the front)
POOL_SIZE = 2000
#: bootstrap ridge models of the accuracy ensemble
ENSEMBLE = 16
#: how many times each member's deviation from the ensemble mean is widened in the acquisition
EXPLORE = 2.0
#: the ridge penalties tried (on standardised features); leave-one-out error picks one
ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
#: the accuracy floor of the acquisition's hypervolume: the worst evaluated val metric, lowered
#: by this share of the evaluated range (a model below every evaluated one adds nothing)
FLOOR_MARGIN = 1.0
#: system attribute of a proposed trial: what the predictor expected of it
ATTR_PREDICTION = "predictor:prediction"

CostFn = Callable[[MultimodalGenome], CostBound]


# -- features --------------------------------------------------------------------------------
def genome_features(
    space: SearchSpace, genome: MultimodalGenome, lower_bound_ms: float
) -> list[float]:
    """A genome as numbers: per backbone its depth, active blocks, mean kernel, mean expand ratio
    and a compute proxy (sum of (k/k_max)^2 x e/e_max over active blocks); the one-hot of every
    gene (an inactive block gene is its own level); cells, nodes and the fusion mode; and the log
    of the LUT lower bound of its latency."""
    g = genome.canonical()
    out: list[float] = []
    for m, sp in space.backbones.items():
        bb = g.backbones[m]
        active = [(k, e) for k, e in zip(bb.ks, bb.e, strict=True) if k]
        kmax, emax = max(sp.ks), max(sp.e)
        n = len(active)
        out += [
            float(sum(bb.d)),
            float(n),
            sum(k for k, _ in active) / max(n, 1) / kmax,
            sum(e for _, e in active) / max(n, 1) / emax,
            sum((k / kmax) ** 2 * (e / emax) for k, e in active),
        ]
        for s in range(sp.stages):
            out += [float(bb.d[s] == c) for c in sp.d]
        for i in range(sp.slots):
            out += [float(bb.ks[i] == c) for c in (0, *sp.ks)]
            out += [float(bb.e[i] == c) for c in (0, *sp.e)]
    late = genome.is_late
    out += [0.0 if late else float(genome.cells), 0.0 if late else float(genome.nodes)]
    out += [float(not late and genome.cells == c) for c in space.cells]
    out += [float(not late and genome.nodes == c) for c in space.nodes]
    out += [float(genome.fusion_mode == mode) for mode in space.fusion_modes]
    out.append(math.log(max(lower_bound_ms, 1e-9)))
    return out


@dataclass(frozen=True)
class Ridge:
    """Ridge regression on standardised features (the intercept unpenalised)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 1e-12, scale, np.inf)  # a constant column drops out


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> Ridge:
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    yc = y.mean()
    a = z.T @ z + alpha * np.eye(z.shape[1])
    coef = np.linalg.solve(a, z.T @ (y - yc))
    return Ridge(mean, scale, coef, float(yc))


def loo_alpha(x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = ALPHAS) -> float:
    """The penalty with the smallest exact leave-one-out squared error (the hat-matrix identity
    ``e_i / (1 - h_ii)``; the features are standardised and centred once, on all samples)."""
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    n = len(y)
    yc = y - y.mean()
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    best, best_err = alphas[0], math.inf
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        h = (u**2) @ shrink + 1.0 / n  # + the intercept's leverage
        fitted = u @ (shrink * (u.T @ yc))
        err = float(np.mean(((yc - fitted) / np.maximum(1.0 - h, 1e-6)) ** 2))
        if err < best_err - 1e-15:
            best, best_err = alpha, err
    return best


def fit_ensemble(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, members: int = ENSEMBLE
) -> list[Ridge]:
    """``members`` ridge models on bootstrap resamples, at the leave-one-out penalty."""
    alpha = loo_alpha(x, y)
    n = len(y)
    out = []
    for _ in range(members):
        idx = rng.integers(0, n, size=n)
        out.append(fit_ridge(x[idx], y[idx], alpha))
    return out


# -- the acquisition ---------------------------------------------------------------------------
def hv_improvement(
    front: np.ndarray, acc: np.ndarray, lat: np.ndarray, floor: float, lat_ref: float
) -> np.ndarray:
    """The 2-D hypervolume each point ``(acc, lat)`` would add to the front ``front``
    (``k x 2`` of ``(acc, lat)``), in the box from ``(floor, lat_ref)``: accuracy above
    ``floor``, latency below ``lat_ref``. ``acc`` and ``lat`` broadcast together."""
    acc, lat = np.broadcast_arrays(np.asarray(acc, float), np.asarray(lat, float))
    # minimisation coordinates u = -acc, v = lat; reference (-floor, lat_ref)
    ru, rv = -floor, lat_ref
    pts = np.asarray(front, float).reshape(-1, 2)
    pts = pts[(pts[:, 0] > floor) & (pts[:, 1] < lat_ref)]
    u = -pts[:, 0]
    v = pts[:, 1]
    keep = non_dominated(np.stack([u, v], axis=1)) if len(u) else []
    order = sorted(keep, key=lambda i: (v[i], u[i]))
    us, vs = u[order], v[order]  # latency ascending, so u descending
    lo = np.concatenate([[-np.inf], vs])
    hi = np.concatenate([vs, [rv]])
    cover = np.concatenate([[ru], us])  # at latency level in [lo_j, hi_j): covered from cover_j
    pu, pv = -acc[..., None], lat[..., None]
    width = np.clip(cover - pu, 0.0, None)
    height = np.clip(np.minimum(hi, rv) - np.maximum(lo, pv), 0.0, None)
    gain = (width * height).sum(axis=-1)
    return np.where((-acc < ru) & (lat < rv), gain, 0.0)


def front_accuracy_at(front: np.ndarray, lat: np.ndarray, floor: float) -> np.ndarray:
    """The best accuracy of the front at or below each latency (``floor`` where none)."""
    pts = np.asarray(front, float).reshape(-1, 2)
    out = np.full(np.shape(lat), floor, dtype=float)
    for a, latency in pts:
        out = np.where(latency <= lat, np.maximum(out, a), out)
    return out


def _front_points(points: Sequence[tuple[float, float]]) -> set[tuple[float, float]]:
    """The non-dominated ones of ``(acc, lat)`` points."""
    pts = list(points)
    return {pts[i] for i in non_dominated([(-a, lat) for a, lat in pts])}


# -- the pool of unevaluated genomes -------------------------------------------------------------
def _genes(space: SearchSpace) -> list[tuple[str, tuple[Any, ...], bool]]:
    """(name, choices in ascending order, ordered) of every gene."""
    out: list[tuple[str, tuple[Any, ...], bool]] = []
    for name, dist in space.distributions().items():
        choices: tuple[Any, ...] = tuple(dist.choices)
        ordered = all(isinstance(c, int | float) for c in choices)
        out.append((name, tuple(sorted(choices)) if ordered else choices, ordered))
    return out


def draw_pool(
    space: SearchSpace,
    rng: np.random.Generator,
    n: int,
    parents: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """``n`` gene sets: a third uniform, a third "level" genomes (every ordered gene near one
    random level between its smallest and largest choice: networks from the smallest to the
    largest, which uniform genes rarely reach), a third mutations of ``parents`` (a few genes
    moved one level, or redrawn); half uniform, half level where there are no parents."""
    genes = _genes(space)
    sizes = np.asarray([len(c) for _, c, _ in genes])
    ordered = np.asarray([o for _, _, o in genes])
    g = len(genes)
    kinds = np.arange(n) % (3 if parents else 2)
    uniform = np.floor(rng.uniform(size=(n, g)) * sizes).astype(int)
    level = rng.uniform(size=(n, 1)) + 0.15 * rng.normal(size=(n, g))
    level = np.rint(np.clip(level, 0.0, 1.0) * (sizes - 1)).astype(int)
    idx = np.where(kinds[:, None] == 1, np.where(ordered, level, uniform), uniform)
    if parents:
        base = np.asarray(
            [[choices.index(p[name]) for name, choices, _ in genes] for p in parents], int
        )
        picked = base[rng.integers(len(parents), size=n)]
        flips = rng.uniform(size=(n, g)) < 2.0 / g
        flips[np.arange(n), rng.integers(g, size=n)] = True
        step = np.where(rng.uniform(size=(n, g)) < 0.5, 1, -1)
        moved = np.clip(picked + step, 0, sizes - 1)
        local = ordered & (rng.uniform(size=(n, g)) < 0.7)
        mutated = np.where(flips, np.where(local, moved, uniform), picked)
        idx = np.where(kinds[:, None] == 2, mutated, idx)
    return [
        {name: choices[int(j)] for (name, choices, _), j in zip(genes, row, strict=True)}
        for row in idx
    ]


# -- the sampler -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Seen:
    """What the study holds when a proposal is made."""

    keys: set[str]
    observed: list[tuple[MultimodalGenome, float, float, float, bool]]
    """(genome, val metric, latency, LUT lower bound of latency, low fidelity) of every evaluated
    candidate (cheap-pass skips left out)"""
    front: list[tuple[float, float]]
    """(val metric, latency) of every feasible full-fidelity candidate"""
    pending: list[MultimodalGenome]
    """genomes other workers are evaluating now"""
    n_first: int
    """trials of the first generation: complete, running (others) and queued"""
    n_done: int
    """candidates completed or in flight (other trials): the proposal's index"""
    proposing: int
    """other trials being proposed right now (running, genes not yet set): other workers"""


class PredictorSampler(BaseSampler):
    """One proposal of the predictor strategy (built per trial by
    :class:`~harmonic_nas.search.strategies.TrialSeededSampler`; its state is the study).

    ``seed`` is the trial's seed on NSGA-II's seed stream: the first generation's random genomes
    are drawn exactly as NSGA-II draws its own (:class:`optuna.samplers.RandomSampler` with that
    seed). A later proposal draws from a generator seeded by ``stream_seed`` and the number of
    candidates completed or in flight, not by the trial's number: a study resumed after a killed
    trial (retried under a new number) proposes what an uninterrupted one does."""

    def __init__(
        self,
        space: SearchSpace,
        cost: CostFn,
        *,
        population: int,
        seed: int,
        stream_seed: int,
        latency_ref: float,
        budgets: tuple[float | None, float | None] = (None, None),
        cache: dict[str, tuple[CostBound, list[float]]] | None = None,
        pool_size: int | None = None,
    ) -> None:
        self._space = space
        self._cost = cost
        self._population = population
        self._stream_seed = stream_seed
        self._latency_ref = latency_ref
        self._budgets = budgets
        self._cache = cache if cache is not None else {}
        self._pool_size = pool_size or POOL_SIZE
        self._random = RandomSampler(seed=seed)

    # -- Optuna's sampler interface ----------------------------------------------------------
    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if trial.system_attrs.get("fixed_params"):
            return {}
        if self._seen(study, trial).n_first < self._population:
            return {}  # the first generation: random genes (sample_independent)
        return dict(self._space.distributions())

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        proposal = self.propose(study, trial)
        if proposal is None:
            return {}  # nothing new in the pool: random genes (the driver dedupes)
        genome, info = proposal
        study._storage.set_trial_system_attr(trial._trial_id, ATTR_PREDICTION, info)
        return dict(self._space.to_params(genome))

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        """Seeds are derived per trial; nothing to reseed."""

    # -- the study's state -------------------------------------------------------------------
    def _seen(self, study: optuna.Study, trial: FrozenTrial) -> _Seen:
        keys: set[str] = set()
        observed: list[tuple[MultimodalGenome, float, float, float, bool]] = []
        front: list[tuple[float, float]] = []
        pending: list[MultimodalGenome] = []
        n_first = n_done = proposing = 0
        genes = set(self._space.distributions())
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            params = (
                t.params if t.state != TrialState.WAITING else t.system_attrs.get("fixed_params")
            )
            genome = None
            if params and genes <= set(params):
                genome = self._space.from_params(params)
                keys.add(genome.key())
            if ATTR_KEY in t.user_attrs:
                keys.add(str(t.user_attrs[ATTR_KEY]))
            if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE):
                n_first += 1
            if t.state in (TrialState.RUNNING, TrialState.COMPLETE) and genome is not None:
                n_done += 1
            if t.state == TrialState.RUNNING and genome is None:
                proposing += 1
            if t.state == TrialState.RUNNING and genome is not None:
                pending.append(genome)
            if t.state != TrialState.COMPLETE or genome is None:
                continue
            ev = t.user_attrs.get(ATTR_EVALUATION) or {}
            if (ev.get("extra") or {}).get("skipped"):
                continue  # the cheap pass skipped it: no accuracy was measured
            try:
                val = float(t.user_attrs["val_metric"])
                lat = float(t.user_attrs["latency_ms"])
            except (KeyError, TypeError, ValueError):
                continue
            bound = t.user_attrs.get(ATTR_LOWER_BOUND)
            lb = float(bound[0]) if isinstance(bound, list) and bound else lat
            low = t.user_attrs.get(ATTR_FIDELITY) == FIDELITY_LOW
            if not (math.isfinite(val) and math.isfinite(lat)):
                continue
            observed.append((genome, val, lat, lb, low))
            skipped = t.user_attrs.get(ATTR_SKIPPED)
            if not low and not skipped and all(v <= 0 for v in t.constraints.values()):
                front.append((val, lat))
        return _Seen(keys, observed, front, pending, n_first, n_done, proposing)

    def _priced(self, key: str, genome: MultimodalGenome) -> tuple[CostBound, list[float]]:
        """The genome's LUT lower bound and its features (cached per process by ``key``)."""
        hit = self._cache.get(key)
        if hit is None:
            bound = self._cost(genome)
            hit = (bound, genome_features(self._space, genome, bound.latency_ms))
            self._cache[key] = hit
        return hit

    def _feasible(self, bound: CostBound) -> bool:
        lat_budget, en_budget = self._budgets
        return (lat_budget is None or bound.latency_ms <= lat_budget) and (
            en_budget is None or bound.energy_mj <= en_budget
        )

    # -- the proposal ------------------------------------------------------------------------
    def propose(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> tuple[MultimodalGenome, dict[str, Any]] | None:
        """The genome to evaluate next and what the predictor expects of it (None: the pool
        holds no genome the study has not seen)."""
        seen = self._seen(study, trial)
        # seeded by the history, not the trial number (a retried trial takes a new number); two
        # workers proposing at once see the same history and add their trial numbers
        parts: tuple[object, ...] = (self._stream_seed, "predictor", seen.n_done)
        if seen.proposing:
            parts += (trial.number,)
        rng = np.random.default_rng(derive_seed(*parts))
        if len(seen.observed) < 2:
            return None
        space = self._space
        on_front = _front_points(seen.front)
        parents = [
            dict(space.to_params(g))
            for g, val, lat, _, low in seen.observed
            if not low and (val, lat) in on_front
        ]
        pool: dict[str, MultimodalGenome] = {}
        for params in draw_pool(space, rng, self._pool_size, parents):
            g = space.from_params(params)
            key = g.key()
            if key in seen.keys or key in pool:
                continue
            pool[key] = g
        cands = [(k, g, *self._priced(k, g)) for k, g in pool.items()]
        cands = [c for c in cands if self._feasible(c[2])]
        if not cands:
            return None
        # the models: accuracy ensemble, latency excess over the LUT lower bound
        obs = seen.observed
        x = np.asarray(
            [[*genome_features(space, g, lb), float(low)] for g, _, _, lb, low in obs], float
        )
        y = np.asarray([v for _, v, _, _, _ in obs], float)
        members = fit_ensemble(x, y, rng)
        lat_obs = np.asarray([lat for _, _, lat, _, _ in obs], float)
        lb_obs = np.asarray([lb for _, _, _, lb, _ in obs], float)
        lat_model = fit_ridge(x, lat_obs - lb_obs, loo_alpha(x, lat_obs - lb_obs))
        xc = np.asarray([[*f, 0.0] for _, _, _, f in cands], float)
        lb_c = np.asarray([b.latency_ms for _, _, b, _ in cands], float)
        preds = np.stack([m.predict(xc) for m in members])  # members x candidates
        mean = preds.mean(axis=0)
        spread = preds.std(axis=0)
        lat_c = lb_c + np.maximum(lat_model.predict(xc), 0.0)
        # the front: evaluated members, and what other workers are evaluating (predicted)
        front = list(seen.front)
        if seen.pending:
            priced = [self._priced(g.key(), g) for g in seen.pending]
            xp = np.asarray([[*f, 0.0] for _, f in priced], float)
            lb_p = np.asarray([b.latency_ms for b, _ in priced], float)
            acc_p = np.mean([m.predict(xp) for m in members], axis=0)
            lat_p = lb_p + np.maximum(lat_model.predict(xp), 0.0)
            front += list(zip(acc_p.tolist(), lat_p.tolist(), strict=True))
        lo, hi = float(y.min()), float(y.max())
        floor = lo - FLOOR_MARGIN * (hi - lo)
        samples = mean + EXPLORE * (preds - mean)
        gain = hv_improvement(np.asarray(front), samples, lat_c, floor, self._latency_ref).mean(
            axis=0
        )
        gap = mean + EXPLORE * spread - front_accuracy_at(np.asarray(front), lat_c, floor)
        best = int(np.lexsort((-gap, -gain))[0])
        key, genome, _, _ = cands[best]
        info = {
            "val_metric": float(mean[best]),
            "spread": float(spread[best]),
            "latency_ms": float(lat_c[best]),
            "ehvi": float(gain[best]),
            "pool": len(cands),
            "fitted_on": len(obs),
        }
        logger.debug("predictor proposes %s: %s", key, info)
        return genome, info


def predictor_sampler_factory(
    space: SearchSpace,
    cost: CostFn,
    *,
    population: int,
    stream_seed: int,
    latency_ref: float,
    budgets: tuple[float | None, float | None] = (None, None),
) -> Callable[[int], PredictorSampler]:
    """``seed -> PredictorSampler`` sharing one cache of LUT bounds (per process)."""
    cache: dict[str, tuple[CostBound, list[float]]] = {}

    def build(seed: int) -> PredictorSampler:
        return PredictorSampler(
            space,
            cost,
            population=population,
            seed=seed,
            stream_seed=stream_seed,
            latency_ref=latency_ref,
            budgets=budgets,
            cache=cache,
        )

    return build


__all__ = [
    "ATTR_PREDICTION",
    "PredictorSampler",
    "fit_ensemble",
    "genome_features",
    "hv_improvement",
    "loo_alpha",
    "predictor_sampler_factory",
]
