"""Real-data pipeline units: shots, metrics, balanced splits, encoding, pairing, statistics."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from clsreg.analysis.binning import imbalance_ratio
from clsreg.analysis.errors import InputError
from clsreg.analysis.stats import holm
from clsreg.core.loop import Ranks, SampleTargets, TargetCoding, TargetScaler, train_loop
from clsreg.core.methods import get_method
from clsreg.core.recipe import TrainRecipe
from clsreg.realdata.benchmarks import benchmark_part
from clsreg.realdata.datasets import OTHER_LEVEL, encode_features, fit_encoder, table_from_frame
from clsreg.realdata.evaluate import (
    GM_FLOOR,
    METRICS,
    ShotConfig,
    assign_shots,
    bin_shots,
    grouped_metrics,
    pooled_metrics,
)
from clsreg.realdata.models import build_model
from clsreg.realdata.pipeline import Task, coding_for, common_entries, tensor_dataset
from clsreg.realdata.report import (
    ExperimentRuns,
    compare,
    compare_shot,
    experiment_table,
    relative_change_ci,
)
from clsreg.realdata.sources import make_config
from clsreg.realdata.splits import SplitConfig, balanced_splits
from clsreg.realdata.tables import batch_orders, subsample_training
from scipy import stats

# ---------------------------------------------------------------- shots and metrics


def test_bin_shots_uses_strict_thresholds():
    counts = np.array([101, 100, 20, 19, 0])
    assert list(bin_shots(counts, many=100, few=20)) == ["many", "medium", "medium", "few",
                                                         "few"]


def test_assign_shots_by_training_count_of_the_bin():
    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    # Training counts per bin: 150, 50, 5, 0.
    train = np.concatenate([np.full(150, 0.5), np.full(50, 1.5), np.full(5, 2.5)])
    test = np.array([0.5, 1.5, 2.5, 3.5, 4.0, 0.0])
    shots = assign_shots(test, train, edges, ShotConfig(bins=4, many=100, few=20))
    assert list(shots) == ["many", "medium", "few", "few", "few", "many"]


def test_error_metrics_by_hand_with_an_exact_zero_error():
    metrics = pooled_metrics(np.array([1.0, -2.0, 0.0, 3.0]), np.zeros(4), METRICS)
    assert metrics["count"] == 4
    assert metrics["mae"] == pytest.approx(1.5)
    assert metrics["mse"] == pytest.approx(3.5)
    expected_gm = math.exp((math.log(1) + math.log(2) + math.log(GM_FLOOR) + math.log(3)) / 4)
    assert metrics["gm"] == pytest.approx(expected_gm, rel=1e-12)
    assert np.isfinite(metrics["gm"]) and metrics["gm"] > 0


def test_shot_metrics_with_an_empty_group():
    prediction = np.array([1.0, 2.0, 5.0, 4.0])
    target = np.array([0.0, 2.0, 1.0, 4.0])
    shots = np.array(["many", "many", "few", "few"])
    out = grouped_metrics(prediction, target, shots, METRICS)
    assert out["medium"]["count"] == 0
    assert all(math.isnan(out["medium"][m]) for m in ("mae", "mse", "gm"))
    assert out["many"]["mae"] == pytest.approx(0.5)  # errors 1, 0
    assert out["many"]["mse"] == pytest.approx(0.5)
    assert out["few"]["mae"] == pytest.approx(2.0)  # errors 4, 0
    assert out["few"]["mse"] == pytest.approx(8.0)
    assert out["overall"]["mae"] == pytest.approx(1.25)
    assert out["overall"]["gm"] == pytest.approx(
        math.exp((2 * math.log(GM_FLOOR) + math.log(4)) / 4), rel=1e-12)


# ---------------------------------------------------------------- balanced splits


def test_balanced_splits_by_hand():
    # 4 equal-width bins over [0, 4]: 400, 200, 120 and 50 rows.
    target = np.concatenate([np.linspace(0.01, 0.99, 400), np.linspace(1.01, 1.99, 200),
                             np.linspace(2.01, 2.99, 120), np.linspace(3.01, 4.0, 50)])
    config = SplitConfig(split_bins=4, min_bin_rows=100, share=0.3, max_per_bin=500)
    splits = balanced_splits(target, config, seed=0)
    assert splits.per_bin == 36  # floor(0.3 * 120): the smallest well-populated bin
    assert list(splits.evaluated_bins) == [0, 1, 2]
    for rows in (splits.test, splits.val):
        counts = np.bincount(np.minimum((target[rows]).astype(int), 3), minlength=4)
        assert list(counts) == [36, 36, 36, 0]  # balanced; the 50-row tail bin stays in train
    everything = np.concatenate([splits.train, splits.val, splits.test])
    assert np.array_equal(np.sort(everything), np.arange(target.size))  # a partition
    assert np.all(target[splits.train][target[splits.train] > 3] > 3)
    assert (target[splits.train] > 3).sum() == 50
    again = balanced_splits(target, config, seed=0)
    assert np.array_equal(again.test, splits.test)


def test_balanced_splits_on_a_long_tail_are_balanced_and_capped():
    target = np.random.default_rng(1).exponential(1.0, 20_000)
    config = SplitConfig(split_bins=15, min_bin_rows=100, share=0.3, max_per_bin=200)
    splits = balanced_splits(target, config, seed=3)
    bins = np.minimum(((target - target.min()) / np.ptp(target) * 15).astype(int), 14)
    counts = np.bincount(bins, minlength=15)
    well = counts >= 100
    expected = min(200, int(0.3 * counts[well].min()))
    assert splits.per_bin == expected
    test_counts = np.bincount(bins[splits.test], minlength=15)
    assert np.all(test_counts[well] == expected) and np.all(test_counts[~well] == 0)


def test_balanced_splits_refuse_a_table_without_a_populated_bin():
    with pytest.raises(InputError, match="too small"):
        balanced_splits(np.arange(50.0), SplitConfig(split_bins=5, min_bin_rows=100), 0)


# ---------------------------------------------------------------- tables and encoding


def test_table_and_encoder_fit_on_training_rows_only():
    frame = pd.DataFrame({
        "y": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
        "a": [0.0, 2.0, 9.0, 4.0, np.nan, 100.0],
        "c": ["u", "u", "v", "u", "w", None],
        "id": ["r1", "r2", "r3", "r4", "r5", "r6"],
    })
    table = table_from_frame(frame, "y", "t", drop="id")
    assert table.num_rows == 5 and table.numeric == ("a",) and table.categorical == ("c",)
    encoder = fit_encoder(table, np.array([0, 1, 2]), min_level_count=2)
    # Training rows (after dropping the NaN-target row): a = 0, 2, 4 -> mean 2, std sqrt(8/3).
    assert encoder.mean[0] == pytest.approx(2.0)
    assert encoder.std[0] == pytest.approx(math.sqrt(8 / 3))
    assert encoder.levels == (("u", OTHER_LEVEL),)
    x = encode_features(table, encoder, np.arange(5))
    np.testing.assert_allclose(x[:, 0], [-2 / math.sqrt(8 / 3), 0, 2 / math.sqrt(8 / 3), 0,
                                         98 / math.sqrt(8 / 3)], rtol=1e-6)
    # NaN feature -> training mean (0); unseen level "w" and missing -> other.
    np.testing.assert_array_equal(x[:, 1:], [[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]])


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"x": [1, 2]}), "target column 'y' is not in"),
    (pd.DataFrame({"y": ["a", "b"], "x": [1, 2]}), "not numeric"),
    (pd.DataFrame({"y": [np.nan, np.nan], "x": [1, 2]}), "no finite value"),
    (pd.DataFrame({"y": [1.0, 2.0]}), "no feature columns"),
])
def test_table_refuses_bad_targets(frame, message):
    with pytest.raises(InputError, match=message):
        table_from_frame(frame, "y", "t")


# ---------------------------------------------------------------- pairing and training


def test_reg_and_reg_cls_start_identical_and_see_identical_batches():
    reg, cls = build_model(7, 0, seed=11, hidden=(8, 4)), build_model(7, 5, seed=11,
                                                                      hidden=(8, 4))
    for name, value in reg.backbone.state_dict().items():
        assert torch.equal(value, cls.backbone.state_dict()[name])
    for name, value in reg.heads.regression.state_dict().items():
        assert torch.equal(value, cls.heads.regression.state_dict()[name])
    assert reg.heads.classification is None and cls.heads.classification.out_features == 5
    first, second = batch_orders(100, 3, seed=4), batch_orders(100, 3, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], first[1])


def _tiny_data(seed: int = 0):
    """A linear target: training and validation sets, the coding and per-sample targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = 2.0 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=300)
    scaler = TargetScaler.fit(y[:200], log=False)
    z = scaler.transform(y[:200])
    targets = SampleTargets(torch.as_tensor(z, dtype=torch.float32),
                            torch.as_tensor(np.minimum((z + 2).clip(0) // 1, 3),
                                            dtype=torch.long))
    coding = TargetCoding(scaler, np.array([-np.inf, -1.0, 0.0, 1.0, np.inf]))
    return (tensor_dataset(x[:200], y[:200]), tensor_dataset(x[200:], y[200:]), y[200:],
            coding, targets)


def test_training_on_given_batch_orders_is_deterministic_and_learns():
    train, val, y_val, coding, targets = _tiny_data()
    recipe = TrainRecipe(lr=1e-2, weight_decay=1e-4, epochs=15, batch_size=32)
    methods = [get_method("reg"), get_method("regcls").configured(num_classes=4, lam=10.0)]
    results = []
    for _ in range(2):
        runs = []
        for m in methods:
            info = train_loop(build_model(3, m.num_classes, seed=2, hidden=(16,)), m, train,
                              val, coding, recipe, 2, torch.device("cpu"), progress=False,
                              orders=batch_orders(200, recipe.epochs, seed=2), targets=targets)
            runs.append((info["best_epoch"], info["val_score"], tuple(info["steps"])))
        results.append(runs)
    assert results[0] == results[1]
    assert len(results[0][0][2]) == 15 * 7  # ceil(200 / 32) batches per epoch
    baseline = float(np.mean((y_val - y_val.mean()) ** 2))
    for _, val_score, _ in results[0]:
        assert val_score < 0.2 * baseline  # a linear target is learned


def test_building_and_training_leave_the_global_torch_random_state_alone():
    train, val, _, coding, targets = _tiny_data()
    method = get_method("regcls").configured(num_classes=4, lam=10.0)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model = build_model(3, 4, seed=5, hidden=(8,))
    assert torch.equal(torch.get_rng_state(), before)
    first_layer = model.backbone.layers[0].weight.detach().clone()
    train_loop(model, method, train, val, coding, TrainRecipe(epochs=2, batch_size=64), 5,
               torch.device("cpu"), progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    # ... and the seeded draws are those of torch.manual_seed(seed) itself.
    torch.manual_seed(5)
    again = torch.nn.Linear(3, 8)
    torch.nn.init.xavier_uniform_(again.weight)
    assert torch.equal(first_layer, again.weight)


def test_classes_used_counts_the_classes_equal_frequency_binning_really_made():
    # Integer ages, many ties: 10 equal-frequency classes merge into 4 (edges 20, 20.5,
    # 21.5, 22.5, 23), and the stored row says 4, not the 10 asked for.
    ages = np.random.default_rng(0).integers(20, 24, 500).astype(np.float64)
    config = make_config("agedb-dir")
    assert (config.num_classes, config.binning) == (10, "equal")
    coding = coding_for(ages, config)
    task = Task("", tensor_dataset(np.zeros((500, 1)), ages), tensor_dataset(np.zeros((1, 1)),
                ages[:1]), tensor_dataset(np.zeros((1, 1)), ages[:1]), ages, coding,
                config.num_classes, build=None, evaluate=None)
    part = benchmark_part(config, "", (task,), METRICS, "age", "")
    entries = common_entries(part, "e", "regcls", 1, Ranks())
    np.testing.assert_array_equal(coding.class_edges, [20.0, 20.5, 21.5, 22.5, 23.0])
    assert entries["classes_used"] == 4 and entries["n_train"] == 500


def test_target_scaler_round_trip_and_log():
    y = np.array([1.0, 10.0, 100.0])
    for log in (False, True):
        scaler = TargetScaler.fit(y, log)
        np.testing.assert_allclose(scaler.inverse(scaler.transform(y)), y, rtol=1e-12)
    assert TargetScaler.fit(y, True).transform(y).mean() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="> 0"):
        TargetScaler.fit(np.array([0.0, 1.0]), True)


# ---------------------------------------------------------------- statistics


def _runs(reg_errors: np.ndarray, cls_errors: np.ndarray, shot: np.ndarray) -> ExperimentRuns:
    target = np.linspace(1.0, 2.0, reg_errors.shape[1])
    return ExperimentRuns("e", {"dataset": "d", "sampling": "natural"},
                          tuple(range(reg_errors.shape[0])), target, shot,
                          {"reg": target + reg_errors, "regcls": target + cls_errors}, {},
                          "regcls")


def test_paired_statistics_on_known_inputs():
    rng = np.random.default_rng(0)
    reg = rng.uniform(0.5, 2.0, size=(3, 8)) * rng.choice([-1, 1], size=(3, 8))
    runs = _runs(reg, reg / 2, np.array(["many"] * 8))
    mask = np.ones(8, bool)
    mae = compare_shot(runs, mask, "mae")
    assert mae["rel_change"] == pytest.approx(-0.5)
    assert mae["ci_low"] == pytest.approx(-0.5) and mae["ci_high"] == pytest.approx(-0.5)
    assert mae["sample_ci_low"] == pytest.approx(-0.5)
    assert mae["sample_ci_high"] == pytest.approx(-0.5)
    # Every one of 8 paired differences is negative: exact two-sided p = 2 / 2**8.
    assert mae["p_sample"] == pytest.approx(2 / 2**8)
    assert mae["seeds_won"] == 3 and mae["n_seeds"] == 3
    per_seed = np.abs(reg).mean(axis=1)
    assert mae["p_seed"] == pytest.approx(stats.ttest_rel(per_seed / 2, per_seed).pvalue)
    assert compare_shot(runs, mask, "mse")["rel_change"] == pytest.approx(-0.75)
    gm = compare_shot(runs, mask, "gm")
    assert gm["rel_change"] == pytest.approx(-0.5)
    assert gm["ci_low"] == pytest.approx(-0.5) and gm["ci_high"] == pytest.approx(-0.5)


def test_compare_takes_any_baseline_without_relabeling():
    rng = np.random.default_rng(1)
    target = np.linspace(0.0, 1.0, 20)
    first = target + rng.normal(size=(3, 20))
    second = target + 0.5 * (first - target)
    row = compare(first, second, target, "mse")
    assert row["rel_change"] == pytest.approx(-0.75)
    assert row["baseline"] == pytest.approx(np.mean((first - target) ** 2))
    # Reversed: the same test, the other way round.
    back = compare(second, first, target, "mse")
    assert back["rel_change"] == pytest.approx(3.0)
    assert back["p_seed"] == pytest.approx(row["p_seed"])
    runs = ExperimentRuns("e", {"dataset": "d", "sampling": "natural"}, (0, 1, 2), target,
                          np.array(["many"] * 20), {"regcls": first, "lds": second}, {},
                          "lds", baseline="regcls")
    assert compare_shot(runs, np.ones(20, bool), "mse") == row


def test_gm_change_ci_brackets_a_known_shift():
    rng = np.random.default_rng(5)
    reg = rng.normal(size=400)
    cls = reg + np.log(0.8) + rng.normal(scale=0.1, size=400)
    low, high = relative_change_ci(reg, cls, "gm")
    assert low < -0.2 < high and high - low < 0.05


def test_experiment_table_handles_empty_shots_and_holm():
    rng = np.random.default_rng(2)
    reg = rng.normal(size=(2, 30))
    cls = reg * rng.uniform(0.7, 1.2, size=(2, 30))
    shot = np.array(["many"] * 20 + ["few"] * 10)
    table = experiment_table(_runs(reg, cls, shot))
    assert len(table) == 12
    medium = table[table["shot"] == "medium"]
    assert (medium["n_test"] == 0).all() and medium["baseline"].isna().all()
    assert medium["p_sample"].isna().all() and medium["p_sample_holm"].isna().all()
    finite = table["p_sample"].notna()
    np.testing.assert_allclose(table.loc[finite, "p_sample_holm"],
                               holm(table.loc[finite, "p_sample"].to_numpy()))
    assert (table.loc[finite, "p_sample_holm"] >= table.loc[finite, "p_sample"]).all()


# ---------------------------------------------------------------- imbalance series


def test_series_samplings_grow_the_imbalance_on_a_fixed_pool():
    rng = np.random.default_rng(0)
    # A skewed pool whose every target region still holds rows (as after the split cut).
    pool = np.concatenate([rng.uniform(0, 10, 10_000), np.clip(rng.gamma(3, 1, 30_000), 0, 10)])
    ratios = []
    for sampling in ("uniform", "mild", "moderate", "severe"):
        picked, peak = subsample_training(pool, sampling, 2000, 32, seed=0)
        assert picked.size >= 1980 and np.unique(picked).size == picked.size  # no replacement
        assert (peak is None) == (sampling == "uniform")
        ratios.append(imbalance_ratio(pool[picked], 32))
    assert ratios == sorted(ratios) and ratios[-1] > 10 * ratios[0]
