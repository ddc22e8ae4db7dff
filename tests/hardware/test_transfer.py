"""Predicting a device's table from K measured layers and other devices' tables."""

from __future__ import annotations

import numpy as np
import pytest

from harmonic_nas.hardware.transfer import (
    choose_sample,
    flops_control,
    key_macs,
    kind_of,
    predict_latencies,
    ratio_control,
    usage_counts,
)

CONV = [
    f"ConvLayer-input:1_{c}_{h}_{h}-in_ch:{c}-out_ch:{o}-kernel:3-stride:1-use_se:0-use_bn:1"
    for c, h, o in [(8, 16, 8), (8, 16, 16), (16, 8, 16), (16, 8, 32), (32, 4, 32), (32, 4, 64)]
]
LINEAR = [f"LinearLayer-input:{n}-in_ch:{n}-out_ch:{m}" for n, m in [(64, 10), (128, 10)]]
OPS = [f"{op}-input:1_8_4-N:1-C:8-L:4" for op in ("Sum", "SE1", "ConcatFC")]
KEYS = CONV + LINEAR + OPS


def _device(seed: int, scale: float, launch: float) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {k: launch + scale * key_macs(k) * 1e-6 * rng.uniform(0.9, 1.1) for k in KEYS}


def test_sample_spans_every_kind_and_is_distinct() -> None:
    sample = choose_sample(KEYS, 5)
    assert len(sample) == len(set(sample)) == 5
    assert {kind_of(k) for k in sample} == {"conv", "linear", "fusion_op"}
    assert choose_sample(KEYS, 5) == sample  # deterministic without a generator
    drawn = choose_sample(KEYS, 5, np.random.default_rng(0))
    assert len(set(drawn)) == 5
    assert sorted(choose_sample(KEYS, 100)) == sorted(KEYS)
    # usage: kinds share the sample by how often models use them
    heavy = usage_counts([OPS * 10, CONV[:1]])
    assert sum(kind_of(k) == "fusion_op" for k in choose_sample(KEYS, 5, usage=heavy)) == 3


def test_a_scaled_device_is_predicted_from_its_reference() -> None:
    ref = _device(0, 1.0, 0.0)
    target = {k: 2.5 * v for k, v in ref.items()}
    measured = {k: target[k] for k in choose_sample(KEYS, 6)}
    pred = predict_latencies(measured, KEYS, [ref])
    assert set(pred) == set(KEYS) - set(measured)
    for k, v in pred.items():
        assert v == pytest.approx(target[k], rel=0.1), k


def test_never_predicts_a_kind_without_a_measured_layer() -> None:
    ref = _device(0, 1.0, 0.1)
    measured = {CONV[0]: 1.0, CONV[3]: 3.0}
    for pred in (
        predict_latencies(measured, KEYS, [ref]),
        ratio_control(measured, KEYS, [ref]),
        flops_control(measured, KEYS),
    ):
        assert pred and all(kind_of(k) == "conv" for k in pred)
        assert not set(pred) & set(measured)


def test_a_kind_measured_at_zero_predicts_zero() -> None:
    pred = predict_latencies({OPS[0]: 0.0, CONV[0]: 1.0}, KEYS, [])
    assert all(pred[k] == 0.0 for k in OPS[1:])


def test_controls() -> None:
    ref = _device(1, 1.0, 0.0)
    measured = {CONV[0]: 2 * ref[CONV[0]], CONV[1]: 2 * ref[CONV[1]]}
    ratio = ratio_control(measured, CONV, [ref])
    assert ratio[CONV[2]] == pytest.approx(2 * ref[CONV[2]])
    flops = flops_control({CONV[0]: key_macs(CONV[0])}, CONV)
    assert flops[CONV[4]] == pytest.approx(key_macs(CONV[4]))
