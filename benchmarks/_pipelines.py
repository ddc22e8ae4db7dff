"""One pipeline per (profile, seed), built once and shared by every search benchmark.

A pipeline is the run directory ``runs/bench-<profile>-s<seed>``: the av-digits dataset of that
profile and seed (cached), one supernet per modality pretrained for the benchmarks' epochs
(:data:`_bench_config.PRETRAIN_EPOCHS`) and the host LUT. ``data_difficulty``, ``search_quality``,
``fusion_search`` and ``supernet_quality`` open the same pipeline, so their figures describe the
same supernets and the same table; a pipeline that exists is reused (pretraining resumes from its
checkpoint), so a long benchmark can span sittings.

Profiles (``dataset.options.profile`` of av-digits, ``harmonic_nas.data.av_digits.PROFILES``):
``default`` (the demo's data), ``hard`` (modalities independent given the label, each weak alone)
and ``interaction`` (multilabel outputs that need both modalities at once).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import torch

from _bench_config import BASE_CONFIG, PROTOCOL_SETS, ROOT  # benchmarks/_bench_config.py
from harmonic_nas.config import ExperimentConfig, load_config
from harmonic_nas.data.av_digits import PROFILES
from harmonic_nas.search.evaluator import HarmonicProblem

CPU = torch.device("cpu")
BENCH_PROFILES: tuple[str, ...] = tuple(PROFILES)


def pipeline_config(
    profile: str, seed: int, *, sets: list[str] | None = None, path: Path = BASE_CONFIG
) -> ExperimentConfig:
    """configs/quick.yaml with the benchmarks' pretraining, the profile's data and ``seed``.

    ``sets`` (``key=value``, as ``-o`` on the CLI) change the pipeline, e.g. for a smoke run;
    such a pipeline gets a run directory of its own (``bench-<profile>-s<seed>-<hash>``) so it
    never mixes with the shared one."""
    if profile not in PROFILES:
        raise SystemExit(f"error: unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    name = f"bench-{profile}-s{seed}"
    if sets:
        name += "-" + hashlib.sha256("\n".join(sets).encode()).hexdigest()[:8]
    overrides: dict[str, Any] = {
        "name": name,
        "run_dir": str(ROOT / "runs"),
        "seed": seed,
        "dataset": {"name": "av-digits", "options": {"profile": profile}},
    }
    return load_config(path, overrides, sets=[*PROTOCOL_SETS, *(sets or [])])


def open_pipeline(cfg: ExperimentConfig) -> tuple[HarmonicProblem, dict[str, float]]:
    """The run's problem with its supernets trained (resumed or reused) and its LUT built.

    Returns the problem and the seconds each missing stage took (0 when it was reused)."""
    from harmonic_nas.pretrain import pretrain_all

    problem = HarmonicProblem(cfg, device=CPU)
    times: dict[str, float] = {}
    t = time.perf_counter()
    ds = problem.dataset
    times["dataset_s"] = time.perf_counter() - t
    t = time.perf_counter()
    pretrain_all(cfg, ds, list(cfg.modalities))
    times["pretrain_s"] = time.perf_counter() - t
    problem.__dict__.pop("supernets", None)
    t = time.perf_counter()
    _ = problem.op_costs  # profiles the host LUT when missing
    times["lut_s"] = time.perf_counter() - t
    return problem, times
