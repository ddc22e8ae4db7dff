"""NSGA-II's first generation: a ladder of genomes from the smallest to the largest, then random.

Optuna's NSGA-II draws its whole first generation at random. Uniform genes make every backbone
genome a sum of many independent choices, so a random generation clusters around mid-size
networks and misses both ends of the front (the cheapest models and the most accurate ones),
which four generations of selection did not reach (the 2026-12-02 ablation,
``benchmarks/results/init_ablation.json``). With
``search.initial: ladder`` (the default) ``population // 2`` (at least 2) genomes evenly spaced
from :meth:`SearchSpace.min_genome` to :meth:`SearchSpace.max_genome` are enqueued before the
first trial; the rest of the first generation stays random, and selection and variation do the
rest. Random search, the baseline, is never seeded.

The ladder is enqueued once, into a study with no trials (a resumed or extended study is never
seeded again); two processes creating a study at the same instant may both enqueue it, and the
driver's dedupe step turns the second copy into PRUNED duplicates that do not count.
"""

from __future__ import annotations

import logging

import optuna

from harmonic_nas.config import SearchConfig
from harmonic_nas.search.attrs import ATTR_INITIAL
from harmonic_nas.search.genome import SearchSpace
from harmonic_nas.search.strategies import Strategy

logger = logging.getLogger(__name__)


def ladder_size(population: int) -> int:
    """How many of the first generation's genomes are the ladder (the rest are random)."""
    return max(2, population // 2)


def seed_initial_population(
    study: optuna.Study, space: SearchSpace, scfg: SearchConfig, strategy: Strategy
) -> int:
    """Enqueue the ladder into a new study of an evolutionary strategy; return how many."""
    if scfg.initial != "ladder" or not strategy.evolutionary:
        return 0
    if ATTR_INITIAL in study.user_attrs or study.get_trials(deepcopy=False):
        return 0
    genomes = space.ladder(ladder_size(scfg.population))
    study.set_user_attr(ATTR_INITIAL, {"kind": "ladder", "genomes": len(genomes)})
    for g in genomes:
        study.enqueue_trial(space.to_params(g), skip_if_exists=True)
    logger.info(
        "study '%s': first generation seeded with a ladder of %d genomes (smallest to largest)",
        study.study_name,
        len(genomes),
    )
    return len(genomes)
