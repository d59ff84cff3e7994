"""DIR-style evaluation: shots by training count per target bin, MAE / MSE / GM per shot.

Following Yang et al. (ICML 2021), a test sample belongs to the *many*-shot group when its
target bin holds more than ``many`` training samples, to *few*-shot when it holds fewer
than ``few`` (including none), and to *medium* otherwise. Metrics are pooled over the
samples of a group: MAE, MSE and the geometric mean of the absolute error
GM = exp(mean log|e|). An exact-zero error would make log|e| = -inf; absolute errors are
floored at ``GM_FLOOR`` so that GM stays finite and defined. An empty group has count 0
and NaN metrics. NYUD2-DIR adds the depth metrics (RMSE, ABS_REL, LG10, δ1–δ3), whose
shots are fixed bin lists (:mod:`realdata.nyud2`) rather than training counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from clsreg.analysis.binning import assign_labels, bin_counts
from clsreg.analysis.errors import ConfigError, InputError
from clsreg.analysis.validate import check_int

SHOTS = ("overall", "many", "medium", "few")
METRICS = ("mae", "mse", "gm")
# NYUD2-DIR's metrics (RMSE the headline); δk is the only higher-is-better metric.
DEPTH_METRICS = ("rmse", "mae", "abs_rel", "lg10", "delta1", "delta2", "delta3")
DEPTH_ONLY = ("abs_rel", "lg10", "delta1", "delta2", "delta3")
HIGHER_IS_BETTER = ("delta1", "delta2", "delta3")
GM_FLOOR = 1e-9
DEPTH_FLOOR = 1e-3


@dataclass(frozen=True)
class ShotConfig:
    """Shot thresholds on the training count of a target bin, and the number of bins."""

    bins: int = 100
    many: int = 100
    few: int = 20

    def __post_init__(self) -> None:
        check_int("shot bins", self.bins, 1)
        if not 0 <= check_int("few", self.few) <= check_int("many", self.many):
            raise ConfigError(f"need 0 <= few ({self.few}) <= many ({self.many})")


def bin_shots(train_counts: np.ndarray, many: int, few: int) -> np.ndarray:
    """Shot name of each bin from its training count: many > ``many``, few < ``few``."""
    counts = np.asarray(train_counts)
    return np.where(counts > many, "many", np.where(counts < few, "few", "medium"))


def assign_shots(
    test_target: np.ndarray, train_target: np.ndarray, edges: np.ndarray, config: ShotConfig
) -> np.ndarray:
    """Shot name of each test sample, from the training count of its bin under ``edges``."""
    train_counts = bin_counts(train_target, edges)
    return bin_shots(train_counts, config.many, config.few)[assign_labels(test_target, edges)]


def log_abs_error(errors: np.ndarray) -> np.ndarray:
    """``log max(|e|, GM_FLOOR)``: the per-sample term of GM, finite for exact hits."""
    return np.log(np.maximum(np.abs(np.asarray(errors, dtype=np.float64)), GM_FLOOR))


def per_sample_loss(errors: np.ndarray, metric: str) -> np.ndarray:
    """The per-sample term whose mean gives ``metric``: |e|, e² or log|e| (GM's log)."""
    errors = np.asarray(errors, dtype=np.float64)
    if metric == "mae":
        return np.abs(errors)
    if metric in ("mse", "rmse"):
        return np.square(errors)
    if metric == "gm":
        return log_abs_error(errors)
    raise InputError(f"unknown error metric {metric!r}; choose one of mae, mse, rmse, gm")


def per_sample_terms(prediction: np.ndarray, target: np.ndarray, metric: str) -> np.ndarray:
    """The per-sample term whose pooled mean gives ``metric`` (:func:`metric_from_losses`).

    Error metrics read ``prediction − target``; the depth metrics read both: ABS_REL
    ``|e|/y``, LG10 ``|log10 ŷ − log10 y|`` and δk ``1[max(ŷ/y, y/ŷ) ≤ 1.25^k]``, with
    ŷ floored at ``DEPTH_FLOOR`` so that a non-positive prediction stays defined.
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if metric not in DEPTH_ONLY:
        return per_sample_loss(prediction - target, metric)
    if metric == "abs_rel":
        return np.abs(prediction - target) / target
    floored = np.maximum(prediction, DEPTH_FLOOR)
    if metric == "lg10":
        return np.abs(np.log10(floored) - np.log10(target))
    ratio = np.maximum(floored / target, target / floored)
    return (ratio <= 1.25 ** int(metric[-1])).astype(np.float64)


def metric_from_losses(losses: np.ndarray, metric: str) -> float:
    """Pool per-sample terms into the metric: mean, √mean for RMSE, exp(mean) for GM."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        return math.nan
    mean = float(losses.mean())
    if metric == "gm":
        return math.exp(mean)
    return math.sqrt(mean) if metric == "rmse" else mean


def pooled_metrics(prediction: np.ndarray, target: np.ndarray,
                   metrics: tuple[str, ...]) -> dict[str, float]:
    """Count and every metric of ``metrics`` over the samples (NaN metrics when empty)."""
    out: dict[str, float] = {"count": int(np.asarray(target).size)}
    for metric in metrics:
        out[metric] = metric_from_losses(per_sample_terms(prediction, target, metric), metric)
    return out


def grouped_metrics(prediction: np.ndarray, target: np.ndarray, shots: np.ndarray,
                    metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """:func:`pooled_metrics` overall and for each shot group."""
    shots = np.asarray(shots)
    prediction, target = np.asarray(prediction), np.asarray(target)
    out = {"overall": pooled_metrics(prediction, target, metrics)}
    for shot in SHOTS[1:]:
        keep = shots == shot
        out[shot] = pooled_metrics(prediction[keep], target[keep], metrics)
    return out
