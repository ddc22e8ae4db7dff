"""The layers a search space can contain, and the layers of one architecture (for costing).

The backbone layers come from :func:`harmonic_nas.backbones.mbv3_layer_specs` (and the Maxout MLP's
``layer_configs``), the fusion layers from :func:`harmonic_nas.fusion.fusion_layers`: this
module only enumerates and adapts, the costing rules live with the models they describe.

Enumeration does not sample: a block's layer depends only on its own (kernel, expand) genes and its
slot (which fixes its input size and stride), so the genomes "every active slot = (k, e), every
stage at maximum depth" for each (k, e) cover every block layer of the space; the fusion reshapes
depend on which feature maps are fusion points, i.e. on the depths, which are enumerated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from harmonic_nas.backbones import (
    BackboneGenome,
    BackboneSpace,
    LayerSpec,
    MaxoutMLP,
    MaxoutPreset,
    MLPPreset,
    MobileNetV3Preset,
    TextPreset,
    get_preset,
    mbv3_layer_specs,
)
from harmonic_nas.errors import GenomeError
from harmonic_nas.hardware.keys import lut_key

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.fusion import ArchSpec, FusionLayer, LiveGraph

logger = logging.getLogger(__name__)


#: layer kinds of the flat (vector) backbones: each hidden layer's output is a fusion point
_FLAT = ("maxout", "dense")


@lru_cache(maxsize=64)
def _maxout(in_features: int, n_classes: int, preset: str) -> MaxoutMLP:
    return MaxoutMLP(in_features, n_classes, preset=preset)


def backbone_specs(
    preset: str, shape: Sequence[int], genome: BackboneGenome, n_classes: int
) -> list[LayerSpec]:
    """Costed layers of one backbone subnet (``GenomeError`` if the genome does not fit)."""
    p = get_preset(preset)
    shape = tuple(int(s) for s in shape)
    if isinstance(p, MobileNetV3Preset):
        BackboneSpace.from_preset(p).validate(genome)
        return mbv3_layer_specs(p, genome, shape[0], n_classes, shape)
    if isinstance(p, TextPreset):
        from harmonic_nas.backbones.text import text_layer_specs

        BackboneSpace.from_preset(p).validate(genome)
        return text_layer_specs(p, genome, shape, n_classes)
    if isinstance(p, MLPPreset):
        from harmonic_nas.backbones.tabular import mlp_layer_specs

        BackboneSpace.from_preset(p).validate(genome)
        return mlp_layer_specs(p, genome, math.prod(shape), n_classes)
    assert isinstance(p, MaxoutPreset)
    net = _maxout(math.prod(shape), n_classes, preset)
    net.validate(genome)
    return net.layer_configs((math.prod(shape),))


def feature_shapes(specs: Sequence[LayerSpec]) -> list[tuple[int, ...]]:
    """Shapes of a backbone's fusion-point features, from its costed layers.

    CNN: ``[stem, fixed block, block 1, ..., final representation]`` = outputs of the leading conv
    and every mbconv, then the feature mix's output as a vector; Maxout / MLP: the hidden layers'
    outputs.
    """
    if specs and specs[0].kind == "embedding":  # a text backbone: its 1-D body's features
        return feature_shapes(specs[1:])
    if specs and specs[0].kind in _FLAT:
        return [s.output_shape() for s in specs if s.kind in _FLAT]
    out = [specs[0].output_shape()]
    out += [s.output_shape() for s in specs if s.kind == "mbconv"]
    out.append((specs[-2].out_ch,))  # the feature mix (before the classifier), pooled: (D,)
    return out


def feature_live_layers(specs: Sequence[LayerSpec]) -> list[int]:
    """For each feature of :func:`feature_shapes`, how many leading layers of ``specs`` compute it.

    Feature ``k`` is the output of layer ``k``, except a CNN's final representation, which is the
    output of the feature mix (every layer but the classifier).
    """
    if specs and specs[0].kind == "embedding":
        return [c + 1 for c in feature_live_layers(specs[1:])]
    n = len(feature_shapes(specs))
    counts = list(range(1, n + 1))
    if specs and specs[0].kind not in _FLAT:
        counts[-1] = len(specs) - 1
    return counts


def live_prefix(specs: Sequence[LayerSpec], n_features: int, head: bool = False) -> int:
    """How many leading layers of ``specs`` compute its first ``n_features`` features (every
    layer, the backbone's own classifier included, when its ``head`` is live)."""
    if head:
        return len(specs)
    return feature_live_layers(specs)[n_features - 1] if n_features else 0


def distinct(specs: Iterable[LayerSpec]) -> list[LayerSpec]:
    """One spec per LUT key, in first-seen order."""
    seen: dict[str, LayerSpec] = {}
    for s in specs:
        seen.setdefault(lut_key(s), s)
    return list(seen.values())


def preset_space_specs(preset: str, shape: Sequence[int], n_classes: int) -> list[LayerSpec]:
    """Every distinct backbone layer of one modality's search space."""
    return distinct(
        s
        for g in BackboneSpace.from_preset(preset).covering_genomes()
        for s in backbone_specs(preset, shape, g, n_classes)
    )


# --- fusion -------------------------------------------------------------------------------------


def arch_feature_shapes(arch: ArchSpec) -> dict[str, list[tuple[int, ...]]]:
    """Per modality, the shapes of the backbone's fusion-point candidates."""
    return {
        m: feature_shapes(backbone_specs(ma.preset, ma.shape, ma.genome, arch.n_classes))
        for m, ma in arch.modalities.items()
    }


def arch_fusion_layers(arch: ArchSpec) -> list[FusionLayer]:
    """The fusion layers of an architecture, tagged by role (:func:`fusion.fusion_layers
    <harmonic_nas.fusion.fusion_layers>` on its backbones' feature shapes)."""
    from harmonic_nas.fusion import fusion_layers

    return fusion_layers(arch, arch_feature_shapes(arch))


def arch_fusion_specs(arch: ArchSpec) -> list[LayerSpec]:
    """The specs of :func:`arch_fusion_layers`: reshapes, operators, head, cell norms."""
    return [x.spec for x in arch_fusion_layers(arch)]


def arch_live_graph(arch: ArchSpec) -> LiveGraph:
    """:func:`fusion.live_graph <harmonic_nas.fusion.live_graph>` on the backbones' features."""
    from harmonic_nas.fusion import live_graph

    return live_graph(arch, arch_feature_shapes(arch))


def live_backbone_layers(arch: ArchSpec, live: LiveGraph) -> dict[str, int]:
    """Per modality, how many leading backbone layers (of :func:`backbone_specs`) the output
    depends on: those computing its deepest live feature (0 when none is live; all of them
    when the backbones' classifiers are live)."""
    return {
        m: live_prefix(
            backbone_specs(ma.preset, ma.shape, ma.genome, arch.n_classes),
            live.features[m],
            live.heads,
        )
        for m, ma in arch.modalities.items()
    }


def arch_layer_specs(arch: ArchSpec) -> list[LayerSpec]:
    """Every costed layer of an architecture (backbones in modality order, then fusion)."""
    out: list[LayerSpec] = []
    for ma in arch.modalities.values():
        out += backbone_specs(ma.preset, ma.shape, ma.genome, arch.n_classes)
    return out + arch_fusion_specs(arch)


def config_n_classes(cfg: ExperimentConfig) -> int:
    """The dataset's number of classes (the classifier layers depend on it)."""
    from harmonic_nas.data import load_dataset

    return int(load_dataset(cfg).num_classes)


def space_layer_specs(cfg: ExperimentConfig, n_classes: int | None = None) -> list[LayerSpec]:
    """Every distinct layer of the configured search space: all backbone layers of every
    modality's preset at its input shape, the fusion operators at (C, L), a fusion reshape for
    every feature map any depth choice makes a fusion point, and the head for every multiplier."""
    from harmonic_nas.fusion import (
        ArchSpec,
        ModalityArch,
        cell_norm_spec,
        head_spec,
        operator_spec,
        point_refs,
        reshape_spec,
    )

    n = config_n_classes(cfg) if n_classes is None else n_classes
    fc = cfg.fusion
    C, L = fc.C, fc.L
    specs: list[LayerSpec] = []
    for m in cfg.modalities.values():
        specs += preset_space_specs(m.preset, m.shape, n)
    for op in fc.ops:
        specs.append(operator_spec(op, C, L))
    specs.append(cell_norm_spec(C, L))
    # reshapes: which maps are fusion points depends on the depths (same rule as fusion_layers)
    for name, m in cfg.modalities.items():
        for genome in BackboneSpace.from_preset(m.preset).depth_genomes():
            arch = ArchSpec(
                modalities={name: ModalityArch(m.preset, tuple(m.shape), genome)},
                cells=1,
                nodes=1,
                C=C,
                L=L,
                fusion_points=fc.fusion_points,
                n_classes=n,
            )
            shapes = arch_feature_shapes(arch)
            for mod, k in point_refs(arch, shapes):
                specs.append(reshape_spec(shapes[mod][k], C, L))
    max_cells = max(cfg.search.cells[1], fc.cells)
    for mult in range(1, max_cells + 1):  # any genotype may concatenate up to all its cells
        specs.append(head_spec(mult, C, L, n))
    specs.append(late_fusion_head_spec(cfg, n))  # the late-fusion-linear baseline
    return distinct(specs)


def final_width(preset: str, shape: Sequence[int]) -> int:
    """Width D of a backbone's final representation (the same for every genome of a preset)."""
    genome = BackboneSpace.from_preset(preset).covering_genomes()[0]
    return feature_shapes(backbone_specs(preset, shape, genome, 1))[-1][0]


def late_fusion_head_spec(cfg: ExperimentConfig, n_classes: int) -> LayerSpec:
    """The ``late-fusion-linear`` baseline's head: one linear layer over the concatenated final
    representations of every modality's backbone."""
    d = sum(final_width(m.preset, m.shape) for m in cfg.modalities.values())
    return LayerSpec("linear", (d,), d, n_classes, act="none")


def check_arch_fits(arch: ArchSpec) -> None:
    """``GenomeError`` (one line) unless every modality's genome fits its preset and shape."""
    for name, ma in arch.modalities.items():
        try:
            backbone_specs(ma.preset, ma.shape, ma.genome, arch.n_classes)
        except GenomeError as exc:
            raise GenomeError(f"modality '{name}': {exc}") from None
