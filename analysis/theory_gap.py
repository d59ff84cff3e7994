"""The practitioner's question: will a classification loss help regression on my targets?

From a column of training targets we estimate ``p_train`` (a histogram, ten bins per σ)
and report, under the assumptions of ``docs/theory.md`` (label shift, uniform ``p_bal``
on the range, Gaussian predictive scale σ):

* the imbalance ratio (max/min count over 64 equal-width bins);
* ``expected_gap = E_bal|Δ|`` (nats), how far the imbalanced likelihood is from the
  balanced one;
* ``excess_mse``, the balanced MSE that imbalance adds to the best plain regressor;
* for candidate class counts and both binnings, the captured fraction of the gap, and a
  recommendation: the fewest classes that capture at least 90% of it while every class
  keeps at least 20 training samples (fewer classes are easier to learn); failing that,
  the feasible choice that captures most.

σ should be the validation RMSE of a plain regressor on the task (the model's predictive
scale); without it we use 7.5% of the target range, the median relative RMSE of the 1D
study's plain MLP on uniform data (docs/theory.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.binning import bin_counts, finite_1d, imbalance_ratio
from analysis.errors import InputError
from analysis.files import read_csv_file
from analysis.theory import (
    class_edges,
    decompose,
    default_num_bins,
    density_from_samples,
    excess_mse,
)
from analysis.vocabulary import BINNINGS, DEFAULT_SIGMA_FRACTION

CANDIDATE_CLASSES = (2, 4, 8, 16, 32, 64, 128, 256)
MIN_SAMPLES_PER_CLASS = 20
# The fewest targets that give a verdict: the coarsest candidate (2 classes) then holds
# 50 per class on average, enough for a histogram of the imbalance to mean something.
MIN_SAMPLES = 100
# σ relative to the target range: below 1e-3 the quadrature needs more than ~10⁴ panels
# (minutes, gigabytes); above 1e3 the prediction carries no information about the targets.
SIGMA_FRACTION_LIMITS = (1e-3, 1e3)
TARGET_CAPTURE = 0.9
# Verdict thresholds on excess_mse / σ², the share of the best plain MSE lost to imbalance.
HELPS, MAY_HELP = 0.05, 0.01


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
    range: tuple[float, float]
    sigma: float
    imbalance_ratio: float
    expected_gap: float
    excess_mse: float
    captured_fraction: float
    recommended_num_classes: int
    recommended_binning: str
    predicted_benefit_mse: float
    verdict: str
    candidates: list[Candidate] = field(default_factory=list)

    def as_json_dict(self) -> dict:
        """The JSON object of ``--json`` (non-finite numbers become null)."""
        def clean(value):
            return value if not isinstance(value, float) or math.isfinite(value) else None

        return {"n": self.n, "range": [clean(v) for v in self.range],
                "sigma": clean(self.sigma), "imbalance_ratio": clean(self.imbalance_ratio),
                "expected_gap": clean(self.expected_gap), "excess_mse": clean(self.excess_mse),
                "captured_fraction": clean(self.captured_fraction),
                "recommended_num_classes": self.recommended_num_classes,
                "recommended_binning": self.recommended_binning,
                "predicted_benefit_mse": clean(self.predicted_benefit_mse),
                "verdict": self.verdict}


def _verdict(excess: float, sigma: float) -> str:
    share = excess / sigma ** 2
    if share >= HELPS:
        return (f"likely to help: imbalance adds {100 * share:.1f}% of sigma^2 to the best "
                "plain regressor's balanced MSE")
    if share >= MAY_HELP:
        return f"may help a little: imbalance adds {100 * share:.1f}% of sigma^2"
    return f"unlikely to help: imbalance adds only {100 * share:.2f}% of sigma^2"


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
) -> GapReport:
    """Analyse training targets ``values`` (see the module docstring)."""
    values = finite_1d(values, "target values")
    if value_range is None:
        if values.min() == values.max():
            raise InputError(f"all {values.size} targets equal {values[0]:g}: a constant "
                             "target has no imbalance to correct")
        value_range = (float(values.min()), float(values.max()))
    low, high = (float(v) for v in value_range)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise InputError(f"range must satisfy A < B with finite A and B, got {low:g} {high:g}")
    width = high - low
    if not math.isfinite(width):
        raise InputError(f"the target range [{low:g}, {high:g}] is too wide: its width "
                         "overflows floating point; rescale the targets")
    if sigma is None:
        sigma = DEFAULT_SIGMA_FRACTION * width
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
    captured = best.captured_fraction if math.isfinite(best.captured_fraction) else 0.0
    return GapReport(n=int(values.size), range=(low, high), sigma=float(sigma),
                     imbalance_ratio=imbalance_ratio(values), expected_gap=whole.expected_gap,
                     excess_mse=excess, captured_fraction=best.captured_fraction,
                     recommended_num_classes=best.num_classes,
                     recommended_binning=best.binning,
                     predicted_benefit_mse=captured * excess, verdict=_verdict(excess, sigma),
                     candidates=candidates)


def format_report(report: GapReport) -> str:
    """A short human-readable summary with the candidate table."""
    from tabulate import tabulate

    lines = [
        f"targets: n = {report.n}, range [{report.range[0]:g}, {report.range[1]:g}], "
        f"sigma = {report.sigma:.4g}",
        f"imbalance ratio (64 bins): {report.imbalance_ratio:.1f}",
        f"expected gap E|Delta| under balanced data: {report.expected_gap:.4f} nats",
        f"excess balanced MSE of the best plain regressor: {report.excess_mse:.4g} "
        f"({100 * report.excess_mse / report.sigma ** 2:.2f}% of sigma^2)",
        f"classification loss: {report.verdict}",
        f"recommended: {report.recommended_num_classes} {report.recommended_binning} classes "
        f"(captures {100 * report.captured_fraction:.1f}% of the gap; predicted benefit at "
        f"most {report.predicted_benefit_mse:.4g} MSE)",
        "",
        tabulate([(c.num_classes, c.binning, f"{c.captured_fraction:.3f}", c.min_class_count)
                  for c in report.candidates],
                 headers=["classes", "binning", "captured", "min class count"]),
    ]
    return "\n".join(lines)
