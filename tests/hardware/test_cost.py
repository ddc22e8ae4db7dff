"""CostModel: the DESIGN.md costing rules, the breakdown, missing keys, the fallback predictor."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harmonic_nas.backbones import BackboneGenome, LayerSpec
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import ConfigError, GenomeError, LUTError
from harmonic_nas.fusion import ArchSpec, CellGenotype, FusionGenotype, ModalityArch, NodeGenotype
from harmonic_nas.hardware.cost import Cost, CostModel
from harmonic_nas.hardware.features import macs
from harmonic_nas.hardware.inventory import (
    arch_fusion_specs,
    arch_live_graph,
    backbone_specs,
    live_backbone_layers,
    space_layer_specs,
)
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry
from harmonic_nas.hardware.reference import import_reference_lut

from .conftest import reference_files

G = BackboneGenome(ks=(7, 3, 5, 3), e=(3, 6, 4, 4), d=(3,))


def test_avmnist_costing_rules() -> None:
    specs = backbone_specs("avmnist", (1, 28, 28), G, 10)
    kinds = ["conv", "mbconv", "mbconv", "mbconv", "mbconv", "conv", "conv", "linear"]
    assert [s.kind for s in specs] == kinds
    stem, fixed, b1, b2, b3, expand, mix, clf = specs
    assert (stem.input_shape, stem.kernel, stem.stride, stem.out_ch) == ((1, 28, 28), 3, 2, 16)
    assert (fixed.input_shape, fixed.expand, fixed.mid_ch, fixed.kernel) == ((16, 14, 14), 1, 0, 3)
    assert (b1.input_shape, b1.stride, b1.kernel, b1.expand, b1.mid_ch) == (
        (16, 14, 14),
        2,
        7,
        3,
        48,
    )
    assert (b2.input_shape, b2.stride, b2.kernel, b2.mid_ch) == ((24, 7, 7), 1, 3, 144)
    assert (b3.input_shape, b3.kernel, b3.mid_ch) == ((24, 7, 7), 5, 96)  # 4th gene inactive (d=3)
    assert (expand.input_shape, expand.out_ch, expand.kernel) == ((24, 7, 7), 40, 1)
    assert (mix.input_shape, mix.out_ch, mix.use_bn) == ((40, 1, 1), 80, False)
    assert (clf.input_shape, clf.out_ch) == ((80,), 10)
    # audio 20x20: 10x10 after the stem, 5x5 after the strided block
    audio = backbone_specs("avmnist", (1, 20, 20), G, 10)
    assert audio[1].input_shape == (16, 10, 10) and audio[3].input_shape == (24, 5, 5)


def test_spatial_sizes_use_ceil() -> None:
    specs = backbone_specs("avmnist", (1, 29, 29), G, 10)
    assert specs[1].input_shape[1:] == (15, 15)  # ceil(29 / 2)
    assert specs[3].input_shape[1:] == (8, 8)  # ceil(15 / 2)
    assert specs[5].input_shape[1:] == (8, 8)  # final expand at the last spatial size


def test_genome_that_does_not_fit_is_a_genome_error() -> None:
    with pytest.raises(GenomeError, match="kernel 4"):
        backbone_specs("avmnist", (1, 28, 28), BackboneGenome((4, 3, 3, 3), (3,) * 4, (2,)), 10)
    with pytest.raises(GenomeError, match="depth"):
        backbone_specs("avmnist", (1, 28, 28), BackboneGenome((3,) * 4, (3,) * 4, (5,)), 10)
    with pytest.raises(ConfigError):
        backbone_specs("avmnist", (28, 28), G, 10)


def _genotype(
    ops: list[list[str]], cell_inputs: list[tuple[int, int]], mult: int = 1
) -> FusionGenotype:
    cells = []
    for cell_ops, inputs in zip(ops, cell_inputs, strict=True):
        nodes = tuple(
            NodeGenotype(op, (0, 1) if j == 0 else (1 + j, 0)) for j, op in enumerate(cell_ops)
        )
        cells.append(CellGenotype(inputs, nodes))
    return FusionGenotype(tuple(cells), mult)


def _arch(
    genotype: FusionGenotype | None, C: int = 192, L: int = 16, cells: int = 2, nodes: int = 2
) -> ArchSpec:
    return ArchSpec(
        modalities={
            "image": ModalityArch("avmnist", (1, 28, 28), G),
            "audio": ModalityArch("avmnist", (1, 20, 20), BackboneGenome((3,) * 4, (6,) * 4, (4,))),
        },
        cells=cells,
        nodes=nodes,
        genotype=genotype,
        C=C,
        L=L,
        n_classes=10,
    )


def test_breakdown_with_the_published_tx2_table(reference_dir: Path) -> None:
    lut = import_reference_lut(reference_files(reference_dir, "tx2"), "jetson-tx2")
    g = _genotype([["ScaleDotAttn", "Sum"], ["LinearGLU", "SE1"]], [(3, 7), (0, 8)])
    arch = _arch(g)
    model = CostModel(lut)
    bb = model.backbone_costs(arch)
    for m, ma in arch.modalities.items():
        keys = [lut_key(s) for s in backbone_specs(ma.preset, ma.shape, ma.genome, 10)]
        assert bb[m].latency_ms == pytest.approx(sum(lut.entries[k].latency_ms for k in keys))
        assert bb[m].energy_mj == pytest.approx(sum(lut.entries[k].energy_mj for k in keys))
    # the published tables have no reshape/head entries: a clear error naming the key...
    with pytest.raises(LUTError) as info:
        model.cost_arch(arch)
    assert "FusionReshape-input:1_" in str(info.value) and "\n" not in str(info.value)
    # ...and with the fallback predictor on, those kinds (of which the table has no entry at all)
    # are never fitted from backbone or operator measurements: not costed, flagged, left out
    cost = CostModel(lut, fallback=True).cost_arch(arch)
    ops = ["ScaleDotAttn", "Sum", "LinearGLU", "SE1"]
    op_lat = sum(lut.op_costs(192, 16, ops)[o][0] for o in ops)
    assert cost.fusion_ops.latency_ms == pytest.approx(op_lat)
    assert not cost.fusion_ops.predicted and not cost.fusion_ops.uncosted_keys
    assert not cost.predicted_keys
    assert cost.fusion_extra.latency_ms == 0.0 and cost.fusion_extra.energy_mj == 0.0
    assert cost.uncosted_keys and all(
        k.startswith(("FusionReshape", "FusionHead", "CellNorm")) for k in cost.uncosted_keys
    )
    assert sum(k.startswith("CellNorm") for k in cost.uncosted_keys) == 1  # one key, 2 cells
    assert cost.paper_total.latency_ms == pytest.approx(
        bb["image"].latency_ms + bb["audio"].latency_ms + op_lat
    )
    # imported tables: no overhead, nothing pruned (the paper summed every layer)
    assert cost.pruned == Cost() and cost.overhead == Cost()
    assert cost.total.latency_ms == pytest.approx(
        cost.paper_total.latency_ms + cost.fusion_extra.latency_ms
    )
    assert cost.to_json()["paper_total"]["latency_ms"] == pytest.approx(cost.paper_total.latency_ms)


def _flat_lut(cfg: ExperimentConfig, backend: str = "onnxruntime") -> LUT:
    """Every layer of the space costs 1 ms and 2 mJ; the per-model overhead 0.5 ms, 1 mJ."""
    entries = {lut_key(s): LUTEntry.point(1.0, 2.0) for s in space_layer_specs(cfg, 10)}
    return LUT(
        DeviceInfo("host", backend=backend, threads=1),
        "model:test",
        entries,
        overhead=LUTEntry.point(0.5, 1.0),
    )


def test_total_counts_layers_and_overhead(small_cfg: ExperimentConfig) -> None:
    g = _genotype([["Sum", "ConcatFC"], ["SE1", "Sum"]], [(3, 7), (8, 0)], mult=2)
    arch = _arch(g, C=8, L=4)
    cost = CostModel(_flat_lut(small_cfg, backend="torch")).cost_arch(arch)
    n_bb = {
        m: len(backbone_specs(a.preset, a.shape, a.genome, 10)) for m, a in arch.modalities.items()
    }
    fusion = arch_fusion_specs(arch)
    assert cost.per_modality["image"].latency_ms == n_bb["image"]
    assert cost.fusion_ops.latency_ms == 4
    assert cost.fusion_extra.latency_ms == len(fusion) - 4
    assert cost.paper_total.latency_ms == sum(n_bb.values()) + 4
    assert cost.total.latency_ms == sum(n_bb.values()) + len(fusion) + 0.5
    assert cost.total.energy_mj == 2 * (sum(n_bb.values()) + len(fusion)) + 1.0


def test_live_graph_and_pruning(small_cfg: ExperimentConfig) -> None:
    # image has 5 maps (stem, fixed, 3 blocks) + its final vector -> maps 1..4 = global points
    # 0..3, the final vector point 4; audio has 6 maps -> its last 4 = global points 5..8, its
    # final vector point 9. Cell 0 reads image point 3 (the image's last map) and image point 0;
    # its node 0 is dead (node 1 reads only x and node 0?)
    g = FusionGenotype(
        (
            CellGenotype((3, 0), (NodeGenotype("ConcatFC", (0, 1)), NodeGenotype("Sum", (0, 0)))),
            CellGenotype((10, 6), (NodeGenotype("SE1", (0, 1)), NodeGenotype("Sum", (2, 0)))),
        ),
        1,
    )
    arch = _arch(g, C=8, L=4)
    live = arch_live_graph(arch)
    # output = last cell (mult 1); cell 1 reads state 10 (cell 0) as x and audio point 6 (node 0 reads y)
    assert live.cells == frozenset({0, 1})
    assert live.nodes == frozenset({(0, 1), (1, 0), (1, 1)})  # cell 0 node 0 is dead
    assert live.points == frozenset({3, 6})  # cell 0 never reads y (point 0): its reader is dead
    # image point 3 = its 5th map (last block): 5 live layers; audio point 6 = its 4th map
    assert live.features == {"image": 5, "audio": 4}  # image map 4 (5th), audio map 3 (4th)
    assert live_backbone_layers(arch, live) == {"image": 5, "audio": 4}
    flat = CostModel(_flat_lut(small_cfg))  # onnxruntime: prunes
    cost = flat.cost_arch(arch)
    n_img = len(backbone_specs("avmnist", (1, 28, 28), G, 10))  # 8
    n_aud = len(backbone_specs("avmnist", (1, 20, 20), arch.modalities["audio"].genome, 10))  # 9
    dead = (n_img - 5) + (n_aud - 4) + 1 + 1  # backbone tails, reshape of point 0, dead op
    assert cost.pruned.latency_ms == dead
    assert (
        cost.total.latency_ms
        == cost.paper_total.latency_ms + cost.fusion_extra.latency_ms + 0.5 - dead
    )
    # an eager backend runs everything
    eager = CostModel(_flat_lut(small_cfg, backend="torch")).cost_arch(arch)
    assert eager.pruned == Cost()


def test_cost_arch_needs_a_genotype(small_cfg: ExperimentConfig) -> None:
    model = CostModel(_flat_lut(small_cfg))
    arch = _arch(None, C=8, L=4)
    with pytest.raises(GenomeError, match="genotype"):
        model.cost_arch(arch)
    assert model.cost_backbones(arch).latency_ms == 8 + 9


def test_missing_key_names_it(small_cfg: ExperimentConfig) -> None:
    lut = _flat_lut(small_cfg)
    spec = LayerSpec("linear", (80,), 80, 7)
    with pytest.raises(LUTError, match="LinearLayer-input:80-in_ch:80-out_ch:7"):
        CostModel(lut).cost_layers([spec])
    c = CostModel(lut, fallback=True).cost_layers([spec])
    assert c.predicted_keys == ("LinearLayer-input:80-in_ch:80-out_ch:7",)
    assert not c.uncosted_keys


def test_fallback_predictor_recovers_a_linear_law() -> None:
    def law(s: LayerSpec) -> float:
        return 0.01 + 2e-7 * macs(s)

    known = [
        LayerSpec("mbconv", (24, 7, 7), 24, 24, mid_ch=24 * e, expand=e, kernel=k)
        for k in (3, 5, 7)
        for e in (3, 4)
    ]
    lut = LUT(
        DeviceInfo("host"),
        "model:test",
        {lut_key(s): LUTEntry.point(law(s), 10 * law(s)) for s in known},
    )
    unseen = LayerSpec("mbconv", (24, 7, 7), 24, 24, mid_ch=144, expand=6, kernel=5)
    cost = CostModel(lut, fallback=True).layer_cost(unseen)
    assert cost.predicted_keys == (lut_key(unseen),)
    assert cost.latency_ms == pytest.approx(law(unseen), rel=0.05)
    assert cost.energy_mj == pytest.approx(10 * law(unseen), rel=0.05)
    # a kind with no entries is never fitted from another kind: not costed, flagged
    other = CostModel(lut, fallback=True).layer_cost(LayerSpec("linear", (80,), 80, 10))
    assert not other.predicted and other.latency_ms == 0.0 and other.energy_mj == 0.0
    assert other.uncosted_keys == ("LinearLayer-input:80-in_ch:80-out_ch:10",)
    # known keys are never flagged
    assert not CostModel(lut, fallback=True).cost_layers(known).predicted


def test_op_costs(small_cfg: ExperimentConfig) -> None:
    model = CostModel(_flat_lut(small_cfg))
    assert model.op_costs(8, 4, ["Sum", "SE1"]) == {"Sum": (1.0, 2.0), "SE1": (1.0, 2.0)}
    with pytest.raises(LUTError, match="Sum-input:1_16_4"):
        model.op_costs(16, 4, ["Sum"])


def test_cell_norms_are_costed_as_fusion_extra_and_pruned_with_dead_cells(
    small_cfg: ExperimentConfig,
) -> None:
    # cell 1 (the output, multiplier 1) reads audio points 5 and 8, never cell 0: cell 0 is dead
    g = FusionGenotype(
        (
            CellGenotype((3, 2), (NodeGenotype("ConcatFC", (0, 1)),)),
            CellGenotype((5, 8), (NodeGenotype("SE1", (0, 1)),)),
        ),
        1,
    )
    arch = _arch(g, C=8, L=4, cells=2, nodes=1)
    fusion = arch_fusion_specs(arch)
    norms = [s for s in fusion if s.op == "CellNorm"]
    assert len(norms) == 2 and lut_key(norms[0]) == "CellNorm-input:1_8_4-N:1-C:8-L:4"
    live = arch_live_graph(arch)
    assert live.cells == frozenset({1}) and live.points == frozenset({5, 8})
    assert live_backbone_layers(arch, live)["image"] == 0  # no live image point: all dead
    assert live.features["image"] == 0
    cost = CostModel(_flat_lut(small_cfg)).cost_arch(arch)
    assert cost.fusion_ops.latency_ms == 2  # the two operators (paper)
    assert cost.fusion_extra.latency_ms == len(fusion) - 2  # reshapes, head, 2 cell norms
    n_img, n_aud = 8, 9
    # image backbone, audio tail after its 5th map (point 8 = audio map 5), 2 image reshapes,
    # cell 0's operator and its norm
    dead = n_img + (n_aud - 6) + 2 + 1 + 1
    assert cost.pruned.latency_ms == dead

    # with the late skip the backbones' own classifiers are live, and so is every backbone layer:
    # only the dead fusion layers (2 image reshapes, cell 0's operator and norm) are pruned
    skip = dataclasses.replace(arch, late_skip=True)
    live = arch_live_graph(skip)
    assert live.heads and live.features == {"image": 6, "audio": 7}
    assert live_backbone_layers(skip, live) == {"image": n_img, "audio": n_aud}
    assert live.cells == frozenset({1})  # the fusion's own live graph is unchanged
    cost = CostModel(_flat_lut(small_cfg)).cost_arch(skip)
    assert cost.pruned.latency_ms == 2 + 1 + 1


def test_fallback_never_fits_a_fusion_operator_from_backbone_layers(reference_dir: Path) -> None:
    """With only the published TX2 backbone table, fusion operators are not costed (the old
    predictor invented 3.9 ms for each); the search's hardware term refuses them."""
    files = [f for f in reference_files(reference_dir, "tx2") if "fusion" not in f.name]
    lut = import_reference_lut(files, "jetson-tx2")
    model = CostModel(lut, fallback=True)
    spec = LayerSpec("fusion_op", (192, 16), 192, 192, op="ScaleDotAttn", C=192, L=16)
    c = model.layer_cost(spec)
    assert c.latency_ms == 0.0 and c.uncosted_keys == (lut_key(spec),)
    with pytest.raises(LUTError, match="no entry of fusion operator ScaleDotAttn"):
        model.op_costs(192, 16, ["ScaleDotAttn"])


def test_fallback_predicts_an_operator_from_its_own_sizes(small_cfg: ExperimentConfig) -> None:
    specs = [LayerSpec("fusion_op", (c, 4), c, c, op="ConcatFC", C=c, L=4) for c in (8, 16, 32)] + [
        LayerSpec("fusion_op", (8, 4), 8, 8, op="Sum", C=8, L=4)
    ]
    lut = LUT(
        DeviceInfo("host", backend="onnxruntime", threads=1),
        "model:test",
        {lut_key(s): LUTEntry.point(0.001 * macs(s) + 0.01, 1.0) for s in specs},
    )
    model = CostModel(lut, fallback=True)
    want = LayerSpec("fusion_op", (24, 4), 24, 24, op="ConcatFC", C=24, L=4)
    c = model.layer_cost(want)
    assert c.predicted_keys == (lut_key(want),)
    assert c.latency_ms == pytest.approx(0.001 * macs(want) + 0.01, rel=0.1)
    # an operator of which the table has one size only is scaled from it, never from ConcatFC
    s16 = model.layer_cost(LayerSpec("fusion_op", (16, 4), 16, 16, op="Sum", C=16, L=4))
    assert s16.predicted and s16.latency_ms < 0.5


def test_a_late_fusion_costs_every_backbone_layer_and_no_fusion_layer(
    small_cfg: ExperimentConfig,
) -> None:
    late = dataclasses.replace(_arch(None, C=8, L=4), late_fusion=True)
    n_bb = {
        m: len(backbone_specs(a.preset, a.shape, a.genome, 10)) for m, a in late.modalities.items()
    }
    for backend in ("onnxruntime", "torch"):
        cost = CostModel(_flat_lut(small_cfg, backend=backend)).cost_arch(late)
        assert cost.pruned == Cost()  # every classifier is live: nothing is dropped
        assert cost.fusion_ops == Cost() and cost.fusion_extra == Cost()
        assert cost.total.latency_ms == sum(n_bb.values()) + 0.5
    live = arch_live_graph(late)
    assert live.heads and not live.points and live.features == {"image": 6, "audio": 7}
