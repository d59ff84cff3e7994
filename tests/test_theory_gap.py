"""`theory gap`: robust range and σ, finite imbalance, the calibrated verdict, σ from features."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from clsreg.analysis.binning import empty_bin_share, imbalance_ratio
from clsreg.analysis.theory_calibration import (
    CALIBRATION_FILE,
    VERDICT_SOURCES,
    VERDICTS,
    Calibration,
    load_calibration,
)
from clsreg.analysis.theory_gap import gap_report, predicted_change
from clsreg.cli import cli
from clsreg.realdata.cv_sigma import cross_validated_sigma
from clsreg.realdata.datasets import table_from_frame
from clsreg.realdata.theory_gap import gap_on_files


def test_imbalance_ratio_counts_only_non_empty_bins():
    values = np.concatenate([np.linspace(0.0, 1.0, 1000), [10.0]])
    # 64 bins of width 10/64 over [0, 10]: [0, 1] touches bins 0..6, 10 is in bin 63.
    counts = np.histogram(values, np.linspace(0, 10, 65))[0]
    assert (counts > 0).sum() == 8
    assert imbalance_ratio(values) == counts.max() / 1.0
    assert empty_bin_share(values) == pytest.approx(56 / 64)


def _calibration(points: list[tuple[float, float]], half_width: float = 0.01) -> Calibration:
    return Calibration.fit([{"predicted_change": x, "measured_change": y,
                             "ci_low": y - half_width, "ci_high": y + half_width}
                            for x, y in points])


def test_calibration_fit_interval_and_verdicts():
    xs = np.linspace(-0.4, 0.0, 9)
    wiggle = 0.001 * np.array([1, -1, 1, -1, 0, 1, -1, 1, -1])
    calibration = _calibration([(x, 0.5 * x + w) for x, w in zip(xs, wiggle, strict=True)])
    assert calibration.slope == pytest.approx(0.5, abs=0.01)
    assert calibration.intercept == pytest.approx(0.0, abs=0.005)
    assert calibration.detectable == pytest.approx(0.01)
    # The interval is the OLS prediction interval: centred on the line, wider off-centre.
    center, low, high = calibration.interval(-0.2)
    assert center == pytest.approx(calibration.intercept - 0.2 * calibration.slope)
    assert low < center < high
    assert (high - low) < (np.subtract(*calibration.interval(-2.0)[2:0:-1]))
    assert calibration.verdict(-0.3)[0] == "likely to help"
    assert calibration.verdict(0.0)[0] == "unlikely to matter"
    assert calibration.power.has_power and calibration.power.loto_r2 > 0.99
    noisy = _calibration([(x, 0.5 * x + 0.2 * (-1) ** i) for i, x in enumerate(xs)])
    # Alternating ±0.2 around a line of slope 0.5 over a 0.4 range: the slope's CI holds 0
    # and the held-out points are predicted worse than by their mean, so no verdict at all.
    assert noisy.slope_low < 0 < noisy.slope_high and noisy.power.loto_r2 <= 0
    verdict, reason = noisy.verdict(-0.1)
    assert verdict is None and reason.startswith("no verdict: the calibration has no predictive")


def test_robust_range_and_sigma_ignore_an_outlier():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 1.0, 10_000)
    calibration = _calibration([(x, 0.5 * x) for x in np.linspace(-0.4, 0, 5)])
    reports = [gap_report(np.append(base, outlier), calibration=calibration)
               for outlier in (2.0, 1e6)]
    for report in reports:
        assert 0.0 <= report.range[0] < 0.01 and 0.99 < report.range[1] <= 1.0
        assert report.sigma == pytest.approx(0.075 * (report.range[1] - report.range[0]))
        assert report.n_outside >= 1 and report.n + report.n_outside == 10_001
        assert math.isfinite(report.imbalance_ratio) and report.imbalance_ratio < 2
        assert report.verdict in VERDICTS
    assert reports[0].sigma == pytest.approx(reports[1].sigma)
    # The prediction is the theory's formula at the recommended class setup.
    report = reports[0]
    assert report.predicted_rel_change == pytest.approx(predicted_change(
        report.excess_mse, report.sigma, report.captured_fraction))
    assert report.predicted_rel_change <= 0


def test_imbalanced_targets_predict_a_gain_and_a_help_verdict():
    rng = np.random.default_rng(1)
    values = np.where(rng.random(20_000) < 0.9, rng.uniform(0.45, 0.5, 20_000),
                      rng.uniform(0.0, 1.0, 20_000))
    calibration = _calibration([(x, 0.5 * x + 0.001 * (-1) ** i)
                                for i, x in enumerate(np.linspace(-0.6, 0, 9))])
    report = gap_report(values, (0.0, 1.0), sigma=0.02, calibration=calibration)
    assert report.predicted_rel_change < -0.1
    assert report.verdict == "likely to help" and report.interval[1] < 0


def test_the_stored_calibration_loads_and_is_a_fit_of_its_real_points():
    table = pd.read_csv(CALIBRATION_FILE)
    fitted = load_calibration()
    points = table[(table["role"] == "calibration") & table["source"].isin(VERDICT_SOURCES)]
    assert fitted.num_points == len(points) >= 8 + 4
    assert (table[table["role"] == "calibration"]["source"] == "1d").sum() == 8
    assert (table[table["role"] == "validation"]["source"] == "table").sum() >= 6
    x, y = points["predicted_change"].to_numpy(), points["measured_change"].to_numpy()
    slope, intercept = np.polyfit(x, y, 1)
    assert fitted.slope == pytest.approx(slope) and fitted.intercept == pytest.approx(intercept)
    assert set(table["outcome"]) <= {"help", "hurt", "none"}


def _linear_table(n: int = 4000, noise: float = 0.5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    group = rng.choice(["a", "b"], n)
    y = 3 * x + np.where(group == "a", 1.0, -1.0) + rng.normal(0, noise, n)
    return pd.DataFrame({"x": x, "group": group, "y": y})


def test_cross_validated_sigma_recovers_the_noise_scale():
    frame = _linear_table()
    sigma = cross_validated_sigma(table_from_frame(frame, "y", "linear"))
    # Out-of-fold residuals of a good model: the noise (0.5) plus a little model error.
    assert 0.5 <= sigma < 0.55


def test_gap_command_with_features(tmp_path):
    path = tmp_path / "train.csv"
    _linear_table().to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["theory", "gap", "--features", str(path), "--target",
                                      "y", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    old_keys = {"n", "range", "sigma", "imbalance_ratio", "expected_gap", "excess_mse",
                "captured_fraction", "recommended_num_classes", "recommended_binning",
                "predicted_benefit_mse", "verdict"}
    new_keys = {"predicted_rel_change", "interval", "sigma_source", "empty_bin_share"}
    assert old_keys | new_keys <= set(report)
    assert "cross-validated" in report["sigma_source"] and 0.5 <= report["sigma"] < 0.55
    low, high = report["interval"]
    assert low < report["calibrated_rel_change"] < high
    assert 0.0 <= report["empty_bin_share"] <= 1.0
    assert report["predicted_rel_change"] <= 0.0
    plain_mse = report["sigma"] ** 2 + report["excess_mse"]
    assert 0.0 <= report["predicted_benefit_mse"] < plain_mse
    assert report["predicted_rel_change"] == pytest.approx(-report["predicted_benefit_mse"]
                                                           / plain_mse)
    # The shipped calibration has no predictive power: no verdict, the reason, the numbers.
    assert report["verdict"] is None and report["imbalance_ratio"] is not None
    assert report["reason"].startswith("no verdict: the calibration has no predictive power")
    assert report["calibration_power"]["has_power"] is False
    assert report["measure"].startswith(f"clsreg realdata run --csv {path} --target y")
    text = CliRunner().invoke(cli, ["theory", "gap", "--features", str(path), "--target", "y"])
    (line,) = [t for t in text.output.splitlines() if t.startswith("no verdict:")]
    assert f"; measure instead: clsreg realdata run --csv {path}" in line
    assert "calibrated change (information, not a verdict)" in text.output
    assert "VERDICT:" not in text.output.upper().replace("NO VERDICT:", "")


def test_gap_on_files_reads_the_targets_and_names_the_measuring_command(tmp_path):
    frame = _linear_table(2000)
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    report, hint = gap_on_files(path, "y", None, "y", sigma=0.5)
    direct = gap_report(pd.read_csv(path)["y"].to_numpy(), sigma=0.5)
    assert (report.n, report.excess_mse, report.sigma_source) == (direct.n, direct.excess_mse,
                                                                  "given")
    assert hint == f"clsreg realdata run --csv {path} --target y --seeds 10 --out runs/measured"
    # From the features, σ is the cross-validated model's RMSE over the targets in range.
    report, hint = gap_on_files(None, None, path, "y", drop="group", value_range=(-10.0, 10.0))
    table = table_from_frame(pd.read_csv(path), "y", "train.csv", drop="group")
    assert report.sigma == pytest.approx(cross_validated_sigma(table, (-10.0, 10.0)))
    assert report.range == (-10.0, 10.0) and "cross-validated" in report.sigma_source
    assert hint.endswith("--target y --drop group --seeds 10 --out runs/measured")


@pytest.mark.parametrize("args,message", [
    (["--features", "{path}", "--target", "nope"], "target column 'nope'"),
    (["--features", "{path}"], "name the target"),
    ([], "give --samples"),
])
def test_gap_command_bad_feature_input(tmp_path, args, message):
    path = tmp_path / "train.csv"
    _linear_table(200).to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["theory", "gap",
                                      *[a.format(path=path) for a in args]])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error:") and message in lines[-1]


def _targets(window_share: float, seed: int = 0, n: int = 4000) -> np.ndarray:
    """Targets on [0, 1]: ``window_share`` of them in [0.45, 0.5], the rest uniform."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < window_share, rng.uniform(0.45, 0.5, n),
                    rng.uniform(0.0, 1.0, n))


# From uniform targets (predicted change ≈ 0) to 95% in one window (≈ −30%): wider than the
# real calibration points' −0% … −25%.
WINDOW_SHARES = (0.0, 0.3, 0.6, 0.8, 0.95)


def _reports(calibration: Calibration | None) -> list:
    return [gap_report(_targets(w), (0.0, 1.0), sigma=0.08, calibration=calibration)
            for w in WINDOW_SHARES]


def test_the_shipped_calibration_gives_no_verdict_anywhere_in_its_range():
    shipped = load_calibration()
    power = shipped.power
    assert power.num_tables == 9  # 8 tables and the diamonds series, its 4 steps together
    assert not power.has_power and power.slope_low < 0 < power.slope_high
    assert power.loto_r2 <= 0
    reports = _reports(None)
    predicted = [r.predicted_rel_change for r in reports]
    table = pd.read_csv(CALIBRATION_FILE)
    real = table[table["source"].isin(VERDICT_SOURCES)]["predicted_change"]
    assert min(predicted) < real.min() and max(predicted) > real.max() - 0.01
    for report in reports:
        assert report.verdict is None and "no predictive power" in report.reason
        low, high = report.interval  # the interval stays, as information
        assert low < report.calibrated_rel_change < high


def test_a_calibration_with_power_gives_verdicts_that_vary_with_the_input():
    # Tables whose measured change is 0.8 × the predicted one (± 0.2%): held-out tables are
    # predicted almost exactly, so the verdict logic runs and follows the input.
    points = [{"predicted_change": x, "measured_change": 0.8 * x + 0.002 * (-1) ** i,
               "ci_low": 0.8 * x - 0.01, "ci_high": 0.8 * x + 0.01, "name": f"t{i}",
               "source": "table"} for i, x in enumerate(np.linspace(-0.3, 0.0, 10))]
    calibration = Calibration.fit(points)
    assert calibration.power.has_power and calibration.power.loto_r2 > 0.9
    verdicts = [r.verdict for r in _reports(calibration)]
    assert verdicts[0] == VERDICTS[1] and verdicts[-1] == VERDICTS[0]
    assert len(set(verdicts)) >= 2 and None not in verdicts


def test_leave_one_table_out_holds_out_a_series_whole():
    # A series of 3 steps far out on the line, plus 6 tables: held out point by point each
    # step is predicted by its two siblings; held out whole, only by the tables, whose line
    # (slope 0) misses them: the series' steps must be left out together.
    tables = [{"predicted_change": x, "measured_change": 0.0, "ci_low": -0.01,
               "ci_high": 0.01, "name": f"t{i}", "source": "table"}
              for i, x in enumerate(np.linspace(-0.05, 0.0, 6))]
    series = [{"predicted_change": -0.3 - 0.01 * i, "measured_change": -0.2 - 0.01 * i,
               "ci_low": -0.21, "ci_high": -0.19, "name": f"d/{i}", "source": "series"}
              for i in range(3)]
    power = Calibration.fit(tables + series).power
    assert power.num_tables == 7
    alone = Calibration.fit([{**p, "source": "table"} for p in tables + series]).power
    assert alone.num_tables == 9 and alone.loto_r2 > 0.5 > power.loto_r2
