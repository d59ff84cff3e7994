"""The theory check against a store: measurements, predictions, rank correlations, ceiling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from clsreg.analysis.errors import InputError
from clsreg.analysis.stats import (
    cluster_rank_correlation_ci,
    rank_correlation_ci,
    spearman_ci,
    split_half_reliability,
)
from clsreg.analysis.store import Record, ResultsStore
from clsreg.analysis.theory import excess_mse
from clsreg.cli import cli
from clsreg.simulate.data import DATA_SEEDS, MODEL_SEEDS
from clsreg.simulate.theory_link import (
    POOLED,
    attach_predictions,
    correlate,
    measured_excess,
    measured_pairs,
    run_check,
    target_model,
    theory_records,
    uniform_rmse,
)
from scipy import stats

SAMPLINGS = ("mild", "moderate", "severe")
FUNCTIONS = (0, 1, 2)
SEEDS = (0, 1, 2, 3)
UNIFORM_MSE = {0: 0.04, 1: 0.09, 2: 0.02}  # σ-from = 0.2, 0.3, 0.141...


def _config(setting, sampling, function, seed, model, num_classes):
    return {"setting": setting, "sampling": sampling, "function": function, "function_seed": 0,
            "data_seed": int(DATA_SEEDS[seed]), "model_seed": int(MODEL_SEEDS[seed]),
            "model": model, "num_classes": num_classes, "binning": "uniform",
            "lam": 0.0 if model == "reg" else 100.0, "lr": 1e-3, "optimizer": "adam",
            "weight_decay": 1e-3, "hidden": [6, 15], "epochs": 80, "batch_size": 256,
            "num_points": 60000, "dtype": "float32", "device": "cpu"}


def _record(config, mse):
    key = "-".join(str(config[k]) for k in ("sampling", "function", "data_seed", "model"))
    return Record(key=key, kind="sim1d", seed=config["model_seed"], config=config,
                  metrics={"train_mse": mse, "val_mse": mse, "test_mse": mse,
                           "class_top1": None, "diverged": False})


def make_store(path):
    """A hand-made clean store whose measurements are exact functions of the theory:
    reg's excess under imbalance is 2 × the predicted excess (σ = √ uniform MSE) and
    reg+cls (C = 16) gains 0.5 × that excess."""
    records = []
    for function in FUNCTIONS:
        sigma = math.sqrt(UNIFORM_MSE[function])
        for seed in SEEDS:
            records.append(_record(_config("clean", "uniform", function, seed, "reg", 0),
                                   UNIFORM_MSE[function]))
            for sampling in SAMPLINGS:
                model = target_model(function, "clean", sampling, int(DATA_SEEDS[seed]))
                excess = excess_mse(model.density(), sigma)
                reg = UNIFORM_MSE[function] + 2 * excess
                records.append(_record(_config("clean", sampling, function, seed, "reg", 0),
                                       reg))
                records.append(_record(_config("clean", sampling, function, seed, "regcls",
                                               16), reg - excess))
    with ResultsStore(path) as store:
        store.write(records)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("theory_check"))


def test_measurements_are_read_from_the_store(store):
    records = theory_records(store)
    excess = measured_excess(records)
    assert len(excess) == len(SAMPLINGS) * len(FUNCTIONS) * len(SEEDS)
    row = excess[0]
    assert row["measured"] == pytest.approx(row["reg_mse"] - row["uniform_mse"], abs=1e-12)
    assert row["measured_rel"] == pytest.approx(row["reg_mse"] / row["uniform_mse"] - 1)
    pairs = measured_pairs(records)
    assert len(pairs) == len(excess) and all(p["num_classes"] == 16 for p in pairs)
    sigma = uniform_rmse(records)
    assert sorted(sigma.values()) == pytest.approx(sorted(math.sqrt(v)
                                                          for v in UNIFORM_MSE.values()))


def test_predictions_use_the_stores_sigma(store):
    records = theory_records(store)
    rows = attach_predictions(measured_excess(records), uniform_rmse(records))
    for row in rows:
        assert row["sigma_source"] == "store"
        assert row["sigma"] == pytest.approx(math.sqrt(UNIFORM_MSE[row["function"]]))
        # The store was built as 2 × the predicted excess: recovered to quadrature precision.
        assert row["measured"] == pytest.approx(2 * row["excess_mse"], rel=1e-9)
    fallback = attach_predictions(measured_excess(records)[:2], None, sigma_fraction=0.1)
    assert all(r["sigma_source"] == "fraction" for r in fallback)


def test_check_ranks_a_store_built_from_the_theory_perfectly(store):
    result = run_check(store, "excess", num_resamples=200)
    rows = {r.group: r for r in result.rows}
    assert rows["clean"].spearman == pytest.approx(1.0)
    assert rows["clean"].kendall == pytest.approx(1.0)
    assert rows["clean"].num_cells == len(SAMPLINGS) * len(FUNCTIONS)
    assert rows[POOLED].num_runs == len(SAMPLINGS) * len(FUNCTIONS) * len(SEEDS)
    # 9 cells, 4 seeds each: the halves disagree only through the seeds' peak positions.
    assert 0.5 < rows["clean"].ceiling <= 1.0
    assert result.calibration == [] or len(result.calibration) == 10
    gain = run_check(store, "gain", num_resamples=200)
    assert {r.group: r for r in gain.rows}["clean"].spearman > 0.95
    # With a σ that ignores the function, the gains keep their ranks within each function.
    other = [r for r in result.candidates if "[other σ]" in r.regime]
    assert other and all(-1 <= r.spearman <= 1 for r in other)


def test_check_resamples_functions_and_sets_the_theory_beside_sigma(store):
    result = run_check(store, "excess", num_resamples=200)
    clean = {r.group: r for r in result.rows}["clean"]
    assert clean.cluster == "function" and clean.num_clusters == len(FUNCTIONS)
    # σ alone: the Spearman of the cells' σ (σ-from, one per function) with the measurement.
    cells = [c for c in result.cells if c["setting"] == "clean"]
    expected = stats.spearmanr([c["sigma"] for c in cells], [c["measured"] for c in cells])
    assert clean.sigma_spearman == pytest.approx(expected.statistic)
    assert clean.over_sigma == pytest.approx(1.0 - expected.statistic)
    # The theory ranks every draw perfectly, so the difference's CI is 1 − σ's CI, reversed.
    assert clean.over_sigma_low == pytest.approx(1.0 - clean.sigma_high)
    assert clean.over_sigma_high == pytest.approx(1.0 - clean.sigma_low)


def test_check_command_and_bad_stores(store, tmp_path):
    result = CliRunner().invoke(cli, ["theory", "check", str(store), "--out",
                                      str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "== excess ==" in result.output and "== gain ==" in result.output
    assert "does NOT apply to ood" in result.output
    assert "σ alone ρ [95% CI]" in result.output and "Spearman ρ [95% CI, functions]" in (
        result.output)
    assert (tmp_path / "out" / "check_gain.csv").stat().st_size > 100
    bad = CliRunner().invoke(cli, ["theory", "check", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and bad.output.startswith("Error:")
    empty = tmp_path / "empty"
    ResultsStore(empty).close()
    with pytest.raises(InputError, match="holds no"):
        theory_records(empty)


def test_split_half_reliability_matches_classical_test_theory():
    # True cell values with variance 1, per-seed noise variance 1, 6 seeds: the mean over
    # seeds has reliability 1 / (1 + 1/6) = 0.857 (Pearson); for normal data Spearman's ρ_s
    # relates to Pearson's r by ρ_s = (6/π) asin(r/2), so the split-half Spearman is that
    # of r = 1/(1 + 1/3) and the Spearman-Brown value lands within 0.02 of 0.857.
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(3000, 1))
    values = truth + rng.normal(size=(3000, 6))
    result = split_half_reliability(values)
    r_half = 1 / (1 + 1 / 3)
    rho_half = 6 / math.pi * math.asin(r_half / 2)
    assert result.split_half == pytest.approx(rho_half, abs=0.02)
    assert result.reliability == pytest.approx(2 * rho_half / (1 + rho_half), abs=0.02)
    assert result.ceiling == pytest.approx(math.sqrt(result.reliability))
    assert result.num_splits == 20  # C(6, 3)
    assert math.isnan(split_half_reliability(values[:, :1]).reliability)


def test_kendall_ci_brackets_the_estimate():
    rng = np.random.default_rng(1)
    x = rng.normal(size=150)
    y = x + rng.normal(size=150)
    tau, p, low, high = rank_correlation_ci(x, y, "kendall", 300)
    assert low < tau < high and p < 1e-6
    # For normal data τ = (2/π) asin(r) with r = 1/√2: 0.5.
    assert tau == pytest.approx(0.5, abs=0.1)
    with pytest.raises(InputError):
        rank_correlation_ci(x, y, "pearson")


def test_figures_theory(store, tmp_path):
    result = CliRunner().invoke(cli, ["figures", "theory", "--out", str(tmp_path / "figs"),
                                      "--store", str(store)])
    assert result.exit_code == 0, result.output
    for name in ("theory_gap_profiles", "theory_captured_fraction", "theory_sigma_sensitivity",
                 "theory_predicted_vs_measured"):
        assert (tmp_path / "figs" / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / "figs" / f"{name}.pdf").exists()


def _clustered(num_clusters: int = 8, per_cluster: int = 25, seed: int = 3):
    """Cells that are near-copies of their cluster: cluster-level x and y independent (the
    true correlation over clusters is 0), cells of one cluster within 1e-3 of each other."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_clusters), per_cluster)
    x = rng.normal(size=num_clusters)[labels] + 1e-3 * rng.normal(size=labels.size)
    y = rng.normal(size=num_clusters)[labels] + 1e-3 * rng.normal(size=labels.size)
    return x, y, labels


def test_cluster_bootstrap_is_wider_than_the_cell_bootstrap_on_clustered_data():
    x, y, labels = _clustered()
    rho, _, cell_low, cell_high = spearman_ci(x, y, 1000, seed=0)
    clustered = cluster_rank_correlation_ci(x, y, labels, num_resamples=1000, seed=0)
    assert clustered.estimate == pytest.approx(rho) and clustered.num_clusters == 8
    # 200 cells look like a lot of data, but they are 8 draws: a Spearman over 8 points
    # has a standard error near 1/√7 ≈ 0.38, so its 95% interval spans about ±0.7 and
    # holds the true 0; the cell bootstrap's is a few times narrower.
    assert clustered.high - clustered.low > 0.9
    assert clustered.high - clustered.low > 3 * (cell_high - cell_low)
    assert clustered.low < 0 < clustered.high
    assert cell_high < 0  # here the cell bootstrap even "finds" a correlation that is not there
    kendall = cluster_rank_correlation_ci(x, y, labels, "kendall", 300, seed=0)
    cell_kendall = rank_correlation_ci(x, y, "kendall", 300, seed=0)
    assert kendall.high - kendall.low > 3 * (cell_kendall[3] - cell_kendall[2])


def test_one_cell_per_cluster_is_the_cell_bootstrap_draw_for_draw():
    rng = np.random.default_rng(4)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    rho, _, low, high = spearman_ci(x, y, 500, seed=7)
    clustered = cluster_rank_correlation_ci(x, y, np.arange(40), num_resamples=500, seed=7)
    assert (clustered.estimate, clustered.low, clustered.high) == pytest.approx(
        (rho, low, high), abs=1e-12)
    with pytest.raises(InputError):
        cluster_rank_correlation_ci(x, y, np.arange(39))


def test_clusters_of_unequal_size_with_ties_match_writing_each_resample_out():
    # The resamples are ranked from per-cell multiplicities, not written out: the same
    # numbers as concatenating the drawn clusters and ranking them with scipy.
    rng = np.random.default_rng(6)
    x = np.round(rng.normal(size=45), 0)  # many ties
    y = x + rng.normal(size=45)
    labels = rng.integers(0, 7, 45)
    result = cluster_rank_correlation_ci(x, y, labels, num_resamples=300, seed=1)
    _, index = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(index == k) for k in range(7)]
    chosen = np.random.default_rng(1).integers(0, 7, size=(300, 7))
    written = [np.concatenate([members[k] for k in row]) for row in chosen]
    rhos = np.array([stats.spearmanr(x[i], y[i]).statistic for i in written])
    rhos = rhos[np.isfinite(rhos)]
    assert (result.low, result.high) == pytest.approx(tuple(np.quantile(rhos, [0.025, 0.975])))


def _cells(predicted, measured, sigma, functions):
    return [{"setting": "clean", "function_seed": 0, "function": int(f), "excess_mse": p,
             "measured": m, "measured_rel": m, "sigma": s, "num_seeds": 2,
             "seeds": {0: (m, m), 1: (m, m)}}
            for p, m, s, f in zip(predicted, measured, sigma, functions, strict=True)]


def test_sigma_row_and_paired_difference_have_known_answers():
    rng = np.random.default_rng(5)
    functions = np.repeat(np.arange(6), 4)
    measured = rng.normal(size=functions.size)
    sigma = rng.normal(size=functions.size)
    # The theory predicts exactly σ: it adds nothing, in every draw, so the paired CI is 0.
    row = correlate(_cells(sigma, measured, sigma, functions), "excess", "r", "clean",
                    "absolute", "excess_mse", num_resamples=300)
    assert row.over_sigma == 0.0 and row.over_sigma_low == row.over_sigma_high == 0.0
    assert row.sigma_spearman == pytest.approx(stats.spearmanr(sigma, measured).statistic)
    assert row.num_clusters == 6
    # The theory ranks perfectly and σ exactly backwards: +2 in every draw.
    row = correlate(_cells(measured, measured, -measured, functions), "excess", "r", "clean",
                    "absolute", "excess_mse", num_resamples=300)
    assert row.spearman == pytest.approx(1.0) and row.sigma_spearman == pytest.approx(-1.0)
    assert row.over_sigma_low == pytest.approx(2.0) and row.over_sigma_high == pytest.approx(2.0)
    # Unrelated predictors: the paired difference's CI covers its estimate and is wider
    # than nothing.
    row = correlate(_cells(rng.normal(size=functions.size), measured, sigma, functions),
                    "excess", "r", "clean", "absolute", "excess_mse", num_resamples=300)
    assert row.over_sigma_low < row.over_sigma < row.over_sigma_high
