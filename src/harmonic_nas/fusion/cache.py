"""Frozen-backbone feature cache: fusion-point features computed once per candidate.

The backbones are frozen during the fusion search, so their (pooled) fusion-point features are a
fixed function of the input. :func:`compute_feature_cache` BN-recalibrates each backbone on the
train split, then runs it once over train and val (eval mode, no grad) and keeps the pooled
fusion points and the mean of the backbones' own classifier logits (what a ``late_skip`` fusion
network adds to its output). The search then trains on these tensors.
:func:`live_feature_source` gives the same interface but runs the backbones on every batch (for
equivalence tests and benchmarks).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor, nn

from harmonic_nas.errors import DataError
from harmonic_nas.fusion.points import fusion_point_indices, pool_point, pooled_shape
from harmonic_nas.pretrain.bn import bn_recalibrate, calibration_generator
from harmonic_nas.tasks import Task
from harmonic_nas.utils.device import default_device
from harmonic_nas.utils.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from harmonic_nas.data.types import MultimodalDataset

logger = logging.getLogger(__name__)


class FeatureSplit(Protocol):
    """One split's fusion-point features, batch by batch."""

    labels: Tensor

    def __len__(self) -> int: ...

    def batch(self, idx: Tensor) -> list[Tensor]:
        """The pooled fusion points (one tensor per point) of the samples ``idx``."""
        ...

    def late_logits(self, idx: Tensor) -> Tensor | None:
        """The mean of the backbones' own classifier logits of the samples ``idx`` (None when a
        backbone returns no logits)."""
        ...


@dataclass
class CachedSplit:
    """Pooled fusion points held in memory (on the search device)."""

    points: list[Tensor]
    labels: Tensor
    late: Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, idx: Tensor) -> list[Tensor]:
        return [p.index_select(0, idx) for p in self.points]

    def late_logits(self, idx: Tensor) -> Tensor | None:
        return None if self.late is None else self.late.index_select(0, idx)


@dataclass
class LiveSplit:
    """Runs the frozen backbones on every batch (no cache); same outputs as :class:`CachedSplit`.

    The backbones run once per batch: :meth:`batch` and :meth:`late_logits` of the same ``idx``
    (what every training and evaluation step asks for, in that order) share one pass."""

    backbones: dict[str, nn.Module]
    inputs: dict[str, Tensor]
    point_refs: list[tuple[str, int]]
    L: int
    labels: Tensor
    _last: tuple[Tensor, list[Tensor], Tensor | None] | None = field(
        default=None, init=False, repr=False
    )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @torch.no_grad()
    def _run(self, idx: Tensor) -> tuple[list[Tensor], Tensor | None]:
        if self._last is not None and self._last[0] is idx:
            return self._last[1], self._last[2]
        outs = {
            m: _outputs(bb, self.inputs[m].index_select(0, idx)) for m, bb in self.backbones.items()
        }
        points = [pool_point(outs[m][0][k], self.L) for m, k in self.point_refs]
        late = mean_logits([o[1] for o in outs.values()])
        self._last = (idx, points, late)
        return points, late

    def batch(self, idx: Tensor) -> list[Tensor]:
        return self._run(idx)[0]

    def late_logits(self, idx: Tensor) -> Tensor | None:
        return self._run(idx)[1]


@dataclass
class FeatureCache:
    """Fusion-point features of some splits, plus what the fusion network needs to know.

    ``point_refs[i] = (modality, feature_index)`` names fusion point ``i`` (modalities in the
    order of the backbones dict); ``point_shapes[i]`` is its pooled shape (without batch);
    ``feature_shapes[m]`` lists the shapes of ALL feature maps of modality ``m`` (for costing).
    """

    splits: dict[str, FeatureSplit]
    point_refs: list[tuple[str, int]]
    point_shapes: list[tuple[int, ...]]
    feature_shapes: dict[str, list[tuple[int, ...]]]
    L: int
    fusion_points: int
    task: Task
    n_classes: int
    device: torch.device = field(default_factory=default_device)

    @property
    def modalities(self) -> list[str]:
        return list(self.feature_shapes)

    @property
    def n_points(self) -> int:
        return len(self.point_refs)

    def split(self, name: str) -> FeatureSplit:
        if name not in self.splits:
            raise DataError(
                f"the feature cache has no split '{name}'; it holds {sorted(self.splits)}"
            )
        return self.splits[name]


def _outputs(backbone: nn.Module, x: Tensor) -> tuple[list[Tensor], Tensor | None]:
    """A backbone's (features, logits); logits None for a backbone returning features only."""
    out = backbone(x)
    pair = isinstance(out, tuple | list) and isinstance(out[0], list | tuple)
    feats = out[0] if pair else out
    if not isinstance(feats, list | tuple) or not feats:
        raise DataError("a backbone must return (features list, logits); got something else")
    logits = out[1] if pair and len(out) > 1 and isinstance(out[1], Tensor) else None
    return list(feats), logits


def _features(backbone: nn.Module, x: Tensor) -> list[Tensor]:
    return _outputs(backbone, x)[0]


def mean_logits(logits: Sequence[Tensor | None]) -> Tensor | None:
    """The mean of the backbones' logits (what ``late-fusion-avg`` predicts and a ``late_skip``
    fusion network adds to its output); None when some backbone gives none."""
    if not logits or any(x is None for x in logits):
        return None
    return torch.stack([x for x in logits if x is not None]).mean(0)


@torch.no_grad()
def probe_feature_shapes(
    backbones: Mapping[str, nn.Module], input_shapes: Mapping[str, Sequence[int]]
) -> dict[str, list[tuple[int, ...]]]:
    """Shapes (without batch) of every feature map each backbone returns, from a dummy pass."""
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for m, bb in backbones.items():
        was = bb.training
        bb.eval()
        p = next(bb.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
        feats = _features(bb, torch.zeros((2, *input_shapes[m]), device=dev))
        bb.train(was)
        shapes[m] = [tuple(f.shape[1:]) for f in feats]
    return shapes


def _check_modalities(backbones: Mapping[str, nn.Module], names: Sequence[str]) -> None:
    if set(backbones) != set(names):
        raise DataError(
            f"the backbones' modalities {sorted(backbones)} do not match the dataset's "
            f"{sorted(names)}; give one backbone per dataset modality"
        )


def _plan(
    backbones: Mapping[str, nn.Module],
    input_shapes: Mapping[str, Sequence[int]],
    L: int,
    fusion_points: int,
) -> tuple[dict[str, list[tuple[int, ...]]], list[tuple[str, int]], list[tuple[int, ...]]]:
    feature_shapes = probe_feature_shapes(backbones, input_shapes)
    refs: list[tuple[str, int]] = []
    shapes: list[tuple[int, ...]] = []
    for m, fs in feature_shapes.items():
        for k in fusion_point_indices(len(fs), fusion_points):
            refs.append((m, k))
            shapes.append(pooled_shape(fs[k], L))
    return feature_shapes, refs, shapes


def _prepare(
    backbones: dict[str, nn.Module],
    dataset: MultimodalDataset,
    L: int,
    fusion_points: int,
    bn_recalib_batches: int,
    batch_size: int,
    device: torch.device,
    seed: int,
) -> tuple[dict[str, list[tuple[int, ...]]], list[tuple[str, int]], list[tuple[int, ...]]]:
    """Check modalities; freeze, move, BN-recalibrate (on a class-stratified random subset of
    train, the same subset for every modality) the backbones; plan the points."""
    _check_modalities(backbones, [m.name for m in dataset.modalities])
    train = dataset.split("train")
    for m, bb in backbones.items():
        bb.to(device)
        for p in bb.parameters():
            p.requires_grad_(False)
        if bn_recalib_batches > 0:
            bn_recalibrate(
                bb,
                train.inputs[m].to(device),
                bn_recalib_batches,
                batch_size,
                labels=train.labels,
                generator=calibration_generator(seed),
            )
        bb.eval()
    input_shapes = {m: tuple(train.inputs[m].shape[1:]) for m in backbones}
    return _plan(backbones, input_shapes, L, fusion_points)


def compute_feature_cache(
    backbones: dict[str, nn.Module],
    dataset: MultimodalDataset,
    splits: Sequence[str] = ("train", "val"),
    *,
    L: int = 16,
    fusion_points: int = 4,
    bn_recalib_batches: int = 20,
    batch_size: int = 256,
    device: torch.device | None = None,
    seed: int = 0,
    progress: ProgressFn = no_progress,
) -> FeatureCache:
    """Freeze the backbones, BN-recalibrate them on train, cache their pooled fusion points.

    ``seed`` (the run's seed) draws the recalibration subset; the same seed gives every candidate
    the same subset.

    ``dataset`` is a :class:`harmonic_nas.data.MultimodalDataset`. The backbones are modified in
    place (frozen, BN statistics re-estimated, eval mode): build the deployable model from the
    same objects so that it computes the cached features exactly.
    """
    device = device or default_device()
    feature_shapes, refs, shapes = _prepare(
        backbones, dataset, L, fusion_points, bn_recalib_batches, batch_size, device, seed
    )
    out: dict[str, FeatureSplit] = {}
    total = sum(len(dataset.split(s)) for s in splits)
    done = 0
    with torch.no_grad():
        for s in splits:
            sp = dataset.split(s)
            n = len(sp)
            points = [torch.empty((n, *shape), device=device) for shape in shapes]
            late: list[Tensor | None] = []
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                outs = {
                    m: _outputs(bb, sp.inputs[m][start:stop].to(device))
                    for m, bb in backbones.items()
                }
                for i, (m, k) in enumerate(refs):
                    points[i][start:stop] = pool_point(outs[m][0][k], L)
                late.append(mean_logits([o[1] for o in outs.values()]))
                done += stop - start
                progress("features", done, total)
            parts = [x for x in late if x is not None]
            whole = torch.cat(parts) if parts and len(parts) == len(late) else None
            out[s] = CachedSplit(points, sp.labels.to(device), whole)
    logger.info("cached %d fusion points for splits %s", len(refs), list(splits))
    return FeatureCache(
        splits=out,
        point_refs=refs,
        point_shapes=shapes,
        feature_shapes=feature_shapes,
        L=L,
        fusion_points=fusion_points,
        task=dataset.task,
        n_classes=int(dataset.num_classes),
        device=device,
    )


def live_feature_source(
    backbones: dict[str, nn.Module],
    dataset: MultimodalDataset,
    splits: Sequence[str] = ("train", "val"),
    *,
    L: int = 16,
    fusion_points: int = 4,
    bn_recalib_batches: int = 20,
    batch_size: int = 256,
    device: torch.device | None = None,
    seed: int = 0,
) -> FeatureCache:
    """Like :func:`compute_feature_cache`, but every batch runs the backbones (no caching)."""
    device = device or default_device()
    feature_shapes, refs, shapes = _prepare(
        backbones, dataset, L, fusion_points, bn_recalib_batches, batch_size, device, seed
    )
    out: dict[str, FeatureSplit] = {}
    for s in splits:
        sp = dataset.split(s)
        out[s] = LiveSplit(
            backbones=dict(backbones),
            inputs={m: sp.inputs[m].to(device) for m in backbones},
            point_refs=refs,
            L=L,
            labels=sp.labels.to(device),
        )
    return FeatureCache(
        splits=out,
        point_refs=refs,
        point_shapes=shapes,
        feature_shapes=feature_shapes,
        L=L,
        fusion_points=fusion_points,
        task=dataset.task,
        n_classes=int(dataset.num_classes),
        device=device,
    )
