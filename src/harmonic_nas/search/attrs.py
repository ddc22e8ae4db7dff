"""The names of the study's and its trials' Optuna attributes: the one place they are spelled.

Written by the driver (:mod:`.objective`, :mod:`.storage`, :mod:`.final`) and read back by
:mod:`.records` and :mod:`.status`; a trial's attributes are its record in the study.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# --- trial user attributes -----------------------------------------------------------------------
ATTR_WORKER = "worker"
"""``{"host", "pid"}`` of the worker evaluating the trial"""
ATTR_KEY = "genome_key"
"""canonical key of the genome (dedupe, seeds); absent on a trial whose genes are partial"""
ATTR_FAIL = "fail_reason"
ATTR_INTERRUPTED = "interrupted"
ATTR_DUPLICATE = "duplicate_of"
ATTR_BUDGET = "budget_reached"
ATTR_EVALUATION = "evaluation"
"""the rest of an :class:`~harmonic_nas.search.problem.Evaluation` (genotype, extra, ...)"""
ATTR_SKIPPED = "skipped"
"""why the fusion search was skipped (a hard cost bound broken, a modality ignored)"""
ATTR_LOWER_BOUND = "lower_bound"
"""``[latency_ms, energy_mj]``: the LUT lower bound of the candidate's cost (the cheap pass)"""
ATTR_EVAL_SEED = "eval_seed"
#: ``"full"`` or ``"low"``: the fidelity at which a candidate's figures were obtained.
ATTR_FIDELITY = "fidelity"
FIDELITY_FULL = "full"
FIDELITY_LOW = "low"
#: ``[fusion search epochs, retraining epochs]`` of the evaluation the candidate completed with.
ATTR_FUSION_EPOCHS = "fusion_epochs"
#: Multi-fidelity: the cheap evaluation ``{val_metric, latency_ms, energy_mj, fusion_epochs}``.
ATTR_LOW_FIDELITY = "low_fidelity"
#: Multi-fidelity: whether the cheap evaluation earned the candidate a full one.
ATTR_PROMOTED = "promoted"
#: Evaluation fields stored as top-level trial user attributes (the rest under ATTR_EVALUATION).
EVALUATION_SCALARS = (
    "val_metric",
    "latency_ms",
    "energy_mj",
    "params",
    "latency_paper_ms",
    "energy_paper_mj",
)

# --- trial system attributes ---------------------------------------------------------------------
SYS_RETRY_HISTORY = "retry_history"
"""numbers of the earlier trials this one retries (interrupted candidates)"""

# --- study user attributes -----------------------------------------------------------------------
ATTR_CONFIG_HASH = "config_hash"
ATTR_CONFIG_IDENTITY = "config_identity"
ATTR_STRATEGY = "strategy"
#: Study user attribute: the objectives of the front (written when the study is created).
ATTR_OBJECTIVES = "front_objectives"
FRONT_OBJECTIVES = ("val_metric", "latency_ms", "energy_mj")
#: Study attributes of the noise-aware front: the seeds per re-scored member, and per member
#: ``rescore:<trial>`` = ``{"key", "seeds", "val_metrics"}`` (the search's own score first).
ATTR_RESCORE_SEEDS = "rescore_seeds"
RESCORE_PREFIX = "rescore:"
#: Study attribute: ``{"n_complete", "state": writing|done|failed, "pareto", "error"?}`` of the
#: last write-out stage (candidates.json, hypervolume.json, pareto.json).
ATTR_WRITE_OUT = "write_out"
#: Study attribute: ``{"kind": "ladder", "genomes": n}``, written once when NSGA-II's first
#: generation is seeded (see :mod:`harmonic_nas.search.initial`).
ATTR_INITIAL = "initial_population"
