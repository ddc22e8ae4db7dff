"""Pretraining several modalities at once: one process per supernet, each on one thread.

The supernets of a run are independent (their own data, generator and checkpoint file), so on a
machine with several cores they train side by side; results are the same as one after the other
(each modality's generators are derived from the run seed and its name, each process runs torch on
the thread policy's count). Workers are spawned and reload the dataset from its cache; they die
with the process that started them (:func:`~harmonic_nas.utils.processes.die_with_parent`), so a
killed ``run`` leaves no orphan training or writing checkpoints.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from harmonic_nas.utils.processes import die_with_parent, worker_start_error
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import policy_threads, torch_threads

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data.types import MultimodalDataset
    from harmonic_nas.pretrain.trainer import PretrainResult

logger = logging.getLogger(__name__)


def pretrain_workers(cfg: ExperimentConfig, n_modalities: int) -> int:
    """Processes to pretrain with: ``pretrain.workers``, or (0, the default) one per modality up
    to the CPU count. A dataset registered at run time by the caller's own code (not a built-in
    one) is not known to a spawned process: it is pretrained here, one modality after another."""
    from harmonic_nas.data.registry import get_dataset_entry

    if not get_dataset_entry(cfg.dataset.name).builder.__module__.startswith("harmonic_nas."):
        return 1
    wanted = cfg.pretrain.workers or (os.cpu_count() or 1)
    return max(1, min(wanted, n_modalities))


def _train_one(data: dict[str, Any], modality: str, force: bool, threads: int) -> PretrainResult:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data import load_dataset
    from harmonic_nas.pretrain.trainer import pretrain_supernet

    cfg = ExperimentConfig.model_validate(data)
    with torch_threads(threads):
        return pretrain_supernet(cfg, load_dataset(cfg), modality, force=force)


def pretrain_all(
    cfg: ExperimentConfig,
    dataset: MultimodalDataset,
    modalities: Sequence[str],
    *,
    force: bool = False,
    workers: int | None = None,
    progress: ProgressFn = no_progress,
) -> list[PretrainResult]:
    """Pretrain (or resume, or skip) every modality's supernet; results in ``modalities`` order.

    ``workers`` (default :func:`pretrain_workers`) > 1 trains modalities in parallel processes
    (progress is then reported per finished supernet); 1 trains them one after the other here,
    with per-step progress.
    """
    from harmonic_nas.pretrain.trainer import pretrain_supernet

    names = list(modalities)
    n = pretrain_workers(cfg, len(names)) if workers is None else max(1, min(workers, len(names)))
    if n == 1:
        return [pretrain_supernet(cfg, dataset, m, force=force, progress=progress) for m in names]
    data = cfg.model_dump(mode="json")
    threads = policy_threads()
    results: dict[str, PretrainResult] = {}
    progress("pretrain supernets (parallel)", 0, len(names))
    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(
            max_workers=n, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as pool:
            futures = {pool.submit(_train_one, data, m, force, threads): m for m in names}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()  # a worker's error is raised here, as is
                progress("pretrain supernets (parallel)", len(results), len(names))
    except BrokenProcessPool:
        raise worker_start_error("pretraining") from None
    logger.info("pretrained %d supernets in %d processes", len(names), n)
    return [results[m] for m in names]
