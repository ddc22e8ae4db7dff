"""fusion.layers: the fusion part's layers tagged by role, its live graph, the timed modules."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harmonic_nas.backbones import BackboneGenome
from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion import (
    CELL_NORM,
    ArchSpec,
    CellGenotype,
    FixedFusionNet,
    FusionGenotype,
    FusionHead,
    FusionReshape,
    ModalityArch,
    NodeGenotype,
    PointPool,
    cell_norm_spec,
    fusion_layer_module,
    fusion_layers,
    head_spec,
    live_graph,
    reshape_spec,
)
from harmonic_nas.fusion.network import CellNorm

# two modalities with 3 and 2 features: points (fusion_points=1) are image 1, 2 and text 0, 1
SHAPES = {"image": [(4, 8, 8), (6, 4, 4), (12,)], "text": [(5,), (7,)]}


def _arch(genotype: FusionGenotype | None) -> ArchSpec:
    return ArchSpec(
        modalities={
            "image": ModalityArch("avmnist", (1, 28, 28), BackboneGenome()),
            "text": ModalityArch("maxout", (5,), BackboneGenome()),
        },
        cells=2,
        nodes=2,
        genotype=genotype,
        C=4,
        L=4,
        fusion_points=1,
        n_classes=3,
    )


GENO = FusionGenotype(
    (
        # cell 0 (state 4) reads points 0 and 2; its node 0 is dead (node 1 reads x, x)
        CellGenotype((0, 2), (NodeGenotype("Sum", (0, 1)), NodeGenotype("ConcatFC", (0, 0)))),
        # cell 1 (state 5) reads cell 0 and point 3; node 1 reads node 0 and y
        CellGenotype((4, 3), (NodeGenotype("SE1", (0, 1)), NodeGenotype("Sum", (2, 1)))),
    ),
    1,
)


def test_fusion_layers_are_tagged_by_role_and_position() -> None:
    layers = fusion_layers(_arch(GENO), SHAPES)
    assert [(x.role, x.at) for x in layers] == [
        ("point", (0,)),
        ("point", (2,)),
        ("point", (3,)),
        ("node", (0, 0)),
        ("node", (0, 1)),
        ("node", (1, 0)),
        ("node", (1, 1)),
        ("head", ()),
        ("cell_norm", (0,)),
        ("cell_norm", (1,)),
    ]
    assert [x.spec.input_shape for x in layers[:3]] == [(6, 4, 4), (5,), (7,)]
    assert layers[0].spec == reshape_spec((6, 4, 4), 4, 4) and layers[0].spec.out_ch == 4
    assert layers[1].spec.out_ch == 16  # vectors -> Linear(D, C*L)
    assert [x.spec.op for x in layers if x.role == "node"] == ["Sum", "ConcatFC", "SE1", "Sum"]
    assert layers[7].spec == head_spec(1, 4, 4, 3)
    assert layers[8].spec == cell_norm_spec(4, 4) and layers[8].spec.op == CELL_NORM
    with pytest.raises(GenomeError, match="no genotype"):
        fusion_layers(_arch(None), SHAPES)


def test_live_graph_marks_what_the_output_depends_on() -> None:
    arch = _arch(GENO)
    live = live_graph(arch, SHAPES)
    assert live.cells == frozenset({0, 1})
    assert live.nodes == frozenset({(0, 1), (1, 0), (1, 1)})
    assert live.points == frozenset({0, 3})  # cell 0's y (point 2) is read by a dead node only
    assert live.features == {"image": 2, "text": 2}
    dead = [(x.role, x.at) for x in fusion_layers(arch, SHAPES) if not live.is_live(x)]
    assert dead == [("point", (2,)), ("node", (0, 0))]


def test_the_timed_modules_compute_what_the_network_computes() -> None:
    torch.manual_seed(0)
    net = FixedFusionNet([(6, 2, 2), (5,), (7,), (7,)], GENO, C=4, L=4, n_classes=3).eval()
    head, shapes = fusion_layer_module(head_spec(1, 4, 4, 3))
    assert isinstance(head, FusionHead) and shapes == [(4, 4)]
    head.load_state_dict(
        {k: v for k, v in net.state_dict().items() if k.startswith(("head_ln", "classifier"))}
    )
    state = torch.randn(2, 4, 4)
    expected = net.classifier(
        torch.relu(
            torch.nn.functional.layer_norm(state, (4, 4), net.head_ln.weight, net.head_ln.bias)
        ).flatten(1)
    )
    torch.testing.assert_close(head.eval()(state), expected)
    norm, shapes = fusion_layer_module(cell_norm_spec(4, 4))
    assert isinstance(norm, CellNorm) and shapes == [(4, 4), (4, 4)]
    a, b = torch.randn(2, 4, 4), torch.randn(2, 4, 4)
    torch.testing.assert_close(norm(a, b), torch.nn.LayerNorm([4, 4])(a + b))
    reshape, shapes = fusion_layer_module(reshape_spec((6, 8, 8), 4, 4))
    assert isinstance(reshape, FusionReshape) and shapes == [(6, 8, 8)]
    x = torch.randn(2, 6, 8, 8)
    reshape.eval()
    torch.testing.assert_close(reshape(x), reshape.proj(PointPool((6, 8, 8), 4)(x)))
    assert reshape(x).shape == (2, 4, 4)
    with pytest.raises(GenomeError, match="not a fusion layer"):
        fusion_layer_module(replace(reshape_spec((6,), 4, 4), kind="linear"))
