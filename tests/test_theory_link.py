"""Theory predictions for the 1D protocol and their join with a results store."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from analysis.errors import InputError
from analysis.stats import spearman_ci
from analysis.theory import excess_mse
from cli import cli
from simulate.data import make_dataset
from simulate.store import Record, ResultsStore
from simulate.theory_check import check_cells, join_cells, measured_pairs, measured_uniform_rmse
from simulate.theory_link import (
    effective_sigma,
    predict_dataset,
    predict_protocol,
    predictions_for_pairs,
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


def _config(setting, sampling, function, data_seed, model_seed, model, num_classes, binning):
    return {"setting": setting, "sampling": sampling, "function": function, "function_seed": 0,
            "data_seed": data_seed, "model_seed": model_seed, "model": model,
            "num_classes": num_classes, "binning": binning,
            "lam": 0.0 if model == "reg" else 100.0, "lr": 1e-3, "optimizer": "adam",
            "weight_decay": 1e-3, "hidden": [6, 15], "epochs": 80, "batch_size": 256,
            "num_points": 60000, "dtype": "float32", "device": "cpu"}


def _store(tmp_path, benefit):
    """A hand-made store: 3 samplings x 2 functions x 2 model seeds, reg and regcls(C=16)."""
    records = []
    for sampling in ("mild", "moderate", "severe"):
        for function in (0, 1):
            for model_seed in (0, 421):
                reg_mse = 0.10 + 0.01 * function
                key = f"{sampling}-{function}-{model_seed}"
                records.append(Record(key=key + "-reg", kind="sim1d", seed=model_seed,
                                      config=_config("clean", sampling, function, 2732,
                                                     model_seed, "reg", 0, "uniform"),
                                      metrics={"train_mse": 0.1, "val_mse": 0.1,
                                               "test_mse": reg_mse, "class_top1": None,
                                               "diverged": False}))
                records.append(Record(key=key + "-regcls", kind="sim1d", seed=model_seed,
                                      config=_config("clean", sampling, function, 2732,
                                                     model_seed, "regcls", 16, "uniform"),
                                      metrics={"train_mse": 0.1, "val_mse": 0.1,
                                               "test_mse": reg_mse - benefit(sampling, function),
                                               "class_top1": 0.5, "diverged": False}))
    # A uniform reg run gives the measured sigma for (clean, 0).
    records.append(Record(key="u-reg", kind="sim1d", seed=0,
                          config=_config("clean", "uniform", 0, 2732, 0, "reg", 0, "uniform"),
                          metrics={"train_mse": 0.04, "val_mse": 0.04, "test_mse": 0.04,
                                   "class_top1": None, "diverged": False}))
    with ResultsStore(tmp_path) as store:
        store.write(records)
    return tmp_path


def test_check_joins_a_store_and_correlates(tmp_path):
    # Measured benefit built to be monotone in the predicted excess -> Spearman = 1.
    predicted = {(s, f): excess_mse(target_model(f, "clean", s, 2732).density(),
                                    effective_sigma(target_model(f, "clean", s, 2732), 0.075))
                 for s in ("mild", "moderate", "severe") for f in (0, 1)}
    store = _store(tmp_path, lambda s, f: predicted[(s, f)])
    pairs = measured_pairs(store)
    assert len(pairs) == 12
    assert measured_uniform_rmse(store) == {("clean", 0): pytest.approx(0.2)}
    cells = join_cells(pairs, predictions_for_pairs(pairs))
    assert len(cells) == 6 and all(c["num_pairs"] == 2 for c in cells)
    for cell in cells:
        assert cell["measured_diff"] == pytest.approx(cell["excess_mse"], rel=1e-9)
    rows = {r.group: r for r in check_cells(cells, num_resamples=500)}
    assert rows["clean"].spearman == pytest.approx(1.0)
    assert rows["clean"].ci_low == pytest.approx(1.0)
    assert rows["clean+noisy"].num_cells == 6


def test_spearman_ci_brackets_the_estimate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    rho, p, low, high = spearman_ci(x, y, 1000, 0)
    assert low < rho < high and p < 1e-10 and 0.5 < rho < 0.85
    assert math.isnan(spearman_ci(np.ones(5), np.arange(5.0))[0])


def test_store_without_pairs_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        measured_pairs(tmp_path / "missing")
    ResultsStore(tmp_path).close()
    with pytest.raises(InputError):
        measured_pairs(tmp_path)
    frame = pd.DataFrame({"x": [1]})
    assert join_cells([], frame.assign(setting="clean", sampling="mild", function=0,
                                       function_seed=0, data_seed=1, num_classes=4,
                                       binning="uniform")) == []


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_command_reports_and_warns_about_ood(tmp_path):
    store = _store(tmp_path, lambda s, f: {"mild": 0.001, "moderate": 0.002,
                                           "severe": 0.004}[s] + 1e-4 * f)
    result = _run("theory", "check", str(store))
    assert result.exit_code == 0, result.output
    assert "clean" in result.output and "does NOT apply to ood" in result.output
    bad = CliRunner().invoke(cli, ["theory", "check", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and bad.output.startswith("Error:")


def test_figures_theory(tmp_path):
    store = _store(tmp_path / "store", lambda s, f: 0.001 * (1 + f))
    result = _run("figures", "theory", "--out", str(tmp_path / "figs"), "--store", str(store))
    assert result.exit_code == 0, result.output
    for name in ("theory_gap_profiles", "theory_captured_fraction", "theory_sigma_sensitivity",
                 "theory_predicted_vs_measured"):
        assert (tmp_path / "figs" / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / "figs" / f"{name}.pdf").exists()
