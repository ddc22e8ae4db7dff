"""The layers a search space can contain, and the layers of one architecture (for costing).

The backbone layers come from :func:`harmonic_nas.backbones.mbv3_layer_specs` (and the Maxout MLP's
``layer_configs``), the fusion layers from :func:`harmonic_nas.fusion.fusion_layer_specs`: this
module only enumerates and adapts, the costing rules live with the models they describe.

Enumeration does not sample: a block's layer depends only on its own (kernel, expand) genes and its
slot (which fixes its input size and stride), so the genomes "every active slot = (k, e), every
stage at maximum depth" for each (k, e) cover every block layer of the space; the fusion reshapes
depend on which feature maps are fusion points, i.e. on the depths, which are enumerated.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from harmonic_nas.backbones import (
    BackboneGenome,
    LayerSpec,
    MaxoutMLP,
    MaxoutPreset,
    MobileNetV3Preset,
    get_preset,
    mbv3_layer_specs,
    validate_genome,
)
from harmonic_nas.errors import GenomeError
from harmonic_nas.hardware.keys import lut_key

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.fusion import ArchSpec

logger = logging.getLogger(__name__)


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
        validate_genome(p, genome)
        return mbv3_layer_specs(p, genome, shape[0], n_classes, shape)
    assert isinstance(p, MaxoutPreset)
    net = _maxout(math.prod(shape), n_classes, preset)
    net.validate(genome)
    return net.layer_configs((math.prod(shape),))


def feature_shapes(specs: Sequence[LayerSpec]) -> list[tuple[int, ...]]:
    """Shapes of a backbone's fusion-point features, from its costed layers.

    CNN: ``[stem, fixed block, block 1, ..., final representation]`` = outputs of the leading conv
    and every mbconv, then the feature mix's output as a vector; Maxout: the hidden layers' outputs.
    """
    if specs and specs[0].kind == "maxout":
        return [s.output_shape() for s in specs if s.kind == "maxout"]
    out = [specs[0].output_shape()]
    out += [s.output_shape() for s in specs if s.kind == "mbconv"]
    out.append((specs[-2].out_ch,))  # the feature mix (before the classifier), pooled: (D,)
    return out


def feature_live_layers(specs: Sequence[LayerSpec]) -> list[int]:
    """For each feature of :func:`feature_shapes`, how many leading layers of ``specs`` compute it.

    Feature ``k`` is the output of layer ``k``, except a CNN's final representation, which is the
    output of the feature mix (every layer but the classifier).
    """
    n = len(feature_shapes(specs))
    counts = list(range(1, n + 1))
    if specs and specs[0].kind != "maxout":
        counts[-1] = len(specs) - 1
    return counts


def all_genomes(preset: str) -> Iterator[BackboneGenome]:
    """Every distinct subnet genome of a preset (inactive genes 0); 7,371 for ``avmnist``."""
    p = get_preset(preset)
    if isinstance(p, MaxoutPreset):
        yield BackboneGenome()
        return
    choices = list(itertools.product(p.ks_choices, p.e_choices))
    per_stage: list[list[tuple[int, tuple[tuple[int, int], ...]]]] = []
    for _ in range(p.n_stages):
        opts = []
        for d in p.d_choices:
            for blocks in itertools.product(choices, repeat=d):
                opts.append((d, blocks))
        per_stage.append(opts)
    for combo in itertools.product(*per_stage):
        ks: list[int] = []
        es: list[int] = []
        ds: list[int] = []
        for d, blocks in combo:
            ds.append(d)
            for j in range(p.max_depth):
                k, e = blocks[j] if j < d else (0, 0)
                ks.append(k)
                es.append(e)
        yield BackboneGenome(tuple(ks), tuple(es), tuple(ds))


def covering_genomes(preset: str) -> list[BackboneGenome]:
    """A few genomes whose layers are, together, every layer of the preset's space."""
    p = get_preset(preset)
    if isinstance(p, MaxoutPreset):
        return [BackboneGenome()]
    out = []
    for k, e in itertools.product(p.ks_choices, p.e_choices):
        for d in sorted(set(p.d_choices)):
            out.append(
                BackboneGenome((k,) * p.n_slots, (e,) * p.n_slots, (d,) * p.n_stages).active(
                    p.max_depth
                )
            )
    return out


def depth_genomes(preset: str) -> list[BackboneGenome]:
    """One genome per depth vector (the depths fix which feature maps are fusion points)."""
    p = get_preset(preset)
    if isinstance(p, MaxoutPreset):
        return [BackboneGenome()]
    k, e = p.ks_choices[0], p.e_choices[0]
    return [
        BackboneGenome((k,) * p.n_slots, (e,) * p.n_slots, tuple(ds)).active(p.max_depth)
        for ds in itertools.product(sorted(set(p.d_choices)), repeat=p.n_stages)
    ]


def distinct(specs: Iterable[LayerSpec]) -> list[LayerSpec]:
    """One spec per LUT key, in first-seen order."""
    seen: dict[str, LayerSpec] = {}
    for s in specs:
        seen.setdefault(lut_key(s), s)
    return list(seen.values())


def preset_space_specs(preset: str, shape: Sequence[int], n_classes: int) -> list[LayerSpec]:
    """Every distinct backbone layer of one modality's search space."""
    return distinct(
        s for g in covering_genomes(preset) for s in backbone_specs(preset, shape, g, n_classes)
    )


# --- fusion -------------------------------------------------------------------------------------


def arch_feature_shapes(arch: ArchSpec) -> dict[str, list[tuple[int, ...]]]:
    """Per modality, the shapes of the backbone's fusion-point candidates."""
    return {
        m: feature_shapes(backbone_specs(ma.preset, ma.shape, ma.genome, arch.n_classes))
        for m, ma in arch.modalities.items()
    }


#: pseudo-operator costing each fusion cell's output ``LayerNorm(last node + x)``
CELL_NORM = "CellNorm"


def cell_norm_spec(C: int, L: int) -> LayerSpec:
    """A fusion cell's residual add + LayerNorm([C, L]) (two (C, L) inputs, like an operator)."""
    return LayerSpec("fusion_op", (C, L), C, C, op=CELL_NORM, C=C, L=L)


def arch_fusion_specs(arch: ArchSpec) -> list[LayerSpec]:
    """Fusion layers of an architecture: ``fusion_layer_specs`` (fusion-point reshapes, one
    operator per node, head) plus one :data:`CELL_NORM` per cell.

    ``fusion_layer_specs`` does not cost the cells' ``LayerNorm(node + x)`` (~5 us per cell at
    C=192, L=16 on a desktop CPU, ~5 % of a small model); it is added here, after the other specs.
    """
    from harmonic_nas.fusion import fusion_layer_specs

    specs = list(fusion_layer_specs(arch, arch_feature_shapes(arch)))
    if arch.genotype is not None and not any(s.op == CELL_NORM for s in specs):
        specs += [cell_norm_spec(arch.C, arch.L) for _ in arch.genotype.cells]
    return specs


def is_operator(spec: LayerSpec) -> bool:
    """A searchable fusion operator (what the paper costs), not a cell norm."""
    return spec.kind == "fusion_op" and spec.op != CELL_NORM


@dataclass(frozen=True)
class LiveGraph:
    """The parts of an architecture's fusion network that its output depends on.

    :class:`~harmonic_nas.fusion.MultimodalNet` computes every part of the genotype, but a node
    no later node reads (except each cell's last), a cell no later cell reads (except the last
    ``multiplier``), the fusion points only dead cells read, and every backbone layer after the
    deepest live fusion point (including the backbone's own head) do not reach the logits: graph
    exporters (ONNX) drop them, so a backend running the exported graph never executes them.
    """

    points: frozenset[int]
    cells: frozenset[int]
    nodes: frozenset[tuple[int, int]]
    backbone_layers: dict[str, int]


def live_graph(arch: ArchSpec) -> LiveGraph:
    """What the model's output depends on (needs ``arch.genotype``).

    Feature ``k`` of a backbone is the output of its ``k``-th costed layer (stem, fixed block,
    blocks... for a CNN; hidden layers for a Maxout MLP), so the live backbone layers of a
    modality are ``specs[: n]`` with ``n`` from :func:`feature_live_layers` for its deepest live
    point (0 when none of its points is live).
    """
    from harmonic_nas.fusion import point_refs

    g = arch.genotype
    if g is None:
        raise GenomeError("the architecture has no genotype; the live layers depend on it")
    shapes = arch_feature_shapes(arch)
    refs = point_refs(arch, shapes)
    n_points = len(refs)
    needed = {n_points + i for i in range(g.n_cells - g.multiplier, g.n_cells)}
    cells: set[int] = set()
    nodes: set[tuple[int, int]] = set()
    for i in range(g.n_cells - 1, -1, -1):
        if n_points + i not in needed:
            continue
        cells.add(i)
        cell = g.cells[i]
        inner = {2 + len(cell.nodes) - 1}  # the last node feeds the cell's output
        for j in range(len(cell.nodes) - 1, -1, -1):
            if 2 + j in inner:
                nodes.add((i, j))
                inner.update(cell.nodes[j].inputs)
        needed.add(cell.inputs[0])  # x: the residual of the cell's output
        if 1 in inner:
            needed.add(cell.inputs[1])
    points = frozenset(i for i in needed if i < n_points)
    live_layers = {
        m: feature_live_layers(backbone_specs(ma.preset, ma.shape, ma.genome, arch.n_classes))
        for m, ma in arch.modalities.items()
    }
    backbone_layers = dict.fromkeys(arch.modalities, 0)
    for i in points:
        m, k = refs[i]
        backbone_layers[m] = max(backbone_layers[m], live_layers[m][k])
    return LiveGraph(
        points=points,
        cells=frozenset(cells),
        nodes=frozenset(nodes),
        backbone_layers=backbone_layers,
    )


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
    from harmonic_nas.fusion import ArchSpec, ModalityArch, point_refs

    n = config_n_classes(cfg) if n_classes is None else n_classes
    fc = cfg.fusion
    C, L = fc.C, fc.L
    specs: list[LayerSpec] = []
    for m in cfg.modalities.values():
        specs += preset_space_specs(m.preset, m.shape, n)
    for op in fc.ops:
        specs.append(LayerSpec("fusion_op", (C, L), C, C, op=op, C=C, L=L))
    specs.append(cell_norm_spec(C, L))
    # reshapes: which maps are fusion points depends on the depths (same rule as fusion_layer_specs)
    for name, m in cfg.modalities.items():
        for genome in depth_genomes(m.preset):
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


def reshape_spec(shape: Sequence[int], C: int, L: int) -> LayerSpec:
    """The fusion-point reshape of a (C_in, H, W) map or (D,) vector (as fusion_layer_specs)."""
    shape = tuple(int(s) for s in shape)
    is_map = len(shape) == 3
    return LayerSpec(
        kind="fusion_reshape",
        input_shape=shape,
        in_ch=shape[0],
        out_ch=C if is_map else C * L,
        kernel=1,
        C=C,
        L=L,
    )


def final_width(preset: str, shape: Sequence[int]) -> int:
    """Width D of a backbone's final representation (the same for every genome of a preset)."""
    genome = covering_genomes(preset)[0]
    return feature_shapes(backbone_specs(preset, shape, genome, 1))[-1][0]


def late_fusion_head_spec(cfg: ExperimentConfig, n_classes: int) -> LayerSpec:
    """The ``late-fusion-linear`` baseline's head: one linear layer over the concatenated final
    representations of every modality's backbone."""
    d = sum(final_width(m.preset, m.shape) for m in cfg.modalities.values())
    return LayerSpec("linear", (d,), d, n_classes, act="none")


def head_spec(multiplier: int, C: int, L: int, n_classes: int) -> LayerSpec:
    """The fusion head on the concat of ``multiplier`` states (as fusion_layer_specs)."""
    return LayerSpec(
        kind="fusion_head",
        input_shape=(multiplier * C, L),
        in_ch=multiplier * C * L,
        out_ch=n_classes,
        use_bn=False,
        C=C,
        L=L,
    )


def check_arch_fits(arch: ArchSpec) -> None:
    """``GenomeError`` (one line) unless every modality's genome fits its preset and shape."""
    for name, ma in arch.modalities.items():
        try:
            backbone_specs(ma.preset, ma.shape, ma.genome, arch.n_classes)
        except GenomeError as exc:
            raise GenomeError(f"modality '{name}': {exc}") from None
