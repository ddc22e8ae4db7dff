"""Every registered fusion operator: shapes, gradients, registry errors, the fast mixed op."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion import build_op, check_ops, list_ops, register_op
from harmonic_nas.fusion import ops as ops_module
from harmonic_nas.fusion.network import MixedOp
from harmonic_nas.fusion.ops import Dropout

PAPER_OPS = ["Sum", "ScaleDotAttn", "LinearGLU", "ConcatFC", "SE1", "CatConvMish"]


def test_paper_ops_registered() -> None:
    assert set(PAPER_OPS) <= set(list_ops())


@pytest.mark.parametrize("name", list_ops())
def test_op_shape_and_gradients(name: str) -> None:
    C, L = 6, 4
    op = build_op(name, C, L)
    x = torch.randn(5, C, L, requires_grad=True)
    y = torch.randn(5, C, L, requires_grad=True)
    out = op(x, y)
    assert out.shape == (5, C, L)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, "no gradient reaches the first input"
    assert y.grad is not None and y.grad.abs().sum() > 0, "no gradient reaches the second input"
    for pname, p in op.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    op.eval()
    assert op(x, y).shape == (5, C, L)


@pytest.mark.parametrize("name", [n for n in PAPER_OPS if n != "Sum"])
def test_ops_are_not_symmetric_in_inputs(name: str) -> None:
    """Operators treat x and y differently (why two distinct inputs matter)."""
    op = build_op(name, 6, 4).eval()
    x, y = torch.randn(3, 6, 4), torch.randn(3, 6, 4)
    if name in ("LinearGLU", "ConcatFC", "CatConvMish", "ScaleDotAttn", "SE1"):
        assert not torch.allclose(op(x, y), op(y, x))


def test_op_semantics() -> None:
    x, y = torch.randn(2, 4, 9), torch.randn(2, 4, 9)
    assert torch.equal(build_op("Sum", 4, 9)(x, y), x + y)
    se = build_op("SE1", 4, 9)
    gate = torch.sigmoid(torch.relu(se.fc(x.mean(-1))))
    torch.testing.assert_close(se(x, y), y * gate.unsqueeze(-1))
    attn = build_op("ScaleDotAttn", 4, 9).eval()
    scores = torch.softmax(x.transpose(1, 2) @ y / 2.0, dim=-1)  # sqrt(C) = 2
    ref = torch.nn.functional.layer_norm((scores @ y.transpose(1, 2)).transpose(1, 2), (4, 9))
    torch.testing.assert_close(attn(x, y), ref, rtol=1e-4, atol=1e-5)


def test_unknown_op_is_one_line_error() -> None:
    with pytest.raises(GenomeError, match="unknown fusion operator 'Nope'") as exc:
        build_op("Nope", 4, 4)
    assert "\n" not in str(exc.value)
    with pytest.raises(GenomeError, match="unknown fusion operator"):
        check_ops(["Sum", "Nope"])
    with pytest.raises(GenomeError, match="twice"):
        check_ops(["Sum", "Sum"])
    with pytest.raises(GenomeError, match="empty"):
        check_ops([])


def test_register_new_op(monkeypatch: pytest.MonkeyPatch) -> None:
    class Max(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.maximum(x, y)

    monkeypatch.setattr(ops_module, "_OPS", dict(ops_module._OPS))
    register_op("Max")(lambda C, L, dropout: Max())
    assert "Max" in list_ops()
    mixed = MixedOp(["Sum", "Max"], 4, 4, 0.0)
    x, y = torch.randn(2, 4, 4), torch.randn(2, 4, 4)
    torch.testing.assert_close(mixed(x, y, torch.tensor([0.0, 1.0])), torch.maximum(x, y))
    with pytest.raises(ValueError, match="already registered"):
        register_op("Max")(lambda C, L, dropout: Max())


def test_mixed_op_fast_path_equals_weighted_sum_of_ops() -> None:
    """The grouped GEMM/BN of the concat-conv ops computes exactly the separate operators."""
    C, L = 8, 4
    mixed = MixedOp(PAPER_OPS, C, L, 0.0)
    mixed.train()
    x, y = torch.randn(6, C, L), torch.randn(6, C, L)
    w = torch.softmax(torch.randn(len(PAPER_OPS)), 0)
    fast = mixed(x, y, w)
    ref = torch.zeros_like(fast)
    start = 0
    others = iter(mixed.ops)
    for i, name in enumerate(PAPER_OPS):
        if name in ("LinearGLU", "ConcatFC", "CatConvMish"):
            op = build_op(name, C, L, 0.0)
            width = op.conv.out_channels
            with torch.no_grad():
                op.conv.weight.copy_(mixed.cat_linear.weight[start : start + width].unsqueeze(-1))
                op.conv.bias.copy_(mixed.cat_linear.bias[start : start + width])
                op.bn.weight.copy_(mixed.cat_bn.weight[start : start + width])
                op.bn.bias.copy_(mixed.cat_bn.bias[start : start + width])
            start += width
        else:
            op = next(others)
        ref = ref + w[i] * op(x, y)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    # gradients reach the mixing weights and both inputs
    xg, yg, wg = x.clone().requires_grad_(), y.clone().requires_grad_(), w.clone().requires_grad_()
    mixed(xg, yg, wg).square().sum().backward()
    assert xg.grad is not None and yg.grad is not None and wg.grad is not None
    assert (wg.grad != 0).all()


def test_weighted_sum_gradients() -> None:
    from harmonic_nas.fusion.network import _weighted_sum

    states = [torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    w = torch.rand(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, *s: _weighted_sum(w, list(s)), (w, *states))


def test_dropout_distribution_and_eval_identity() -> None:
    d = Dropout(0.25)
    x = torch.ones(200_000)
    out = d(x)
    kept = (out != 0).float().mean().item()
    assert abs(kept - 0.75) < 0.01
    torch.testing.assert_close(out.mean(), torch.tensor(1.0), atol=0.02, rtol=0)
    values = out.unique()
    assert len(values) == 2 and values[0] == 0.0
    assert values[1].item() == pytest.approx(1 / 0.75)
    d.eval()
    assert d(x) is x
    assert Dropout(0.0)(x) is x
