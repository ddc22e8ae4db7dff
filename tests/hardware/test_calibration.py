"""Calibrated totals: the fit, its held-out choice of form, and how totals use it."""

from __future__ import annotations

import numpy as np
import pytest

from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.calibration import Calibration, fit_calibration
from harmonic_nas.hardware.cost import Cost, calibrated


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.2, 2.0, 20)
    wb = rng.uniform(1e4, 4e5, 20)
    return raw, wb


def test_weights_term_is_kept_when_it_predicts_better() -> None:
    raw, wb = _data()
    y = 1.3 * raw + 2e-6 * wb + 0.05
    cal = fit_calibration(raw, wb, y)
    assert cal.form == "affine+weights" and cal.samples == 20
    assert cal.a == pytest.approx(1.3, rel=1e-3)
    assert cal.w == pytest.approx(2e-6, rel=1e-3)
    assert cal.c == pytest.approx(0.05, abs=1e-3)
    assert cal.heldout_mape_pct is not None and cal.heldout_mape_pct < 0.1
    assert set(cal.candidates) == {"identity", "affine", "affine+weights"}
    assert cal.apply(1.0, 1e5) == pytest.approx(1.3 + 0.2 + 0.05, rel=1e-3)


def test_identity_when_the_raw_sum_is_right() -> None:
    raw, wb = _data(1)
    noise = 1 + 0.01 * np.random.default_rng(2).standard_normal(20)
    cal = fit_calibration(raw, wb, raw * noise)
    # fitting cannot beat the raw sum out of sample by much; the simplest best form is kept
    assert cal.heldout_mape_pct is not None and cal.heldout_mape_pct < 2.0
    assert cal.candidates[cal.form] == min(cal.candidates.values())


def test_too_few_models_keep_the_raw_sum() -> None:
    cal = fit_calibration([1.0, 2.0], [0.0, 0.0], [1.1, 2.2])
    assert cal.form == "identity" and cal.samples == 2
    assert cal.heldout_mape_pct == pytest.approx(9.0909, rel=1e-3)


def test_fitted_coefficients_never_make_a_bigger_model_faster() -> None:
    raw, wb = _data(3)
    y = 2.0 - 0.5 * raw  # anti-correlated: a >= 0 is enforced
    cal = fit_calibration(raw, wb, y)
    assert cal.a >= 0 and cal.w >= 0


def test_round_trip_and_bad_values() -> None:
    cal = Calibration("affine", 1.2, 0.0, -0.01, 3.5, 20, {"affine": 3.5})
    assert Calibration.from_json(cal.to_json()) == cal
    with pytest.raises(LUTError, match="form"):
        Calibration.from_json({"form": "cubic"})
    with pytest.raises(LUTError, match=">= 0"):
        Calibration.from_json({**cal.to_json(), "a": -1.0})


def test_calibrated_cost_scales_modelled_energy_only() -> None:
    raw = Cost(2.0, 30.0, ("k",), ())
    cal = Calibration("affine", 1.5, 0.0, 0.0)
    modelled = calibrated(raw, 0.0, cal, energy_modelled=True)
    assert modelled.latency_ms == pytest.approx(3.0) and modelled.energy_mj == pytest.approx(45.0)
    assert modelled.predicted_keys == ("k",)
    measured = calibrated(raw, 0.0, cal, energy_modelled=False)
    assert measured.energy_mj == 30.0
    assert calibrated(raw, 0.0, None, True) == raw
