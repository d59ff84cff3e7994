"""The row contract of the results store: what a stored row of each kind must hold to be read.

The store checks every row it hands out against this contract (:func:`row_problem`), so a
damaged or hand-edited row is one clear error in every command that reads it, never a
traceback deep in a report or a silently averaged NaN. The rules follow what the writers
store (``simulate.training`` for ``sim1d`` rows, ``realdata.pipeline`` for ``realdata`` rows;
tests pin that the writers' names are the ones checked here):

* config and metrics are JSON objects; the config has the entries a reader rebuilds the run
  from, each of its type; every metric is a number, a boolean or null.
* An error metric (an MSE, MAE, RMSE, GM, AbsRel or log10 error) is a finite number > 0: a
  held-out error of a trained model is never exactly 0, and NaN, inf or a negative value is
  not a measurement. Two cases store NaN on purpose and stay readable: a 1D run flagged
  ``diverged`` (its pairs are left out by :func:`analysis.compare.pair_runs`, and counted),
  and a real-data shot group with no test samples (``{shot}_count`` 0).
* A real-data row read with its arrays has ``prediction``, ``target`` and ``shot`` of its
  ``n_test`` samples, prediction and target finite.
"""

from __future__ import annotations

import math

import numpy as np
from clsreg.analysis.vocabulary import REAL_KIND, SIM_KIND

KINDS = (SIM_KIND, REAL_KIND)

# Per-sample error metrics, named as the writers store them (> 0 when measured).
ERROR_METRICS = ("mse", "mae", "rmse", "gm", "abs_rel", "lg10")
# Fractions of samples (the depth benchmarks' δ thresholds), in [0, 1].
FRACTION_METRICS = ("delta1", "delta2", "delta3")
# Shot groups of a real-data row's metrics: ``{shot}_{metric}`` and ``{shot}_count``.
SHOT_GROUPS = ("overall", "many", "medium", "few")
SIM_ERRORS = ("train_mse", "val_mse", "test_mse")

_STR, _INT, _NUMBER, _INT_LIST = "a string", "an integer", "a number", "a list of integers"
SIM_CONFIG = {
    "setting": _STR, "sampling": _STR, "function": _INT, "function_seed": _INT,
    "data_seed": _INT, "model_seed": _INT, "hidden": _INT_LIST, "num_points": _INT,
    "dtype": _STR, "device": _STR, "model": _STR, "num_classes": _INT, "binning": _STR,
    "lam": _NUMBER, "optimizer": _STR, "lr": _NUMBER, "weight_decay": _NUMBER,
    "epochs": _INT, "batch_size": _INT,
}
REAL_CONFIG = {
    "experiment": _STR, "model": _STR, "dataset": _STR, "target_name": _STR,
    "classes_used": _INT, "n_train": _INT, "n_val": _INT, "n_test": _INT,
}
CONFIG = {SIM_KIND: SIM_CONFIG, REAL_KIND: REAL_CONFIG}
REAL_ARRAYS = ("prediction", "target", "shot")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _has_type(value: object, wanted: str) -> bool:
    if wanted == _STR:
        return isinstance(value, str)
    if wanted == _INT:
        return _is_int(value)
    if wanted == _NUMBER:
        return _is_number(value) and math.isfinite(value)
    return isinstance(value, list) and all(_is_int(v) for v in value)


def _config_problem(kind: str, config: dict) -> str | None:
    for name, wanted in CONFIG[kind].items():
        if name not in config:
            return f"its config has no {name!r}"
        if not _has_type(config[name], wanted):
            return f"config {name!r} is {config[name]!r}, not {wanted}"
    return None


def _error_problem(name: str, value: object, nan_allowed: bool) -> str | None:
    """An error metric must be a finite number > 0 (NaN where ``nan_allowed``)."""
    if value is None and nan_allowed:
        return None
    if not _is_number(value):
        return f"metric {name!r} is {value!r}, not a number"
    if nan_allowed and math.isnan(value):
        return None
    if not math.isfinite(value) or value <= 0:
        return f"error metric {name!r} is {value!r}, not a positive number"
    return None


def _sim_metrics_problem(metrics: dict) -> str | None:
    if not isinstance(metrics.get("diverged"), bool):
        return "its metrics have no true/false 'diverged'"
    for name in SIM_ERRORS:
        if name not in metrics:
            return f"its metrics have no {name!r}"
        problem = _error_problem(name, metrics[name], nan_allowed=metrics["diverged"])
        if problem:
            return problem + ("" if metrics["diverged"] else " (and the run is not flagged "
                              "diverged)")
    top1 = metrics.get("class_top1")
    if top1 is not None and not (_is_number(top1) and 0 <= top1 <= 1):
        return f"metric 'class_top1' is {top1!r}, not a fraction in [0, 1]"
    size = metrics.get("train_size")
    if size is not None and not (_is_int(size) and size > 0):
        return f"metric 'train_size' is {size!r}, not a positive integer"
    return None


def _shot_metric_problem(name: str, metric: str, value: object, count: int) -> str | None:
    empty = count == 0
    if empty:  # no test sample in the group: its metrics are NaN by definition
        if value is None or (_is_number(value) and math.isnan(value)):
            return None
        return f"metric {name!r} is {value!r} for a group without test samples"
    if metric in ERROR_METRICS:
        return _error_problem(name, value, nan_allowed=False)
    if metric in FRACTION_METRICS and not (_is_number(value) and 0 <= value <= 1):
        return f"metric {name!r} is {value!r}, not a fraction in [0, 1]"
    return None


def _real_metrics_problem(metrics: dict) -> str | None:
    counts = {}
    for shot in SHOT_GROUPS:
        count = metrics.get(f"{shot}_count")
        if count is not None and not (_is_int(count) and count >= 0):
            return f"metric '{shot}_count' is {count!r}, not a sample count"
        counts[shot] = count
    if not counts["overall"]:
        return "its metrics have no positive 'overall_count'"
    if not any(f"overall_{m}" in metrics for m in ERROR_METRICS):
        return "its metrics have no overall error metric"
    for name, value in metrics.items():
        shot, _, metric = name.partition("_")
        if shot not in SHOT_GROUPS or metric == "count":
            continue
        if counts[shot] is None:
            return f"metric {name!r} has no '{shot}_count' beside it"
        problem = _shot_metric_problem(name, metric, value, counts[shot])
        if problem:
            return problem
    for name in ("val_score", "last_train_loss", "best_epoch", "train_seconds"):
        value = metrics.get(name)
        if value is not None and not (_is_number(value) and math.isfinite(value)):
            return f"metric {name!r} is {value!r}, not a finite number"
    return None


def _arrays_problem(arrays: dict[str, np.ndarray], n_test: int) -> str | None:
    for name in REAL_ARRAYS:
        if name not in arrays:
            return f"its arrays have no {name!r}"
        if arrays[name].shape != (n_test,):
            return (f"its {name!r} array has shape {arrays[name].shape}, not the "
                    f"({n_test},) of its n_test")
    for name in ("prediction", "target"):
        values = arrays[name]
        if values.dtype.kind not in "fiu" or not np.isfinite(values).all():
            return f"its {name!r} array is not all finite numbers"
    return None


def row_problem(kind: object, config: object, metrics: object,
                arrays: dict[str, np.ndarray] | None = None) -> str | None:
    """What makes a stored row unreadable (None: nothing). ``arrays`` only when read."""
    if kind not in KINDS:
        return f"its kind {kind!r} is none of {', '.join(KINDS)}"
    if not isinstance(config, dict):
        return f"its config is {type(config).__name__}, not a JSON object"
    if not isinstance(metrics, dict):
        return f"its metrics are {type(metrics).__name__}, not a JSON object"
    for name, value in metrics.items():
        if value is not None and not isinstance(value, (bool, int, float)):
            return f"metric {name!r} is {value!r}, not a number"
    problem = _config_problem(kind, config) or (
        _sim_metrics_problem(metrics) if kind == SIM_KIND else _real_metrics_problem(metrics))
    if problem is None and arrays is not None and kind == REAL_KIND:
        problem = _arrays_problem(arrays, config["n_test"])
    return problem
