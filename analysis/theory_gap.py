"""The practitioner's question: will a classification loss help regression on my targets?

From a column of training targets we estimate ``p_train`` (a histogram, ten bins per σ)
and report, under the assumptions of ``docs/theory.md`` (label shift, uniform ``p_bal``
on the range, Gaussian predictive scale σ):

* the imbalance ratio (max/min count over the non-empty of 64 equal-width bins) and the
  share of empty bins;
* ``expected_gap = E_bal|Δ|`` (nats), how far the imbalanced likelihood is from the
  balanced one;
* ``excess_mse``, the balanced MSE that imbalance adds to the best plain regressor;
* for candidate class counts and both binnings, the captured fraction of the gap, and a
  recommendation: the fewest classes that capture at least 90% of it while every class
  keeps at least 20 training samples; failing that, the feasible choice that captures most;
* the predicted relative change of balanced MSE, ``−captured·excess / (σ² + excess)`` (the
  class head removes at most the captured part of the excess from the plain regressor's
  ``σ² + excess``), mapped through a *calibration* — the measured outcomes of real tables
  (:mod:`analysis.theory_calibration`) — to an interval and a three-way verdict, given only
  while the calibration predicts held-out tables (leave-one-table-out); the shipped one does
  not, so the tool says so in one line (verdict None) and points to measuring instead.

Range and σ are chosen robustly: by default the range is the central 99% of the targets
(0.5% and 99.5% quantiles; one outlier cannot stretch it, and the targets outside it are
left out and counted), and σ is 7.5% of that range (the 1D study's plain MLP, docs/theory.md)
unless given, or estimated by the caller from a cross-validated model's residuals (the σ the
theory means: ``clsreg theory gap --features``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from clsreg.analysis.binning import bin_counts, empty_bin_share, finite_1d, imbalance_ratio
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import read_csv_file
from clsreg.analysis.theory import (
    class_edges,
    decompose,
    default_num_bins,
    density_from_samples,
    excess_mse,
)
from clsreg.analysis.theory_calibration import (
    INTERVAL_LEVEL,
    VERDICTS,
    Calibration,
    PredictivePower,
    load_calibration,
)
from clsreg.analysis.vocabulary import BINNINGS, DEFAULT_SIGMA_FRACTION

CANDIDATE_CLASSES = (2, 4, 8, 16, 32, 64, 128, 256)
MIN_SAMPLES_PER_CLASS = 20
# The fewest targets that give a verdict: the coarsest candidate (2 classes) then holds
# 50 per class on average, enough for a histogram of the imbalance to mean something.
MIN_SAMPLES = 100
# σ relative to the target range: below 1e-3 the quadrature needs more than ~10⁴ panels
# (minutes, gigabytes); above 1e3 the prediction carries no information about the targets.
SIGMA_FRACTION_LIMITS = (1e-3, 1e3)
TARGET_CAPTURE = 0.9
# The default range: the central 99% of the targets.
ROBUST_QUANTILES = (0.005, 0.995)


def predicted_change(excess: float, sigma: float, captured: float) -> float:
    """The theory's relative change of balanced MSE from adding the class head."""
    captured = captured if math.isfinite(captured) else 0.0
    return -captured * excess / (sigma ** 2 + excess)


def robust_range(values: np.ndarray) -> tuple[float, float]:
    """The central 99% of ``values`` (the default range)."""
    low, high = np.quantile(values, ROBUST_QUANTILES)
    return float(low), float(high)


def read_target_column(path: str | Path, column: str) -> np.ndarray:
    """The numeric column ``column`` of the CSV file ``path``, or one clear InputError."""
    import pandas as pd

    path = Path(path)
    table = read_csv_file(path, "file")
    if column not in table.columns:
        raise InputError(f"column {column!r} not in {path} (columns: "
                         f"{', '.join(map(str, table.columns))})")
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() & table[column].notna()
    if bad.any():
        raise InputError(f"column {column!r} has {int(bad.sum())} non-numeric values, e.g. "
                         f"{table[column][bad].iloc[0]!r}")
    values = values.to_numpy(dtype=np.float64)
    if values.size == 0:
        raise InputError(f"column {column!r} of {path} is empty")
    missing = ~np.isfinite(values)
    if missing.any():
        raise InputError(f"column {column!r} has {int(missing.sum())} missing, NaN or infinite "
                         "values; drop or impute them first")
    return values


@dataclass(frozen=True)
class Candidate:
    """One class setup: its captured fraction and smallest training class."""

    num_classes: int
    binning: str
    captured_fraction: float
    min_class_count: int


@dataclass(frozen=True)
class GapReport:
    """Everything ``clsreg theory gap`` prints."""

    n: int
    n_outside: int
    range: tuple[float, float]
    range_rule: str
    sigma: float
    sigma_source: str
    imbalance_ratio: float
    empty_bin_share: float
    expected_gap: float
    excess_mse: float
    relative_excess: float
    captured_fraction: float
    recommended_num_classes: int
    recommended_binning: str
    predicted_benefit_mse: float
    predicted_rel_change: float
    calibrated_rel_change: float
    interval: tuple[float, float]
    verdict: str | None  # None: the calibration has no predictive power (``reason`` says so)
    reason: str
    candidates: list[Candidate] = field(default_factory=list)
    calibration_power: PredictivePower | None = None

    def as_json_dict(self) -> dict:
        """The JSON object of ``--json`` (non-finite numbers become null)."""
        def clean(value):
            return value if not isinstance(value, float) or math.isfinite(value) else None

        values = {k: clean(v) for k, v in asdict(self).items()
                  if k not in ("candidates", "range", "interval", "calibration_power")}
        values["range"] = [clean(v) for v in self.range]
        values["interval"] = [clean(v) for v in self.interval]
        values["candidates"] = [{k: clean(v) for k, v in asdict(c).items()}
                                for c in self.candidates]
        power = self.calibration_power
        values["calibration_power"] = (None if power is None else {
            **{k: clean(v) for k, v in asdict(power).items()}, "has_power": power.has_power})
        return values


def _recommend(candidates: list[Candidate]) -> Candidate:
    feasible = [c for c in candidates if c.min_class_count >= MIN_SAMPLES_PER_CLASS
                and math.isfinite(c.captured_fraction)]
    if not feasible:  # too few samples for any split: the coarsest equal-frequency classes
        return min(candidates, key=lambda c: (c.num_classes, c.binning != "equal"))
    enough = [c for c in feasible if c.captured_fraction >= TARGET_CAPTURE]
    if enough:
        return min(enough, key=lambda c: (c.num_classes, -c.captured_fraction))
    return max(feasible, key=lambda c: (c.captured_fraction, -c.num_classes))


def gap_report(
    values: np.ndarray,
    value_range: tuple[float, float] | None = None,
    sigma: float | None = None,
    class_counts: tuple[int, ...] = CANDIDATE_CLASSES,
    sigma_source: str | None = None,
    calibration: Calibration | None = None,
    calibrate: bool = True,
) -> GapReport:
    """Analyse training targets ``values`` (see the module docstring).

    ``value_range`` None: the central 99% of the targets (those outside are left out and
    counted); given: every target must lie inside it. ``sigma_source`` says where a given σ
    came from; ``calibration`` None loads the stored one; ``calibrate`` False leaves the
    calibrated fields NaN (what the calibration itself is built from).
    """
    values = finite_1d(values, "target values")
    if values.min() == values.max():
        raise InputError(f"all {values.size} targets equal {values[0]:g}: a constant "
                         "target has no imbalance to correct")
    if value_range is None:
        with np.errstate(over="ignore", invalid="ignore"):
            low, high = robust_range(values)
        range_rule = "central 99% of the targets (0.5% and 99.5% quantiles)"
        if not high > low:  # most targets are one value: fall back to the full range
            low, high = float(values.min()), float(values.max())
            range_rule = "min to max (the central 99% is a single value)"
    else:
        low, high = (float(v) for v in value_range)
        range_rule = "given"
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise InputError(f"range must satisfy A < B with finite A and B, got {low:g} {high:g}")
    width = high - low
    if not math.isfinite(width):
        raise InputError(f"the target range [{low:g}, {high:g}] is too wide: its width "
                         "overflows floating point; rescale the targets")
    inside = (values >= low) & (values <= high)
    if value_range is None:
        n_outside = int((~inside).sum())
        values = values[inside]
    else:
        n_outside = 0
    if sigma is None:
        sigma = DEFAULT_SIGMA_FRACTION * width
        sigma_source = f"{DEFAULT_SIGMA_FRACTION} x range (no --sigma or --features given)"
    elif sigma_source is None:
        sigma_source = "given"
    if not math.isfinite(sigma) or sigma <= 0:
        raise InputError(f"sigma must be positive and finite, got {sigma:g}")
    smallest, largest = (limit * width for limit in SIGMA_FRACTION_LIMITS)
    if not smallest <= sigma <= largest:
        raise InputError(f"sigma {sigma:g} is outside [{smallest:g}, {largest:g}], i.e. "
                         f"{SIGMA_FRACTION_LIMITS[0]:g} to {SIGMA_FRACTION_LIMITS[1]:g} times "
                         f"the target range {width:g}")
    density = density_from_samples(values, (low, high),
                                   default_num_bins(values.size, width, sigma))
    if values.size < MIN_SAMPLES:
        raise InputError(f"only {values.size} targets; a verdict needs at least {MIN_SAMPLES}")
    whole = decompose(density, sigma, np.array([low, high]))
    candidates = []
    for binning in BINNINGS:
        for num_classes in class_counts:
            edges = class_edges(density, num_classes, binning)
            counts = bin_counts(values, edges)
            result = decompose(density, sigma, edges)
            candidates.append(Candidate(num_classes=edges.size - 1, binning=binning,
                                        captured_fraction=result.captured_fraction,
                                        min_class_count=int(counts.min())))
    best = _recommend(candidates)
    excess = excess_mse(density, sigma)
    change = predicted_change(excess, sigma, best.captured_fraction)
    center = interval_low = interval_high = math.nan
    verdict, reason, power = VERDICTS[2], "not calibrated", None
    if calibrate:
        calibration = load_calibration() if calibration is None else calibration
        center, interval_low, interval_high = calibration.interval(change)
        verdict, reason = calibration.verdict(change)
        power = calibration.power
    captured = best.captured_fraction if math.isfinite(best.captured_fraction) else 0.0
    return GapReport(n=int(values.size), n_outside=n_outside, range=(low, high),
                     range_rule=range_rule, sigma=float(sigma), sigma_source=sigma_source,
                     imbalance_ratio=imbalance_ratio(values),
                     empty_bin_share=empty_bin_share(values),
                     expected_gap=whole.expected_gap, excess_mse=excess,
                     relative_excess=excess / sigma ** 2,
                     captured_fraction=best.captured_fraction,
                     recommended_num_classes=best.num_classes,
                     recommended_binning=best.binning, predicted_benefit_mse=captured * excess,
                     predicted_rel_change=change, calibrated_rel_change=center,
                     interval=(interval_low, interval_high), verdict=verdict, reason=reason,
                     candidates=candidates, calibration_power=power)


def format_report(report: GapReport, measure_hint: str | None = None,
                  as_json: bool = False) -> str:
    """A short human-readable summary with the candidate table (and how to measure), or
    with ``as_json`` one JSON object (the hint under ``measure``)."""
    import json

    from tabulate import tabulate

    if as_json:
        return json.dumps({**report.as_json_dict(), "measure": measure_hint})

    outside = (f"; {report.n_outside} targets outside the range left out"
               if report.n_outside else "")
    lines = [
        f"targets: n = {report.n}, range [{report.range[0]:g}, {report.range[1]:g}] "
        f"({report.range_rule}{outside})",
        f"sigma = {report.sigma:.4g} ({report.sigma_source})",
        f"imbalance ratio (max/min over the non-empty of 64 bins): "
        f"{report.imbalance_ratio:.1f}; empty bins: {100 * report.empty_bin_share:.0f}%",
        f"expected gap E|Delta| under balanced data: {report.expected_gap:.4f} nats",
        f"excess balanced MSE of the best plain regressor: {report.excess_mse:.4g} "
        f"({100 * report.relative_excess:.2f}% of sigma^2)",
        f"recommended: {report.recommended_num_classes} {report.recommended_binning} classes "
        f"(captures {100 * report.captured_fraction:.1f}% of the gap; at most "
        f"{report.predicted_benefit_mse:.4g} of the plain model's "
        f"{report.sigma ** 2 + report.excess_mse:.4g} balanced MSE)",
        f"theory's change of balanced MSE with the class loss: "
        f"{100 * report.predicted_rel_change:+.2f}% (at best)",
    ]
    if report.verdict is None:  # no predictive power: the interval as information, no verdict
        low, high = report.interval
        lines.append(f"calibrated change (information, not a verdict): "
                     f"{100 * report.calibrated_rel_change:+.1f}% [{100 * low:+.1f}, "
                     f"{100 * high:+.1f}] ({100 * INTERVAL_LEVEL:.0f}% prediction interval)")
        lines.append(report.reason + (f"; measure instead: {measure_hint}" if measure_hint
                                      else ""))
    else:
        lines.append(f"verdict: {report.verdict.upper()}: {report.reason}")
        if measure_hint:
            lines.append(f"measure it for real: {measure_hint}")
    lines += ["", tabulate([(c.num_classes, c.binning, f"{c.captured_fraction:.3f}",
                             c.min_class_count) for c in report.candidates],
                           headers=["classes", "binning", "captured", "min class count"])]
    return "\n".join(lines)
