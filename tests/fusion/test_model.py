"""The deployable MultimodalNet, costing specs, the genotype diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harmonic_nas.backbones import build_supernet
from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion import (
    ArchSpec,
    CellGenotype,
    FixedFusionNet,
    FusionGenotype,
    ModalityArch,
    MultimodalNet,
    NodeGenotype,
    compute_feature_cache,
    draw_genotype,
    fusion_layer_specs,
    probe_feature_shapes,
    search_fusion,
)
from harmonic_nas.fusion.model import live_parameters
from tests.fusion.conftest import make_backbones, make_dataset, small_fcfg

CPU = torch.device("cpu")


def toy_arch(
    genotype: FusionGenotype | None, C: int = 8, L: int = 4, late_skip: bool = True
) -> ArchSpec:
    return ArchSpec(
        modalities={
            "image": ModalityArch("toy", (1, 12, 12), BackboneGenome()),
            "vec": ModalityArch("toy", (8,), BackboneGenome()),
        },
        cells=genotype.n_cells if genotype else 2,
        nodes=genotype.n_nodes if genotype else 2,
        genotype=genotype,
        C=C,
        L=L,
        n_classes=4,
        late_skip=late_skip,
    )


@pytest.fixture(scope="module")
def searched() -> tuple[ArchSpec, MultimodalNet, object]:
    torch.manual_seed(0)
    ds = make_dataset(n_train=96, n_val=48)
    bbs = make_backbones()
    cache = compute_feature_cache(bbs, ds, L=4, bn_recalib_batches=2, batch_size=32, device=CPU)
    res = search_fusion(
        cache, small_fcfg(epochs=2, retrain_epochs=2), cells=2, nodes=2, seed=0, device=CPU
    )
    arch = toy_arch(res.genotype)
    model = MultimodalNet(arch, bbs, res.net).eval()
    return arch, model, (ds, cache, res)


def test_multimodal_net_equals_fixed_net_on_cached_features(searched: tuple) -> None:
    _arch, model, (ds, cache, res) = searched
    val = ds.split("val")
    logits = model(val.inputs["image"][:10], val.inputs["vec"][:10])
    pts = cache.split("val").batch(torch.arange(10))
    late = cache.split("val").late_logits(torch.arange(10))
    ref = res.net([pts[i] for i in res.net.used_points], late)
    torch.testing.assert_close(logits, ref, rtol=1e-5, atol=1e-5)
    assert logits.shape == (10, 4)
    # the late skip adds exactly the mean of the backbones' own logits
    x = [val.inputs["image"][:10], val.inputs["vec"][:10]]
    own = torch.stack([bb(v)[1] for bb, v in zip(model.backbones, x, strict=True)]).mean(0)
    torch.testing.assert_close(late, own, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        res.net([pts[i] for i in res.net.used_points], torch.zeros_like(late)) + own,
        logits,
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="late_skip needs"):
        res.net([pts[i] for i in res.net.used_points])


def test_trace_and_script(searched: tuple, tmp_path: Path) -> None:
    _arch, model, (ds, cache, res) = searched
    val = ds.split("val")
    x = (val.inputs["image"][:4], val.inputs["vec"][:4])
    traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(*x), model(*x))
    other = (val.inputs["image"][4:9], val.inputs["vec"][4:9])
    torch.testing.assert_close(traced(*other), model(*other))  # batch size is not baked in
    scripted = torch.jit.script(res.net)
    pts = cache.split("val").batch(torch.arange(5))
    used = [pts[i] for i in res.net.used_points]
    late = cache.split("val").late_logits(torch.arange(5))
    torch.testing.assert_close(scripted(used, late), res.net(used, late))
    torch.jit.save(traced, str(tmp_path / "m.pt"))
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "m.pt"))(*x), model(*x))


@pytest.mark.slow
def test_onnx_export_matches_onnxruntime(searched: tuple, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    _arch, model, (ds, _cache, _res) = searched
    val = ds.split("val")
    x = (val.inputs["image"][:3], val.inputs["vec"][:3])
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        model,
        x,
        str(path),
        input_names=["image", "vec"],
        output_names=["logits"],
        dynamo=False,
        dynamic_axes={"image": {0: "b"}, "vec": {0: "b"}, "logits": {0: "b"}},
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": x[0].numpy(), "vec": x[1].numpy()})[0]
    np.testing.assert_allclose(out, model(*x).detach().numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("late_skip", [False, True])
def test_real_backbones_trace_and_onnx(tmp_path: Path, late_skip: bool) -> None:
    """avmnist + maxout subnets: maps that do not divide sqrt(L) evenly still export."""
    ort = pytest.importorskip("onnxruntime")
    img = build_supernet(("image", (1, 28, 28)), "avmnist", 10, "image")
    txt = build_supernet(("text", (20,)), "maxout", 10, "text")
    g_img = img.min_genome()
    bbs = {"image": img.extract(g_img).eval(), "text": txt.extract(txt.max_genome()).eval()}
    arch = ArchSpec(
        modalities={
            "image": ModalityArch("avmnist", (1, 28, 28), g_img),
            "text": ModalityArch("maxout", (20,), txt.max_genome()),
        },
        cells=2,
        nodes=1,
        C=8,
        L=9,
        n_classes=10,
        genotype=FusionGenotype(
            (
                CellGenotype((0, 5), (NodeGenotype("ScaleDotAttn", (0, 1)),)),
                CellGenotype((7, 6), (NodeGenotype("SE1", (0, 1)),)),
            ),
            2,
        ),
        late_skip=late_skip,
    )
    shapes = probe_feature_shapes(bbs, {"image": (1, 28, 28), "text": (20,)})
    from harmonic_nas.fusion.cache import _plan

    _, refs, point_shapes = _plan(bbs, {"image": (1, 28, 28), "text": (20,)}, 9, 4)
    assert len(refs) == 7  # 4 image maps + the image's final vector + 2 Maxout hidden layers
    assert point_shapes[4] == (80,)  # the image backbone's final representation
    fixed = FixedFusionNet(
        point_shapes,
        arch.genotype,  # type: ignore[arg-type]
        C=8,
        L=9,
        n_classes=10,
        late_skip=late_skip,
    ).eval()
    model = MultimodalNet(arch, bbs, fixed).eval()
    x = (torch.randn(2, 1, 28, 28), torch.randn(2, 20))
    assert model(*x).shape == (2, 10)
    traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(*x), model(*x))
    path = tmp_path / "real.onnx"
    torch.onnx.export(model, x, str(path), input_names=["image", "text"], dynamo=False)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x[0].numpy(), "text": x[1].numpy()}
    )[0]
    np.testing.assert_allclose(out, model(*x).detach().numpy(), rtol=1e-4, atol=1e-4)
    specs = fusion_layer_specs(arch, shapes)
    reshapes = [s for s in specs if s.kind == "fusion_reshape"]
    assert [s.input_shape for s in reshapes] == [shapes["image"][refs[0][1]], (128,), (256,)]
    assert reshapes[1].out_ch == 8 * 9  # vectors -> Linear(D, C*L)


def test_fusion_layer_specs(searched: tuple) -> None:
    arch, _model, (_ds, cache, res) = searched
    specs = fusion_layer_specs(arch, cache.feature_shapes)
    kinds = [s.kind for s in specs]
    g = arch.genotype
    assert kinds.count("fusion_op") == g.n_cells * g.n_nodes
    assert [s.op for s in specs if s.kind == "fusion_op"] == g.ops
    assert kinds.count("fusion_reshape") == len(res.net.used_points)
    assert kinds[-1] == "fusion_head" and kinds.count("fusion_head") == 1
    head = specs[-1]
    assert head.input_shape == (g.multiplier * 8, 4) and head.out_ch == 4
    for s in specs:
        assert (s.C, s.L) == (8, 4)
        if s.kind == "fusion_op":
            assert s.input_shape == (8, 4) and s.output_shape() == (8, 4)
    with pytest.raises(GenomeError, match="no genotype"):
        fusion_layer_specs(arch.with_genotype(None), cache.feature_shapes)


def test_multimodal_net_rejects_mismatch(searched: tuple) -> None:
    arch, _model, (_ds, _cache, res) = searched
    with pytest.raises(GenomeError, match="do not match"):
        MultimodalNet(arch, {"image": make_backbones()["image"]}, res.net)
    with pytest.raises(GenomeError, match="no genotype"):
        MultimodalNet(arch.with_genotype(None), make_backbones(), res.net)
    with pytest.raises(GenomeError, match="late_skip=False but the fusion network"):
        MultimodalNet(toy_arch(arch.genotype, late_skip=False), make_backbones(), res.net)


def test_draw_genotype(searched: tuple, tmp_path: Path) -> None:
    arch, _model, (_ds, cache, _res) = searched
    path = draw_genotype(arch, tmp_path / "sub" / "g.png", feature_shapes=cache.feature_shapes)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(GenomeError):
        draw_genotype(arch.with_genotype(None), tmp_path / "x.png", cache.feature_shapes)


def test_three_modalities_end_to_end() -> None:
    from harmonic_nas.data.types import ModalitySpec, Split
    from tests.fusion.conftest import TinyMLP

    ds = make_dataset(n_train=64, n_val=32)
    g = torch.Generator().manual_seed(1)
    for name, sp in ds.splits.items():
        n = len(sp)
        sp.inputs["txt"] = torch.randn(n, 5, generator=g) + (sp.labels % 2).float().unsqueeze(1)
        ds.splits[name] = Split(sp.inputs, sp.labels)
    ds.modalities.append(ModalitySpec("txt", "text", (5,)))
    bbs = {**make_backbones(), "txt": TinyMLP(d=5)}
    cache = compute_feature_cache(bbs, ds, L=4, bn_recalib_batches=1, device=CPU)
    assert [m for m, _ in cache.point_refs] == ["image"] * 4 + ["vec"] * 2 + ["txt"] * 2
    res = search_fusion(
        cache, small_fcfg(epochs=1, retrain_epochs=1), cells=3, nodes=1, seed=0, device=CPU
    )
    arch = ArchSpec(
        modalities={
            "image": ModalityArch("toy", (1, 12, 12), BackboneGenome()),
            "vec": ModalityArch("toy", (8,), BackboneGenome()),
            "txt": ModalityArch("toy", (5,), BackboneGenome()),
        },
        cells=3,
        nodes=1,
        genotype=res.genotype,
        C=8,
        L=4,
        n_classes=4,
        late_skip=True,
    )
    model = MultimodalNet(arch, bbs, res.net).eval()
    val = ds.split("val")
    out = model(val.inputs["image"][:6], val.inputs["vec"][:6], val.inputs["txt"][:6])
    pts = cache.split("val").batch(torch.arange(6))
    late = cache.split("val").late_logits(torch.arange(6))
    torch.testing.assert_close(
        out, res.net([pts[i] for i in res.net.used_points], late), rtol=1e-5, atol=1e-5
    )


def _late_fusion_model(
    reads: tuple[int, int], late_skip: bool = False
) -> tuple[MultimodalNet, dict[str, torch.nn.Module]]:
    img = build_supernet(("image", (1, 28, 28)), "avmnist", 10, "image")
    txt = build_supernet(("text", (20,)), "maxout", 10, "text")
    bbs = {"image": img.extract(img.min_genome()).eval(), "text": txt.extract(txt.max_genome())}
    genotype = FusionGenotype((CellGenotype(reads, (NodeGenotype("ConcatFC", (0, 1)),)),), 1)
    arch = ArchSpec(
        modalities={
            "image": ModalityArch("avmnist", (1, 28, 28), img.min_genome()),
            "text": ModalityArch("maxout", (20,), txt.max_genome()),
        },
        cells=1,
        nodes=1,
        C=8,
        L=4,
        n_classes=10,
        genotype=genotype,
        late_skip=late_skip,
    )
    from harmonic_nas.fusion.cache import _plan

    _, refs, point_shapes = _plan(bbs, {"image": (1, 28, 28), "text": (20,)}, 4, 4)
    assert refs[4] == ("image", 4) and refs[6] == ("text", 1)  # the final representations
    fixed = FixedFusionNet(
        point_shapes, genotype, C=8, L=4, n_classes=10, late_skip=late_skip
    ).eval()
    return MultimodalNet(arch, bbs, fixed).eval(), bbs


def test_live_parameters_leave_out_what_the_logits_never_read() -> None:
    from harmonic_nas.fusion.model import live_parameters

    x = [torch.zeros(2, 1, 28, 28), torch.zeros(2, 20)]
    # fusing the two final representations: everything runs but the backbones' own classifiers
    model, bbs = _late_fusion_model((4, 6))
    total = sum(p.numel() for p in model.parameters())
    heads = sum(p.numel() for b in bbs.values() for p in b.classifier.parameters())
    assert live_parameters(model, x) == total - heads
    # reading the image stem only: the image blocks, head and classifier are dead too
    model, bbs = _late_fusion_model((0, 6))
    img = bbs["image"]
    dead = sum(
        p.numel()
        for m in (img.first_block, img.blocks, img.final_expand, img.feature_mix, img.classifier)
        for p in m.parameters()
    ) + sum(p.numel() for p in bbs["text"].classifier.parameters())
    for p in bbs["image"].parameters():
        p.requires_grad_(False)  # frozen backbones, as after the feature cache
    assert live_parameters(model, x) == sum(p.numel() for p in model.parameters()) - dead
    assert not any(p.requires_grad for p in bbs["image"].parameters())  # flags restored
    # with the late skip the backbones' classifiers (and every layer before them) are live
    model, bbs = _late_fusion_model((0, 6), late_skip=True)
    assert live_parameters(model, x) == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_network_mode_export_drops_what_cost_and_params_drop(tmp_path: Path) -> None:
    """Fusion mode ``network`` (no late skip) fusing the image backbone at an early map only: the
    exported ONNX graph holds neither the image classifier nor the blocks after that map, and its
    weights are the live parameters (up to BatchNorm folded into convolutions), far fewer than
    with the late skip, whose every backbone layer and classifier is exported."""
    onnx = pytest.importorskip("onnx")
    img = build_supernet(("image", (1, 28, 28)), "avmnist", 10, "image")
    txt = build_supernet(("text", (20,)), "maxout", 10, "text")
    bbs = {"image": img.extract(img.max_genome()).eval(), "text": txt.extract(txt.max_genome())}
    bbs["text"].eval()
    geno = FusionGenotype((CellGenotype((0, 5), (NodeGenotype("Sum", (0, 1)),)),), 1)
    x = (torch.randn(2, 1, 28, 28), torch.randn(2, 20))
    sizes = {}
    for late_skip in (False, True):
        arch = ArchSpec(
            modalities={
                "image": ModalityArch("avmnist", (1, 28, 28), img.max_genome()),
                "text": ModalityArch("maxout", (20,), txt.max_genome()),
            },
            cells=1,
            nodes=1,
            C=8,
            L=9,
            n_classes=10,
            genotype=geno,
            late_skip=late_skip,
        )
        from harmonic_nas.fusion.cache import _plan

        _, _, point_shapes = _plan(bbs, {"image": (1, 28, 28), "text": (20,)}, 9, 4)
        fixed = FixedFusionNet(
            point_shapes, geno, C=8, L=9, n_classes=10, late_skip=late_skip
        ).eval()
        model = MultimodalNet(arch, bbs, fixed).eval()
        path = tmp_path / f"m{late_skip}.onnx"
        torch.onnx.export(model, x, str(path), input_names=["image", "text"], dynamo=False)
        graph = onnx.load(str(path)).graph
        names = {i.name for i in graph.initializer}
        n_onnx = sum(int(np.prod(i.dims)) for i in graph.initializer)
        live = live_parameters(model, x)
        assert live == pytest.approx(n_onnx, rel=0.03)  # BN scale/shift folded away
        has_head = "backbones.0.classifier.linear.weight" in names
        assert has_head == late_skip
        sizes[late_skip] = n_onnx
    assert sizes[False] < 0.5 * sizes[True]
