"""The Maxout MLP (text/vector backbone) and the build_supernet factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonic_nas.backbones import (
    BackboneGenome,
    ElasticMobileNetV3,
    MaxoutMLP,
    build_supernet,
)
from harmonic_nas.backbones.ops import Maxout
from harmonic_nas.config import ModalityConfig
from harmonic_nas.errors import ConfigError, GenomeError


def test_maxout_layer_takes_the_max_of_each_group_of_pieces() -> None:
    layer = Maxout(5, 3, pieces=4)
    x = torch.randn(2, 5)
    pre = layer.linear(x).view(2, 3, 4)
    torch.testing.assert_close(layer(x), pre.max(dim=-1).values)


def test_maxout_mlp_forward_shapes_and_fusion_points() -> None:
    net = MaxoutMLP(300, 23, modality="text")
    assert [b.maxout.linear.out_features for b in net.hidden] == [128 * 4, 256 * 4]
    x = torch.randn(6, 300)
    net.eval()
    feats, logits = net(x)
    assert [f.shape for f in feats] == [(6, 128), (6, 256)]
    assert logits.shape == (6, 23)
    _, logits2 = net(x)
    torch.testing.assert_close(logits, logits2)  # eval: dropout off, BN running stats
    net.train()
    _, a = net(x)
    _, b = net(x)
    assert not torch.allclose(a, b)  # dropout 0.3 is active in training
    assert net.hidden[0].dropout.p == pytest.approx(0.3)
    # a (B, 1, D) input is flattened
    assert net.eval()(x[:, None, :])[1].shape == (6, 23)
    with pytest.raises(ValueError, match="300 input features"):
        net(torch.randn(2, 299))


def test_maxout_supernet_interface() -> None:
    net = MaxoutMLP(40, 3)
    rng = np.random.default_rng(0)
    empty = BackboneGenome()
    assert net.num_subnets() == 1
    assert net.sample(rng) == net.max_genome() == net.min_genome() == empty
    sub = net.extract(empty)
    assert sub is not net
    with torch.no_grad():
        next(sub.parameters()).add_(1.0)
    assert not torch.equal(next(sub.parameters()), next(net.parameters()))
    with pytest.raises(GenomeError, match="must be empty"):
        net.validate(BackboneGenome((3,), (3,), (2,)))
    specs = net.layer_configs((40,))
    assert [(s.kind, s.in_ch, s.out_ch) for s in specs] == [
        ("maxout", 40, 128),
        ("maxout", 128, 256),
        ("linear", 256, 3),
    ]
    assert specs[0].expand == 4
    assert net.layer_configs(empty, (40,)) == specs
    with pytest.raises(ConfigError, match="expects 40"):
        net.layer_configs((41,))


def test_build_supernet_dispatches_on_preset_and_shape() -> None:
    img = build_supernet(
        ModalityConfig(preset="avmnist", shape=(1, 28, 28)), "avmnist", 10, "image"
    )
    assert isinstance(img, ElasticMobileNetV3) and img.modality == "image"
    rgb = build_supernet(("image", (3, 112, 112)), "mbv3-3stage", 3, "img")
    assert isinstance(rgb, ElasticMobileNetV3) and rgb.in_channels == 3
    txt = build_supernet(("text", (300,)), "maxout", 23, "text")
    assert isinstance(txt, MaxoutMLP) and txt.in_features == 300 and txt.n_classes == 23
    with pytest.raises(ConfigError, match="CNN for"):
        build_supernet(("text", (300,)), "avmnist", 10, "text")
    with pytest.raises(ConfigError, match="CNN for"):
        build_supernet(("image", (28, 28)), "avmnist", 10, "image")
    with pytest.raises(ConfigError, match="unknown backbone preset 'nope'"):
        build_supernet(("image", (1, 28, 28)), "nope", 10, "image")
    with pytest.raises(ConfigError, match="invalid input shape"):
        build_supernet(("image", ()), "avmnist", 10, "image")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_extracted_subnets_script_and_export_to_onnx() -> None:
    """Deployable: TorchScript and ONNX (onnxruntime) give the eager outputs."""
    ort = pytest.importorskip("onnxruntime")
    import io

    net = ElasticMobileNetV3("mbv3-3stage", 3, 5).eval()
    models = [
        (net.extract(net.sample(np.random.default_rng(0))).eval(), torch.randn(1, 3, 40, 40)),
        (MaxoutMLP(20, 3).eval(), torch.randn(1, 20)),
    ]
    for model, x in models:
        with torch.no_grad():
            eager = model(x)[1]
            torch.testing.assert_close(torch.jit.script(model)(x)[1], eager)
        buffer = io.BytesIO()
        torch.onnx.export(model, (x,), buffer, opset_version=17, dynamo=False)
        session = ort.InferenceSession(buffer.getvalue())
        outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        np.testing.assert_allclose(outputs[-1], eager.numpy(), atol=1e-5, rtol=1e-4)
