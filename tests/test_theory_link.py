"""Theory predictions for the 1D protocol and their join with a results store."""

from __future__ import annotations

import math

import numpy as np
import pytest
from clsreg.analysis.theory import excess_mse
from clsreg.simulate.data import make_dataset
from clsreg.simulate.theory_link import (
    effective_sigma,
    predict_dataset,
    predict_protocol,
    target_model,
)


@pytest.mark.parametrize("setting,sampling", [("clean", "severe"), ("ood", "moderate")])
def test_target_model_reproduces_the_protocol_peak_and_range(setting, sampling):
    model = target_model(3, setting, sampling, 9845)
    dataset = make_dataset(3, setting, sampling, 9845)
    assert model.peak == dataset.peak
    # The sampler's window sits inside the training range it was drawn on.
    assert model.low <= dataset.train.y.min() + 1e-3 and dataset.train.y.max() <= model.high
    assert model.window_weight == pytest.approx(1 - 6144 / 60000)
    # 3,000 points cannot pay for the 6,144-point background: the sampler draws no window.
    assert target_model(3, setting, sampling, 9845, num_points=3000).window_weight == 0.0
    # Window mass fraction in the generated training targets matches π (binomial SE).
    density = model.density()
    inside = np.mean(np.abs(dataset.train.y - model.peak) <= model.half_width)
    left, right = max(model.low, model.peak - model.half_width), min(
        model.high, model.peak + model.half_width)
    expected = model.window_weight + (1 - model.window_weight) * (right - left) / (
        model.high - model.low)
    assert abs(inside - expected) < 4 * math.sqrt(expected * (1 - expected) / inside.size) + 2e-3
    assert density.low == model.low


def test_predictions_are_zero_for_uniform_and_grow_with_imbalance():
    rows = predict_protocol(["clean"], ["uniform", "mild", "moderate", "severe"], [0], [0],
                            class_counts=(1, 16), binnings=("uniform",))
    by = {(r["sampling"], r["num_classes"]): r for r in rows}
    assert by[("uniform", 16)]["excess_mse"] == 0.0
    assert by[("mild", 1)]["captured_fraction"] == 0.0
    excess = [by[(s, 16)]["excess_mse"] for s in ("mild", "moderate", "severe")]
    assert 0 < excess[0] < excess[1] < excess[2]
    model = target_model(0, "clean", "severe", 2732)
    sigma = effective_sigma(model, 0.075)
    assert by[("severe", 16)]["excess_mse"] == pytest.approx(excess_mse(model.density(), sigma))
    assert all(r["theory_applies"] for r in rows)


def test_noisy_sigma_adds_label_noise_and_ood_is_flagged():
    clean = target_model(0, "clean", "mild", 2732)
    noisy = target_model(0, "noisy", "mild", 2732)
    width = clean.high - clean.low
    assert effective_sigma(clean, 0.1) == pytest.approx(0.1 * width)
    assert effective_sigma(noisy, 0.1) == pytest.approx(math.hypot(0.1 * width, 0.1))
    assert effective_sigma(noisy, 0.1, measured_rmse=0.3) == 0.3
    ood = predict_dataset(target_model(0, "ood", "mild", 2732), 0.2, 0.075, (4,), ("uniform",))
    assert ood[0]["theory_applies"] is False
