"""The calibration of ``clsreg theory gap``'s verdict, and its validation on other tables.

Every point is one benchmark configuration with a theory prediction and a measured outcome:

* 1D (calibration): the paper grid's clean and noisy settings × 4 samplings, reg+cls at
  C = 16 uniform bins against reg (10 functions × 5 seeds, paired); predicted change the mean
  of ``−captured·excess / (σ² + excess)`` over its datasets, σ the store's uniform-data reg
  RMSE (the MLP's own predictive scale);
* tables (calibration: :data:`CALIBRATION_TABLES` and the diamonds imbalance series;
  validation: :data:`VALIDATION_TABLES`, never used to fit): ``realdata run`` with its
  defaults and :data:`SEEDS` seeds, overall balanced-test MSE change of reg+cls against reg;
  predicted change from ``theory gap`` on the training targets exactly as a user runs it
  (central-99% range, σ from 5-fold cross-validated gradient boosting on the training rows).

The seed-level paired t-test, Holm-adjusted within each role, decides whether a point's
outcome is a significant help, a significant hurt or neither.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from clsreg.analysis.stats import holm
from clsreg.analysis.theory_gap import (
    VERDICT_SOURCES,
    VERDICTS,
    Calibration,
    gap_report,
    robust_range,
)
from clsreg.realdata.cv_sigma import cross_validated_sigma
from clsreg.realdata.datasets import Table
from clsreg.realdata.experiment import Prepared, make_config, prepare, run
from clsreg.realdata.imbalance import prepare_series, run_series
from clsreg.realdata.report import ExperimentRuns, compare_shot, load_runs

CALIBRATION_TABLES = ("hotel_rates", "cps1988", "computers", "txhousing", "tenmilerace",
                      "gapminder", "deliveries", "wage")
VALIDATION_TABLES = ("hlm_wages", "budgetfood", "lending_club", "medexp", "births",
                     "check_times", "vietnam", "scorecard", "nmes1988")
SERIES_DATASET = "diamonds"
SERIES_EPOCHS = 60
SEEDS = 10
ONE_D_CLASSES = 16
ALPHA = 0.05


def _training_table(table: Table, rows: np.ndarray) -> Table:
    return replace(table, target=table.target[rows],
                   frame=table.frame.iloc[rows].reset_index(drop=True))


def predict_table(prepared: Prepared, table: Table) -> dict:
    """``theory gap`` on the training rows, as a user runs it with ``--features``."""
    y_train = prepared.y_train
    sigma = cross_validated_sigma(_training_table(table, prepared.train_rows),
                                  robust_range(y_train))
    report = gap_report(y_train, sigma=sigma, calibrate=False)
    return {"n_train": int(y_train.size), "imbalance_ratio": report.imbalance_ratio,
            "empty_bin_share": report.empty_bin_share, "sigma": report.sigma,
            "excess_mse": report.excess_mse, "relative_excess": report.relative_excess,
            "captured_fraction": report.captured_fraction,
            "num_classes": report.recommended_num_classes,
            "predicted_change": report.predicted_rel_change}


def measured_change(runs: ExperimentRuns) -> dict:
    """Overall balanced-test MSE change of one stored experiment (``realdata report``'s
    overall MSE cell)."""
    row = compare_shot(runs, np.ones(runs.target.size, bool), "mse")
    return {"measured_change": float(row["rel_change"]), "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]), "p_seed": float(row["p_seed_t"]),
            "n_seeds": int(row["n_seeds"])}


def table_points(names: tuple[str, ...], role: str, runs_dir: Path, seeds: int = SEEDS,
                 progress: bool = True, binning: str = "uniform") -> list[dict]:
    """Train (or resume) ``realdata run`` on each table and pair it with its prediction."""
    points = []
    for name in names:
        config = make_config(dataset=name, binning=binning)
        table = config.source.load()
        prepared = prepare(config, table)
        run(prepared, seeds, runs_dir / name, progress=progress)
        points.append({"role": role, "source": "table", "name": name,
                       **predict_table(prepared, table),
                       **measured_change(load_runs(runs_dir / name)[0])})
    return points


def series_points(runs_dir: Path, seeds: int = SEEDS, progress: bool = True,
                  binning: str = "uniform") -> list[dict]:
    """The diamonds imbalance series (uniform … severe), each step one calibration point."""
    config = make_config(dataset=SERIES_DATASET, epochs=SERIES_EPOCHS, binning=binning)
    table = config.source.load()
    steps = prepare_series(config)
    out = runs_dir / f"{SERIES_DATASET}_series"
    run_series(steps, seeds, out, progress=progress)
    runs = {r.config["sampling"]: r for r in load_runs(out)}
    return [{"role": "calibration", "source": "series",
             "name": f"{SERIES_DATASET}/{step.config.sampling}",
             **predict_table(step, table), **measured_change(runs[step.config.sampling])}
            for step in steps]


def one_d_points(store_dir: Path, num_classes: int = ONE_D_CLASSES,
                 workers: int = 1) -> list[dict]:
    """The paper grid's clean and noisy cells at ``num_classes`` uniform bins."""
    from clsreg.analysis.vocabulary import LABEL_SHIFT_SETTINGS, SAMPLINGS
    from clsreg.simulate.report import stat_row
    from clsreg.simulate.theory_check import (
        attach_predictions,
        store_pairs,
        theory_records,
        uniform_rmse,
    )

    pairs = [p for p in store_pairs(store_dir) if p["num_classes"] == num_classes
             and p["binning"] == "uniform" and p["setting"] in LABEL_SHIFT_SETTINGS]
    rows = attach_predictions(pairs, uniform_rmse(theory_records(store_dir)), workers=workers)
    points = []
    for setting in LABEL_SHIFT_SETTINGS:
        for sampling in SAMPLINGS:
            cell = [r for r in rows if r["setting"] == setting and r["sampling"] == sampling]
            if not cell:
                continue
            stats = stat_row(np.array([r["reg_mse"] for r in cell]),
                             np.array([r["regcls_mse"] for r in cell]),
                             np.array([r["data_seed"] for r in cell]))
            excess = float(np.sum([r["excess_mse"] for r in cell]))
            benefit = float(np.sum([r["predicted_benefit"] for r in cell]))
            points.append({
                "role": "calibration", "source": "1d", "name": f"1d/{setting}/{sampling}",
                "n_train": math.nan, "imbalance_ratio": math.nan, "empty_bin_share": math.nan,
                "sigma": float(np.mean([r["sigma"] for r in cell])),
                "excess_mse": excess / len(cell),
                "relative_excess": float(np.mean([r["relative_excess"] for r in cell])),
                "captured_fraction": benefit / excess if excess > 0 else math.nan,
                "num_classes": num_classes,
                "predicted_change": -float(np.mean([r["relative_benefit"] for r in cell])),
                "measured_change": stats["rel_change"], "ci_low": stats["ci_low"],
                "ci_high": stats["ci_high"], "p_seed": stats["p_seed"],
                "n_seeds": stats["n_seeds"]})
    return points


def outcome(row: dict) -> str:
    """help / hurt / none: the sign of a change whose Holm-adjusted seed-level p < 0.05."""
    if not row["p_seed_holm"] < ALPHA:
        return "none"
    return "help" if row["measured_change"] < 0 else "hurt"


def finish(points: list[dict]) -> pd.DataFrame:
    """Holm within each role, the outcome of every point."""
    frame = pd.DataFrame(points)
    frame["p_seed_holm"] = np.nan
    for role in frame["role"].unique():
        index = frame["role"] == role
        frame.loc[index, "p_seed_holm"] = holm(frame.loc[index, "p_seed"].to_numpy())
    frame["outcome"] = [outcome(r) for r in frame.to_dict("records")]
    return frame


def build(runs_dir: Path, sim_store: Path, seeds: int = SEEDS, workers: int = 1,
          progress: bool = True, binning: str = "uniform") -> pd.DataFrame:
    """Every calibration and validation point (training what is not in ``runs_dir``).

    ``binning`` is reg+cls's class binning on the tables (``equal``: equal-frequency bins
    with the class-balancing mask, the closest the recipes come to bound (4)'s balanced
    classes); the 1D points exist for the paper grid's uniform bins only.
    """
    points = one_d_points(sim_store, workers=workers) if binning == "uniform" else []
    points += table_points(CALIBRATION_TABLES, "calibration", runs_dir, seeds, progress,
                           binning)
    points += series_points(runs_dir, seeds, progress, binning)
    points += table_points(VALIDATION_TABLES, "validation", runs_dir, seeds, progress, binning)
    return finish(points)


FITS = {"real (theory gap's verdict)": VERDICT_SOURCES, "1d": ("1d",),
        "pooled (1d + real)": ("1d", *VERDICT_SOURCES)}


def evaluate(frame: pd.DataFrame) -> tuple[dict[str, Calibration], pd.DataFrame, dict]:
    """Fit each of :data:`FITS` on its calibration points; give every point the calibrated
    interval and verdict of the real fit (``theory gap``'s), and of the pooled fit for
    comparison; score both on each role's real points: precision and recall of "likely to
    help" for a significant help, and how often "unlikely to matter" had no significant
    change."""
    calibration = frame[frame["role"] == "calibration"]
    fits = {name: Calibration.fit(calibration[calibration["source"].isin(sources)]
                                  .to_dict("records")) for name, sources in FITS.items()
            if calibration["source"].isin(sources).sum() >= 4
            and not (name.startswith("pooled") and not (calibration["source"] == "1d").any())}
    scored = frame.copy()
    scores = {}
    for label, fit in (("real", fits["real (theory gap's verdict)"]),
                       ("pooled", fits.get("pooled (1d + real)"))):
        if fit is None:
            continue
        intervals = [fit.interval(p) for p in scored["predicted_change"]]
        scored[f"calibrated_{label}"] = [i[0] for i in intervals]
        scored[f"low_{label}"] = [i[1] for i in intervals]
        scored[f"high_{label}"] = [i[2] for i in intervals]
        scored[f"verdict_{label}"] = [fit.verdict(p)[0] for p in scored["predicted_change"]]
        for role in ("calibration", "validation"):
            part = scored[(scored["role"] == role) & scored["source"].isin(VERDICT_SOURCES)]
            scores[f"{role} tables, {label} fit"] = verdict_scores(part, f"verdict_{label}")
    return fits, scored, scores


def verdict_scores(part: pd.DataFrame, column: str) -> dict:
    """How a verdict column agrees with the measured outcomes of ``part``."""
    says_help = part[column] == VERDICTS[0]
    says_null = part[column] == VERDICTS[1]
    helped = part["outcome"] == "help"
    return {
        "points": int(len(part)), "helped": int(helped.sum()),
        "hurt": int((part["outcome"] == "hurt").sum()),
        "says_help": int(says_help.sum()), "says_null": int(says_null.sum()),
        "says_uncertain": int((part[column] == VERDICTS[2]).sum()),
        "precision_help": (float((says_help & helped).sum() / says_help.sum())
                           if says_help.any() else math.nan),
        "recall_help": (float((says_help & helped).sum() / helped.sum())
                        if helped.any() else math.nan),
        "null_correct": (float((says_null & (part["outcome"] == "none")).sum()
                               / says_null.sum()) if says_null.any() else math.nan),
        "spearman": (float(part[["predicted_change", "measured_change"]]
                           .corr(method="spearman").iloc[0, 1]) if len(part) > 2
                     else math.nan),
    }
