"""Data-parallel supernet pretraining: ``torchrun --nproc-per-node N -m harmonic_nas pretrain``.

N ranks train one supernet with :class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on
GPUs, Gloo on CPUs) and end with the weights one process would have with the same global batch
(``pretrain.batch_size``) and seed:

- **one GPU per rank, or shared**: ``compute.device`` ``cuda``/``auto`` spreads the ranks over
  the visible GPUs (NCCL); more ranks than GPUs share them (Gloo, which takes CUDA tensors);
- **the same subnets**: every rank draws its permutation, sandwich subnets and dropout seeds from
  the same generators (the run's seed), so each step trains the same max, min and random subnets;
- **the global batch, split**: :func:`rank_batch` is :class:`~torch.utils.data.DistributedSampler`
  over the batch positions of the epoch (interleaved, no padding): rank ``r`` of ``N`` gets rows
  ``r, r + N, ...`` of each global batch, so ``pretrain.batch_size`` must be a multiple of ``N``;
- **batch-norm statistics over the global batch**: every BN layer (the elastic ones included, on
  their active channel slice) is replaced by :class:`RankSyncedBatchNorm2d`/``1d``, which
  all-reduces per-channel sums in the forward and backward passes (plain ``all_reduce``, so Gloo
  works; ``torch.nn.SyncBatchNorm`` is CUDA-only and knows nothing of channel slices);
- **dropout over the global batch**: :class:`GlobalBatchDropout` draws the mask of the whole
  global batch (the draws one process makes) and keeps this rank's rows;
- **gradients**: DDP averages them (every rank's loss is the mean over its equal share), after each
  of the sandwich's backward passes (``find_unused_parameters``: a subnet leaves blocks unused).

Rank 0 alone evaluates, writes checkpoints and metrics; every rank resumes from the same
checkpoint. Multi-node runs use torchrun's rendezvous (``--nnodes``, ``--rdzv-endpoint``).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DistributedSampler, TensorDataset

from harmonic_nas.backbones.dynamic import DynamicBatchNorm2d
from harmonic_nas.errors import ConfigError
from harmonic_nas.utils.device import resolve_device
from harmonic_nas.utils.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data import MultimodalDataset
    from harmonic_nas.pretrain.trainer import PretrainResult

logger = logging.getLogger(__name__)

#: environment variables torchrun sets for every rank
_RANK_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """True in a process started by ``torchrun`` (its rank variables are set)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run: rank, world size, device, process group."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index or 0])
        else:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a small picklable record made by this code)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._collective_device())
        return box[0]

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks."""
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def _collective_device(self) -> torch.device | None:
        return self.device if self.backend == "nccl" else None

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ConfigError(
                f"pretrain.batch_size {batch_size} is not a multiple of the {self.world} ranks; "
                f"set it to a multiple of {self.world} (it is the global batch)"
            )

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` with global-batch BN and dropout, inside DistributedDataParallel."""
        to_global_batch(model, self.rank, self.world)
        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        with warnings.catch_warnings():  # newer torch renames the flag; the old one still works
            warnings.filterwarnings("ignore", message=".*broadcast_buffers", category=FutureWarning)
            return nn.parallel.DistributedDataParallel(
                model,
                device_ids=ids,
                broadcast_buffers=False,  # BN statistics are the same on every rank (synchronised)
                find_unused_parameters=True,  # a subnet leaves blocks, kernels and channels unused
            )

    def rank_batch(self, perm: Tensor, step: int, batch_size: int) -> Tensor:
        """This rank's rows of global batch ``step`` of ``perm`` (see :func:`rank_batch`)."""
        return rank_batch(perm, step, batch_size, self.rank, self.world)


def rank_batch(perm: Tensor, step: int, batch_size: int, rank: int, world: int) -> Tensor:
    """Rows of the ``step``-th global batch (``perm[step * batch_size : ...]``) that rank ``rank``
    of ``world`` trains on: :class:`DistributedSampler`'s partition (interleaved) of the epoch's
    batch positions, so the ranks' rows together are exactly the one-process batch."""
    positions = torch.arange(step * batch_size, (step + 1) * batch_size)
    sampler: DistributedSampler[int] = DistributedSampler(
        TensorDataset(positions), num_replicas=world, rank=rank, shuffle=False
    )
    return perm[positions[list(sampler)]]


# --- global-batch layers ------------------------------------------------------------------------


class _SyncedBNFunction(torch.autograd.Function):
    """Batch norm over the union of every rank's batch: per-channel sums all-reduced forward
    (mean, variance) and backward (the two sums of the input gradient)."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, eps: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        wide = torch.promote_types(x.dtype, torch.float32)  # fp32, or fp64 when training in it
        xf = x.to(wide)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
        stats = torch.cat(
            [xf.sum(dims).double(), (xf * xf).sum(dims).double(), count]
        )  # one collective: sum, sum of squares, element count
        dist.all_reduce(stats)
        c = x.shape[1]
        total = stats[-1]
        mean64 = stats[:c] / total
        var64 = (stats[c : 2 * c] / total - mean64 * mean64).clamp_min(0.0)
        mean, var = mean64.to(wide), var64.to(wide)
        invstd = torch.rsqrt(var + eps)
        xhat = (xf - mean.view(shape)) * invstd.view(shape)
        out = xhat * weight.to(wide).view(shape) + bias.to(wide).view(shape)
        ctx.save_for_backward(xhat, weight, invstd)
        ctx.total = float(total)
        unbiased = var * (float(total) / max(float(total) - 1.0, 1.0))
        ctx.mark_non_differentiable(mean, unbiased)
        return out.to(x.dtype), mean, unbiased

    @staticmethod
    def backward(
        ctx: Any, grad_out: Tensor, _gm: Tensor, _gv: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, None]:
        xhat, weight, invstd = ctx.saved_tensors
        dims = [0, *range(2, xhat.dim())]
        shape = [1, -1] + [1] * (xhat.dim() - 2)
        g = grad_out.to(xhat.dtype)
        grad_weight = (g * xhat).sum(dims)  # this rank's share; DDP averages the ranks
        grad_bias = g.sum(dims)
        gxhat = g * weight.to(xhat.dtype).view(shape)
        sums = torch.cat([gxhat.sum(dims), (gxhat * xhat).sum(dims)]).double()
        dist.all_reduce(sums)
        c = xhat.shape[1]
        mean_g = (sums[:c] / ctx.total).to(xhat.dtype).view(shape)
        mean_gx = (sums[c:] / ctx.total).to(xhat.dtype).view(shape)
        grad_x = (gxhat - mean_g - xhat * mean_gx) * invstd.view(shape)
        return (
            grad_x.to(grad_out.dtype),
            grad_weight.to(weight.dtype),
            grad_bias.to(weight.dtype),
            None,
        )


def _synced_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    """Training-mode batch norm of ``bn``'s first ``x.shape[1]`` channels over the global batch,
    updating the running statistics the way ``F.batch_norm`` does."""
    c = x.shape[1]
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None
    bn.num_batches_tracked.add_(1)
    momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    out, mean, unbiased = _SyncedBNFunction.apply(x, bn.weight[:c], bn.bias[:c], bn.eps)
    with torch.no_grad():
        bn.running_mean[:c].mul_(1 - momentum).add_(mean.to(bn.running_mean.dtype), alpha=momentum)
        bn.running_var[:c].mul_(1 - momentum).add_(
            unbiased.to(bn.running_var.dtype), alpha=momentum
        )
    return out


def _ranks_active(module: nn.Module) -> bool:
    return module.training and dist.is_available() and dist.is_initialized()


class RankSyncedBatchNorm2d(DynamicBatchNorm2d):
    """An (elastic) BatchNorm2d whose training statistics cover every rank's batch."""

    def forward(self, x: Tensor) -> Tensor:
        if _ranks_active(self) and self.track_running_stats and self.affine:
            return _synced_batch_norm(self, x)
        return super().forward(x)


class RankSyncedBatchNorm1d(nn.BatchNorm1d):
    """A BatchNorm1d whose training statistics cover every rank's batch."""

    def forward(self, x: Tensor) -> Tensor:
        if _ranks_active(self) and self.track_running_stats and self.affine:
            return _synced_batch_norm(self, x)
        return super().forward(x)


class GlobalBatchDropout(nn.Dropout):
    """Dropout whose mask is this rank's rows of the global batch's mask (the draws of one
    process training the whole batch, so N ranks consume the RNG as one process does)."""

    def __init__(self, p: float, rank: int, world: int) -> None:
        super().__init__(p)
        self.rank, self.world = rank, world

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        full = (x.shape[0] * self.world, *x.shape[1:])
        keep = torch.empty(full, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep[self.rank :: self.world].div_(1.0 - self.p)


def _replacement(module: nn.Module, rank: int, world: int) -> nn.Module | None:
    """The global-batch version of a BN or dropout layer, holding the same parameter and buffer
    objects (an optimizer made before keeps working), or None for any other layer."""
    if isinstance(module, nn.Dropout) and not isinstance(module, GlobalBatchDropout):
        new_drop = GlobalBatchDropout(module.p, rank, world)
        new_drop.train(module.training)
        return new_drop
    new: nn.modules.batchnorm._BatchNorm
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, RankSyncedBatchNorm2d):
        new = RankSyncedBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine)
    elif isinstance(module, nn.BatchNorm1d) and not isinstance(module, RankSyncedBatchNorm1d):
        new = RankSyncedBatchNorm1d(module.num_features, module.eps, module.momentum, module.affine)
    else:
        return None
    new.weight, new.bias = module.weight, module.bias
    new.running_mean, new.running_var = module.running_mean, module.running_var
    new.num_batches_tracked = module.num_batches_tracked
    new.train(module.training)
    return new


def to_global_batch(model: nn.Module, rank: int, world: int) -> nn.Module:
    """Replace (in place) every BatchNorm and Dropout of ``model`` by its global-batch version;
    parameter and buffer names stay, so checkpoints are the same as one process's."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = _replacement(child, rank, world)
            if new is not None:
                setattr(parent, name, new)
    return model


# --- process group ------------------------------------------------------------------------------


def rank_device(spec: str, local_rank: int) -> torch.device:
    """The device of local rank ``local_rank``: ``cuda`` / ``auto`` with GPUs spread the ranks
    over the visible GPUs (several ranks may share one); ``cuda:N`` pins every rank to GPU N."""
    device = resolve_device(spec)
    if device.type == "cuda" and spec in ("auto", "cuda"):
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


def _own_gpu_per_rank(spec: str) -> bool:
    """Whether this machine's ranks each have a GPU of their own (NCCL refuses two ranks on one
    GPU; ranks that share one talk through Gloo, which handles CUDA tensors too)."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return spec in ("auto", "cuda") and local_world <= torch.cuda.device_count()


def init_from_env(cfg: ExperimentConfig) -> DistContext:
    """Join the process group torchrun set up (NCCL on GPUs, Gloo on CPUs)."""
    missing = [k for k in _RANK_ENV if k not in os.environ]
    if missing:
        raise ConfigError(
            f"distributed pretraining needs torchrun's {', '.join(missing)}; launch it with "
            "`torchrun --nproc-per-node N -m harmonic_nas pretrain CONFIG`"
        )
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    device = rank_device(cfg.compute.device, local_rank)
    own_gpu = device.type == "cuda" and _own_gpu_per_rank(cfg.compute.device)
    backend = "nccl" if own_gpu else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    ctx = DistContext(rank, world, local_rank, device, backend)
    ctx.check_batch(cfg.pretrain.batch_size)
    logger.info("rank %d/%d on %s (%s)", rank, world, device, backend)
    return ctx


@contextmanager
def process_group(cfg: ExperimentConfig) -> Iterator[DistContext]:
    """The process group of this torchrun rank for the block; destroyed afterwards."""
    ctx = init_from_env(cfg)
    try:
        yield ctx
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def pretrain_distributed(
    cfg: ExperimentConfig,
    dataset: MultimodalDataset,
    modalities: Sequence[str],
    ctx: DistContext,
    *,
    force: bool = False,
    progress: ProgressFn = no_progress,
) -> list[PretrainResult]:
    """Pretrain every modality's supernet one after the other, each across all ranks."""
    from harmonic_nas.pretrain.trainer import pretrain_supernet

    return [
        pretrain_supernet(
            cfg,
            dataset,
            m,
            force=force,
            progress=progress if ctx.is_main else no_progress,
            device=ctx.device,
            dist_ctx=ctx,
        )
        for m in modalities
    ]


__all__ = [
    "DistContext",
    "GlobalBatchDropout",
    "RankSyncedBatchNorm1d",
    "RankSyncedBatchNorm2d",
    "init_from_env",
    "launched_by_torchrun",
    "pretrain_distributed",
    "process_group",
    "rank_batch",
    "rank_device",
    "to_global_batch",
]
