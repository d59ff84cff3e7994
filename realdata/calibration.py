"""The points that calibrate ``clsreg theory gap``'s verdict and validate it, from stores.

This module joins the theory to real-data (and the paper's 1D) stores; the fits, outcomes,
scores and the calibration file are :mod:`analysis.theory_calibration`'s. Every point is one
benchmark configuration with a theory prediction and a measured outcome:

* 1D (calibration): the paper grid's clean and noisy settings × 4 samplings, reg+cls at
  C = 16 uniform bins against reg (10 functions × 5 seeds, paired); predicted change the mean
  of ``−captured·excess / (σ² + excess)`` over its datasets, σ the store's uniform-data reg
  RMSE (the MLP's own predictive scale);
* tables (calibration: :data:`CALIBRATION_TABLES` and the diamonds imbalance series;
  validation: :data:`VALIDATION_TABLES`, never used to fit): ``realdata run`` with its
  defaults and :data:`SEEDS` seeds, overall balanced-test MSE change of reg+cls against reg;
  predicted change from ``theory gap`` on the training targets exactly as a user runs it
  (central-99% range, σ from 5-fold cross-validated gradient boosting on the training rows).

:func:`build` gives every point its outcome (:func:`analysis.theory_calibration.finish`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from clsreg.analysis.theory_calibration import finish
from clsreg.analysis.theory_gap import gap_report, robust_range
from clsreg.analysis.vocabulary import P_SEED
from clsreg.realdata.cv_sigma import cross_validated_sigma
from clsreg.realdata.datasets import Table
from clsreg.realdata.imbalance import prepare_series, run_series
from clsreg.realdata.report import ExperimentRuns, compare_shot, load_runs
from clsreg.realdata.sources import make_config, run
from clsreg.realdata.tables import Prepared, load_table, prepare, table_part

CALIBRATION_TABLES = ("hotel_rates", "cps1988", "computers", "txhousing", "tenmilerace",
                      "gapminder", "deliveries", "wage")
VALIDATION_TABLES = ("hlm_wages", "budgetfood", "lending_club", "medexp", "births",
                     "check_times", "vietnam", "scorecard", "nmes1988")
SERIES_DATASET = "diamonds"
SERIES_EPOCHS = 60
SEEDS = 10
ONE_D_CLASSES = 16


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
            "ci_high": float(row["ci_high"]), "p_seed": float(row[P_SEED]),
            "n_seeds": int(row["n_seeds"])}


def table_points(names: tuple[str, ...], role: str, runs_dir: Path, seeds: int = SEEDS,
                 progress: bool = True, binning: str = "uniform") -> list[dict]:
    """Train (or resume) ``realdata run`` on each table and pair it with its prediction."""
    points = []
    for name in names:
        config = make_config(dataset=name, binning=binning)
        table = load_table(config)
        prepared = prepare(config, table)
        run(config, runs_dir / name, seeds, progress=progress, parts=[table_part(prepared)])
        points.append({"role": role, "source": "table", "name": name,
                       **predict_table(prepared, table),
                       **measured_change(load_runs(runs_dir / name)[0])})
    return points


def series_points(runs_dir: Path, seeds: int = SEEDS, progress: bool = True,
                  binning: str = "uniform") -> list[dict]:
    """The diamonds imbalance series (uniform … severe), each step one calibration point."""
    config = make_config(dataset=SERIES_DATASET, epochs=SERIES_EPOCHS, binning=binning)
    table = load_table(config)
    steps = prepare_series(config)
    out = runs_dir / f"{SERIES_DATASET}_series"
    run_series(steps, seeds, out, progress=progress)
    runs = {r.config["sampling"]: r for r in load_runs(out)}
    return [{"role": "calibration", "source": "series",
             "name": f"{SERIES_DATASET}/{step.config.options['sampling']}",
             **predict_table(step, table),
             **measured_change(runs[step.config.options["sampling"]])}
            for step in steps]


def one_d_points(store_dir: Path, num_classes: int = ONE_D_CLASSES,
                 workers: int = 1) -> list[dict]:
    """The paper grid's clean and noisy cells at ``num_classes`` uniform bins."""
    from clsreg.analysis.vocabulary import LABEL_SHIFT_SETTINGS, SAMPLINGS
    from clsreg.simulate.report import stat_row
    from clsreg.simulate.theory_link import (
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
