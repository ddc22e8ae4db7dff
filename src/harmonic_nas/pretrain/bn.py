"""BatchNorm recalibration: fresh running statistics for one (extracted) subnet.

A supernet's running statistics mix every subnet trained; a subnet evaluated with them is
mis-normalised. Recalibration resets them and averages the batch statistics of a few training
batches through the subnet (OFA ``set_running_statistics``). Nothing but the BN running statistics
(``running_mean``, ``running_var``, ``num_batches_tracked``) changes.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

logger = logging.getLogger(__name__)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def bn_recalibrate(
    model: nn.Module,
    inputs: Tensor,
    batches: int,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Recompute every BN layer's running statistics from ``batches`` batches of ``inputs``.

    The statistics are the exact average over the batches seen (cumulative moving average).
    Samples are the first ``batches * batch_size`` rows of ``inputs``, or a random subset drawn
    with ``generator``. Other layers run in eval mode (no dropout). The model's train/eval mode
    and BN momenta are restored; the model is modified in place and returned.
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
    if generator is not None:
        index = torch.randperm(n, generator=generator)[:take]
    else:
        index = torch.arange(take)
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
