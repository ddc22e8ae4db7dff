"""BatchNorm recalibration: fresh running statistics for one (extracted) subnet.

A supernet's running statistics mix every subnet trained; a subnet evaluated with them is
mis-normalised. Recalibration resets them and averages the batch statistics of a few training
batches through the subnet (OFA ``set_running_statistics``). Nothing but the BN running statistics
(``running_mean``, ``running_var``, ``num_batches_tracked``) changes.

Which samples: :func:`~harmonic_nas.utils.sampling.stratified_subset` (drawn with :func:`calibration_generator`) is the one place that chooses them, for every subnet the
pipeline extracts (search, baselines, export checks, pretraining's evaluation, benchmarks). It is a
seeded, class-stratified random subset of train: dataset splits are often sorted by class, and the
first rows of such a split hold a few classes only (statistics biased toward them).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from harmonic_nas.utils.sampling import stratified_subset
from harmonic_nas.utils.seeding import torch_generator

logger = logging.getLogger(__name__)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def calibration_generator(seed: int) -> torch.Generator:
    """The generator that draws a run's recalibration subset (the same for every subnet)."""
    return torch_generator(seed, "bn-recalibration")


@torch.no_grad()
def bn_recalibrate(
    model: nn.Module,
    inputs: Tensor,
    batches: int,
    batch_size: int,
    *,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Recompute every BN layer's running statistics from ``batches`` batches of ``inputs``.

    The statistics are the exact average over the batches seen (cumulative moving average).
    Samples are :func:`~harmonic_nas.utils.sampling.stratified_subset` of ``labels`` (class-stratified; uniform without
    labels), drawn with ``generator`` (a fixed seed when None, so the result is reproducible).
    Other layers run in eval mode (no dropout). The model's train/eval mode and BN momenta are
    restored; the model is modified in place and returned.
    """
    if batches < 1 or batch_size < 1:
        raise ValueError(f"batches and batch_size must be >= 1, got {batches}, {batch_size}")
    n = int(inputs.shape[0])
    if n == 0:
        raise ValueError("bn_recalibrate needs at least one input sample")
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not bns:
        return model
    take = min(n, batches * batch_size)
    if generator is None:
        generator = calibration_generator(0)
    if labels is not None and int(labels.shape[0]) != n:
        raise ValueError(f"{int(labels.shape[0])} labels for {n} inputs")
    index = stratified_subset(
        labels if labels is not None else torch.zeros((n, 0)), take, generator
    )
    was_training = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in bns}
    device = _device_of(model)
    try:
        model.eval()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: every batch counts equally
            m.train()
        for start in range(0, take, batch_size):
            chunk = index[start : start + batch_size]
            if chunk.numel() < 2 and start > 0:
                break  # a batch of one has no variance; the statistics are already set
            model(inputs[chunk].to(device))
    finally:
        for module, mode in was_training.items():
            module.train(mode)
        for m, momentum in momenta.items():
            m.momentum = momentum
    logger.debug("recalibrated %d BN layers on %d samples", len(bns), take)
    return model
