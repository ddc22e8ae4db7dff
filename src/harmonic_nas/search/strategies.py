"""The ALGORITHM side: how candidates are proposed (NSGA-II, random, accuracy-only NSGA-II, and the
predictor-guided strategy of :mod:`.predictor`).

Samplers are Optuna samplers; the problem is never seen here, except through ``bind`` by a
strategy that prices genomes with the problem's LUT (the predictor). Every trial gets a fresh sampler
seeded from ``(run seed, strategy, trial number)`` (:class:`TrialSeededSampler`): proposals are
reproducible for a given study history, independent across workers (they hold different trial
numbers), and nothing ever reseeds a global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseGASampler, BaseSampler, NSGAIISampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from harmonic_nas.config import SearchConfig
from harmonic_nas.errors import ConfigError
from harmonic_nas.utils.registry import Registry
from harmonic_nas.utils.seeding import derive_seed

if TYPE_CHECKING:
    from harmonic_nas.search.problem import SearchProblem

OBJECTIVES = ("val_metric", "latency_ms", "energy_mj")


@dataclass(frozen=True)
class Strategy:
    """A named search strategy: its study directions and its sampler."""

    name: str
    directions: tuple[str, ...]
    build: Callable[[int], BaseSampler]
    evolutionary: bool = True
    """proposals come from selection and variation (``search.initial`` seeds its first
    generation); False for random search, the baseline, which is always uniform. The predictor
    is not evolutionary but starts from the same seeded first generation: True"""
    seed_stream: str | None = None
    """whose per-trial seeds the sampler gets (None: its own name); the predictor takes NSGA-II's,
    so that both draw the same first generation"""
    bind: Callable[[SearchProblem, int], Callable[[int], BaseSampler]] | None = None
    """``(problem, the stream's base seed) -> (per-trial seed -> sampler)`` for a strategy whose
    sampler needs the problem (the LUT); ``build`` is then never called"""

    @property
    def objectives(self) -> tuple[str, ...]:
        return OBJECTIVES[: len(self.directions)]


StrategyBuilder = Callable[[SearchConfig, bool], Strategy]
"""``(search config, energy_objective) -> Strategy``"""

#: the registered search strategies (``search.strategy`` names one)
STRATEGY_REGISTRY: Registry[StrategyBuilder] = Registry("search strategy", ConfigError)


def register_strategy(name: str) -> Callable[[StrategyBuilder], StrategyBuilder]:
    """Decorator registering a strategy builder under ``name`` (a duplicate is refused)."""

    def deco(fn: StrategyBuilder) -> StrategyBuilder:
        return STRATEGY_REGISTRY.register(name, fn)

    return deco


def _nsga(scfg: SearchConfig) -> Callable[[int], BaseSampler]:
    def build(seed: int) -> BaseSampler:
        return NSGAIISampler(
            population_size=scfg.population,
            crossover_prob=scfg.crossover_prob,
            mutation_prob=scfg.mutation_prob,
            seed=seed,
        )

    return build


def _random(seed: int) -> BaseSampler:
    return RandomSampler(seed=seed)


def _costs(energy_objective: bool) -> tuple[str, ...]:
    return ("minimize", "minimize") if energy_objective else ("minimize",)


@register_strategy("nsga2")
def _nsga2_strategy(scfg: SearchConfig, energy_objective: bool) -> Strategy:
    return Strategy("nsga2", ("maximize", *_costs(energy_objective)), _nsga(scfg))


@register_strategy("random")
def _random_strategy(scfg: SearchConfig, energy_objective: bool) -> Strategy:
    return Strategy("random", ("maximize", *_costs(energy_objective)), _random, evolutionary=False)


@register_strategy("accuracy-only")
def _accuracy_only_strategy(scfg: SearchConfig, energy_objective: bool) -> Strategy:
    return Strategy("accuracy-only", ("maximize",), _nsga(scfg))


def _needs_problem(seed: int) -> BaseSampler:
    raise TypeError(
        "the predictor strategy's sampler needs the problem: use make_sampler(..., problem)"
    )


@register_strategy("predictor")
def _predictor_strategy(scfg: SearchConfig, energy_objective: bool) -> Strategy:
    def bind(problem: SearchProblem, stream_seed: int) -> Callable[[int], BaseSampler]:
        from harmonic_nas.search.predictor import predictor_sampler_factory

        _, ref = problem.reference_costs()
        return predictor_sampler_factory(
            problem.space,
            problem.lower_bound,
            population=scfg.population,
            stream_seed=stream_seed,
            latency_ref=ref.latency_ms,
            budgets=(scfg.latency_budget_ms, scfg.energy_budget_mj),
        )

    return Strategy(
        "predictor",
        ("maximize", *_costs(energy_objective)),
        _needs_problem,
        seed_stream="nsga2",
        bind=bind,
    )


STRATEGIES = tuple(STRATEGY_REGISTRY.names())


def get_strategy(name: str, scfg: SearchConfig, *, energy_objective: bool = True) -> Strategy:
    """``nsga2`` (val metric, latency and energy), ``random`` (same objectives, random
    proposals), ``predictor`` (same objectives, :mod:`.predictor`) or ``accuracy-only`` (NSGA-II
    on the validation metric alone; costs still recorded). Without ``energy_objective`` (energy modelled as constant power x latency: no
    objective of its own) the first two optimise the val metric and latency only."""
    return STRATEGY_REGISTRY.get(name)(scfg, energy_objective)


class TrialSeededSampler(BaseSampler):
    """Delegates each trial to a fresh sampler built with ``derive_seed(base_seed, trial.number)``.

    The wrapped samplers keep no state between trials that matters: NSGA-II stores generations and
    parent populations in the study, so a fresh instance per trial proposes exactly what a
    long-lived one would, but with a per-trial seed.
    """

    def __init__(self, build: Callable[[int], BaseSampler], base_seed: int) -> None:
        self._build = build
        self._base_seed = base_seed
        self._number: int | None = None
        self._sampler: BaseSampler | None = None

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        if self._sampler is None or self._number != trial.number:
            self._sampler = self._build(derive_seed(self._base_seed, trial.number) % (1 << 32))
            self._number = trial.number
        return self._sampler

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        sampler = self._for(trial)
        sampler.before_trial(study, trial)
        if isinstance(sampler, BaseGASampler) and trial.system_attrs.get("fixed_params"):
            # An enqueued trial (the seeded first generation, a retried one) never reaches
            # sample_relative, where NSGA-II assigns a trial's generation: assign it here, or it
            # belongs to no population and is never a parent.
            sampler.get_trial_generation(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Seeds are derived per trial; nothing to reseed."""


def make_sampler(
    strategy: Strategy, run_seed: int, problem: SearchProblem | None = None
) -> TrialSeededSampler:
    """The sampler of a run: one derived seed stream per (run seed, strategy's seed stream);
    ``problem`` for a strategy that binds one (the predictor)."""
    base = derive_seed(run_seed, "search", strategy.seed_stream or strategy.name)
    build = strategy.build
    if strategy.bind is not None:
        if problem is None:
            raise TypeError(f"strategy {strategy.name!r} needs the search problem")
        build = strategy.bind(problem, base)
    return TrialSeededSampler(build, base)
