"""A Pareto model rebuilt from its run (``arch.json`` + ``weights.pt``) and its deployable wrapper.

:class:`RawInputModel` is the graph an export holds: raw-scale inputs, one named argument per
modality, standardised inside the graph with the train statistics.
"""

from __future__ import annotations

import keyword
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from harmonic_nas.errors import GenomeError, HarmonicError
from harmonic_nas.results._artifacts import model_dir
from harmonic_nas.utils.io import safe_torch_load

#: ``(value_scale, mean, std)`` of one input; mean / std scalar or per channel ``(C, 1, ..., 1)``
InputNorm = tuple[float, float | torch.Tensor, float | torch.Tensor]

if TYPE_CHECKING:
    from harmonic_nas.fusion import ArchSpec, MultimodalNet
    from harmonic_nas.fusion.late import LateFusionNet

logger = logging.getLogger(__name__)


def build_model(arch: ArchSpec) -> MultimodalNet | LateFusionNet:
    """An untrained ``MultimodalNet`` with the structure of ``arch`` (load weights into it).

    Backbones are the static subnets of the arch's genomes (``build_supernet(...).extract``);
    the fusion network is the ``FixedFusionNet`` of its genotype over every fusion point. A late
    fusion (``fusion_mode`` late) is a ``LateFusionNet`` (its combination is in the weights).
    """
    from harmonic_nas.backbones import build_supernet
    from harmonic_nas.fusion import (
        FixedFusionNet,
        MultimodalNet,
        point_refs,
        probe_feature_shapes,
    )
    from harmonic_nas.fusion.late import LateFusionNet
    from harmonic_nas.fusion.points import pooled_shape

    if arch.late_fusion:
        subnets = {
            name: build_supernet((None, ma.shape), ma.preset, arch.n_classes, name)
            .extract(ma.genome)
            .eval()
            for name, ma in arch.modalities.items()
        }
        return LateFusionNet(arch, subnets, torch.zeros(arch.n_classes), "classification").eval()
    if arch.genotype is None:
        raise GenomeError(
            "the architecture has no fusion genotype (the model was not finalised); run "
            "`harmonic-nas search CONFIG` again"
        )
    backbones: dict[str, nn.Module] = {}
    for name, ma in arch.modalities.items():
        supernet = build_supernet((None, ma.shape), ma.preset, arch.n_classes, name)
        backbones[name] = supernet.extract(ma.genome).eval()
    shapes = probe_feature_shapes(backbones, {m: ma.shape for m, ma in arch.modalities.items()})
    points = [pooled_shape(shapes[m][k], arch.L) for m, k in point_refs(arch, shapes)]
    fusion = FixedFusionNet.for_arch(arch, points)
    return MultimodalNet(arch, backbones, fusion).eval()


def load_model(run: Path | str, model_id: str) -> tuple[MultimodalNet | LateFusionNet, ArchSpec]:
    """The Pareto model ``model_id`` of ``run`` as an eval-mode ``MultimodalNet`` and its ArchSpec."""
    from harmonic_nas.fusion import ArchSpec

    d = model_dir(run, model_id)
    arch = ArchSpec.load(d / "arch.json")
    model = build_model(arch)
    state = safe_torch_load(d / "weights.pt", what=f"weights of model '{model_id}'")
    if not isinstance(state, dict):
        raise HarmonicError(f"{d / 'weights.pt'} is not a state dict; rerun the search's finalise")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise HarmonicError(
            f"{d / 'weights.pt'} does not fit {d / 'arch.json'} ({first}); rerun the finalise step"
        ) from None
    model.eval()
    return model, arch


def argument_names(names: Sequence[str]) -> list[str]:
    """Python identifiers for modality names (TorchScript argument names): ``a-b`` -> ``a_b``."""
    out: list[str] = []
    for name in names:
        arg = re.sub(r"\W", "_", name)
        if not arg or arg[0].isdigit() or keyword.iskeyword(arg) or arg == "self":
            arg = f"x_{arg}"
        while arg in out:
            arg += "_"
        out.append(arg)
    return out


class RawInputModel(nn.Module):
    """The deployable graph: raw-scale inputs, one named argument per modality.

    ``forward(<modality>, ...)`` standardises each input inside the graph,
    ``(x * value_scale - mean) / std`` with the train statistics, then runs the
    ``MultimodalNet``. Build it with :meth:`build` (the forward signature names the modalities).
    """

    def __init__(self, net: nn.Module, names: Sequence[str], norm: Sequence[InputNorm]) -> None:
        super().__init__()
        self.net = net
        self.modality_names = list(names)
        for i, (scale, mean, std) in enumerate(norm):
            # mean / std are scalars or per-channel tensors shaped (C, 1, ..., 1)
            self.register_buffer(f"scale{i}", torch.tensor(scale, dtype=torch.float32))
            self.register_buffer(f"mean{i}", torch.as_tensor(mean).to(torch.float32).clone())
            self.register_buffer(f"std{i}", torch.as_tensor(std).to(torch.float32).clone())

    def standardise(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, x in enumerate(xs):
            scale, mean, std = (getattr(self, f"{k}{i}") for k in ("scale", "mean", "std"))
            out.append((x * scale - mean) / std)
        return out

    def run(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.net(*self.standardise(xs))
        return out

    @classmethod
    def build(
        cls, net: nn.Module, names: Sequence[str], norm: Sequence[InputNorm]
    ) -> RawInputModel:
        """An instance whose ``forward`` takes one argument named after each modality."""
        args = argument_names(names)
        src = f"def forward(self, {', '.join(args)}):\n    return self.run([{', '.join(args)}])\n"
        scope: dict[str, Any] = {}
        exec(src, {}, scope)  # the source holds only sanitised identifiers
        named = type("RawInputModel", (cls,), {"forward": scope["forward"]})
        model: RawInputModel = named(net, names, norm)
        return model.eval()


def input_normalisation(meta: dict[str, Any], names: Sequence[str]) -> list[InputNorm]:
    """``(value_scale, mean, std)`` per input from ``preprocess.json`` metadata: ``mean`` and
    ``std`` are floats (``scalar`` mode) or tensors shaped ``(C, 1, ..., 1)`` (``channel`` mode)."""
    from harmonic_nas.data.normalization import stats_tensors

    norm = meta.get("normalization") or {}
    inputs = {str(i["name"]): i for i in meta["inputs"]}
    out: list[InputNorm] = []
    for n in names:
        spec = inputs.get(n, {})
        scale = float(spec.get("raw", {}).get("value_scale", 1.0))
        stats = norm.get(n) or {}
        if isinstance(stats.get("mean"), list):
            mean, std = stats_tensors(stats, len(spec.get("shape", [])))
            out.append((scale, mean.float(), std.float()))
        else:
            out.append((scale, float(stats.get("mean", 0.0)), float(stats.get("std", 1.0))))
    return out


def raw_scale(
    inputs: Sequence[torch.Tensor], norm: Sequence[InputNorm]
) -> tuple[torch.Tensor, ...]:
    """Standardised pipeline inputs back at raw scale: ``(x * std + mean) / value_scale``."""
    out = []
    for x, (scale, mean, std) in zip(inputs, norm, strict=True):
        m = torch.as_tensor(mean, dtype=torch.float64)
        sd = torch.as_tensor(std, dtype=torch.float64)
        out.append(((x.double() * sd + m) / scale).float().contiguous())
    return tuple(out)


def unused_modalities(model: MultimodalNet | LateFusionNet) -> tuple[str, ...]:
    """Modalities whose backbone feeds no fusion point the genotype reads (none with the late
    skip or in a late fusion: every backbone's logits reach the output)."""
    from harmonic_nas.fusion.late import LateFusionNet

    if isinstance(model, LateFusionNet) or model.fusion.late_skip:
        return ()
    used = {mi for mi, _ in model.refs}
    return tuple(m for i, m in enumerate(model.modality_names) if i not in used)
