"""Paired statistics for reg vs reg+cls comparisons (PROTOCOL.md section 4).

Runs are compared in pairs that share everything but the loss (function, data seed and
model seed; or the same test sample). We report the relative change of the mean, a
bootstrap 95% CI for it (pairs resampled together), the win rate, a Wilcoxon signed-rank
p-value and a paired t-test, and Holm-correct across the cells of a table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from clsreg.analysis.errors import InputError
from scipy import stats
from statsmodels.stats.multitest import multipletests


@dataclass(frozen=True)
class PairedComparison:
    """Baseline ``a`` (reg) against treatment ``b`` (reg+cls) on paired values (lower is better)."""

    n_pairs: int
    mean_a: float
    mean_b: float
    rel_change: float
    ci_low: float
    ci_high: float
    win_rate: float
    p_wilcoxon: float
    p_ttest: float

    def as_dict(self) -> dict:
        return asdict(self)


def _paired_arrays(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError(f"paired samples differ in length: {a.size} vs {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def bootstrap_rel_change_ci(
    a: np.ndarray, b: np.ndarray, num_resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(b) / mean(a) - 1``, resampling pairs together."""
    a, b = _paired_arrays(a, b)
    if a.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    index = rng.integers(0, a.size, size=(num_resamples, a.size))
    # Sums via bincount-free gathers in chunks keep memory modest for large samples.
    ratios = np.empty(num_resamples)
    chunk = max(1, 4_000_000 // a.size)
    for start in range(0, num_resamples, chunk):
        rows = index[start:start + chunk]
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero baseline: NaN, no CI
            ratios[start:start + chunk] = b[rows].mean(axis=1) / a[rows].mean(axis=1) - 1.0
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``b - a`` (1.0 when every difference is 0)."""
    a, b = _paired_arrays(a, b)
    diff = b - a
    if a.size < 2:
        return math.nan
    if not np.any(diff != 0):
        return 1.0
    return float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)


def paired_t_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired t-test p-value (1.0 when every difference is equal to 0)."""
    a, b = _paired_arrays(a, b)
    if a.size < 2:
        return math.nan
    diff = b - a
    if np.all(diff == diff[0]):
        return 1.0 if diff[0] == 0 else 0.0
    return float(stats.ttest_rel(b, a).pvalue)


def compare_paired(
    a: np.ndarray, b: np.ndarray, num_resamples: int = 10_000, seed: int = 0
) -> PairedComparison:
    """All paired statistics of baseline ``a`` vs treatment ``b`` (non-finite pairs dropped)."""
    a, b = _paired_arrays(a, b)
    if a.size == 0:
        nan = math.nan
        return PairedComparison(0, nan, nan, nan, nan, nan, nan, nan, nan)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    ci_low, ci_high = bootstrap_rel_change_ci(a, b, num_resamples, seed)
    return PairedComparison(
        n_pairs=int(a.size),
        mean_a=mean_a,
        mean_b=mean_b,
        rel_change=mean_b / mean_a - 1.0 if mean_a != 0 else math.nan,
        ci_low=ci_low,
        ci_high=ci_high,
        win_rate=float(np.mean(b < a)),
        p_wilcoxon=wilcoxon_p(a, b),
        p_ttest=paired_t_p(a, b),
    )


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values; NaN entries stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted


RANK_CORRELATIONS = ("spearman", "kendall")


def _rank_correlation(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    result = (stats.spearmanr(x, y) if method == "spearman"
              else stats.kendalltau(x, y))
    return float(result.statistic), float(result.pvalue)


def rank_correlation_ci(
    x: np.ndarray, y: np.ndarray, method: str = "spearman", num_resamples: int = 2000,
    seed: int = 0, level: float = 0.95,
) -> tuple[float, float, float, float]:
    """Spearman ρ or Kendall τ-b, its two-sided p-value and a percentile bootstrap CI (cells
    resampled together); all NaN with fewer than 3 cells or a constant side."""
    if method not in RANK_CORRELATIONS:
        raise InputError(f"unknown rank correlation {method!r}")
    if method == "spearman":
        return spearman_ci(x, y, num_resamples, seed, level)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, math.nan, math.nan
    estimate, p_value = _rank_correlation(x, y, method)
    rng = np.random.default_rng(seed)
    draws = [stats.kendalltau(x[index], y[index]).statistic
             for index in rng.integers(0, x.size, size=(num_resamples, x.size))]
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail]) if draws.size else (math.nan, math.nan)
    return estimate, p_value, float(low), float(high)


@dataclass(frozen=True)
class Reliability:
    """How well a noisy per-cell measurement ranks itself across halves of its seeds.

    ``split_half`` is the mean Spearman ρ between the cell means of two disjoint halves of
    the seeds (over every split into halves); ``reliability`` is its Spearman-Brown
    correction to the full set of seeds, ``2r / (1 + r)`` (0 when ``r ≤ 0``: the halves
    do not agree, there is no reliable ranking); ``ceiling = √reliability`` is the
    rank correlation a noise-free predictor of the cells' true means can expect with the
    measured means (classical test theory: corr(true, observed)² = reliability).
    """

    num_cells: int
    num_seeds: int
    num_splits: int
    split_half: float
    reliability: float
    ceiling: float


def split_half_reliability(values: np.ndarray, max_splits: int = 200,
                           seed: int = 0) -> Reliability:
    """:class:`Reliability` of the row means of ``values`` (cells × seeds, NaN = missing).

    Seeds are split into halves by column (the same seeds in every cell, as in the 1D grid,
    whose seeds are reused across cells): every split of the columns into ⌊n/2⌋ and the rest,
    or ``max_splits`` random ones when there are more.
    """
    from itertools import combinations

    values = np.asarray(values, dtype=np.float64)
    cells, seeds = values.shape
    if seeds < 2 or cells < 3:
        return Reliability(cells, seeds, 0, math.nan, math.nan, math.nan)
    half = seeds // 2
    splits = list(combinations(range(seeds), half))
    if len(splits) > max_splits:
        rng = np.random.default_rng(seed)
        splits = [tuple(sorted(rng.choice(seeds, half, replace=False)))
                  for _ in range(max_splits)]
    rhos = []
    for first in splits:
        second = [j for j in range(seeds) if j not in first]
        with np.errstate(all="ignore"):
            a = np.nanmean(values[:, list(first)], axis=1)
            b = np.nanmean(values[:, second], axis=1)
        keep = np.isfinite(a) & np.isfinite(b)
        if keep.sum() >= 3 and np.ptp(a[keep]) > 0 and np.ptp(b[keep]) > 0:
            rhos.append(stats.spearmanr(a[keep], b[keep]).statistic)
    if not rhos:
        return Reliability(cells, seeds, 0, math.nan, math.nan, math.nan)
    split_half = float(np.mean(rhos))
    # Halves that do not agree (r ≤ 0) carry no reliable ranking: reliability 0.
    reliability = 2.0 * split_half / (1.0 + split_half) if split_half > 0 else 0.0
    ceiling = math.sqrt(reliability)
    return Reliability(cells, seeds, len(rhos), split_half, reliability, ceiling)


def spearman_ci(
    x: np.ndarray, y: np.ndarray, num_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Spearman ρ, its two-sided p-value and a percentile bootstrap CI (cells resampled)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, math.nan, math.nan
    result = stats.spearmanr(x, y)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, x.size, size=(num_resamples, x.size))
    rx = stats.rankdata(x[index], axis=1)
    ry = stats.rankdata(y[index], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(1) / np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    rho = rho[np.isfinite(rho)]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(rho, [tail, 1.0 - tail]) if rho.size else (math.nan, math.nan)
    return float(result.statistic), float(result.pvalue), float(low), float(high)


@dataclass(frozen=True)
class ClusteredCorrelation:
    """A rank correlation with a CI from resampling whole clusters of cells, and optionally
    the same for a baseline predictor and the paired difference (predictor − baseline).

    Cells of one cluster (e.g. the class counts and samplings of one 1D function) share
    their errors, so resampling cells treats near-replicates as independent and the CI is
    too narrow; drawing whole clusters with replacement keeps that dependence. Predictor
    and baseline are correlated on the *same* draws, so the difference's CI is paired.
    """

    estimate: float
    low: float
    high: float
    num_clusters: int
    baseline: float = math.nan
    baseline_low: float = math.nan
    baseline_high: float = math.nan
    difference: float = math.nan
    difference_low: float = math.nan
    difference_high: float = math.nan


def _rank_statistic(x: np.ndarray, y: np.ndarray, method: str) -> float:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return _rank_correlation(x, y, method)[0]


def _weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average ranks of ``values`` in each resample where cell i appears ``weights[r, i]``
    times (ties share their mean rank, as :func:`scipy.stats.rankdata` gives them)."""
    unique, inverse = np.unique(values, return_inverse=True)
    counts = np.zeros((weights.shape[0], unique.size))
    for column in range(values.size):  # per-value multiplicities, one column at a time
        counts[:, inverse[column]] += weights[:, column]
    below = np.cumsum(counts, axis=1) - counts
    return (below + (counts + 1.0) / 2.0)[:, inverse]


def _weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman ρ of each resample, given as multiplicities per cell (``weights``: resamples
    × cells): the same numbers as ranking the resample written out (NaN if constant)."""
    rx, ry = _weighted_ranks(x, weights), _weighted_ranks(y, weights)
    total = weights.sum(axis=1, keepdims=True)
    rx -= (weights * rx).sum(axis=1, keepdims=True) / total
    ry -= (weights * ry).sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((weights * rx * ry).sum(1)
                / np.sqrt((weights * rx ** 2).sum(1) * (weights * ry ** 2).sum(1)))


def _resampled(x: np.ndarray, y: np.ndarray, chosen: np.ndarray, members: list[np.ndarray],
               label: np.ndarray, method: str) -> np.ndarray:
    """The correlation in each resample of whole clusters (``chosen``: resamples × draws of
    cluster indices)."""
    if method == "spearman":
        per_cluster = np.zeros((chosen.shape[0], len(members)))
        np.add.at(per_cluster, (np.arange(chosen.shape[0])[:, None], chosen), 1.0)
        return _weighted_spearman(x, y, per_cluster[:, label])
    draws = [np.concatenate([members[k] for k in row]) for row in chosen]
    return np.array([_rank_statistic(x[i], y[i], method) for i in draws])


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not values.size:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def cluster_rank_correlation_ci(
    x: np.ndarray, y: np.ndarray, clusters: np.ndarray, method: str = "spearman",
    num_resamples: int = 2000, seed: int = 0, level: float = 0.95,
    baseline: np.ndarray | None = None,
) -> ClusteredCorrelation:
    """Spearman ρ or Kendall τ-b of ``x`` with ``y`` and a percentile bootstrap CI that
    draws whole ``clusters`` (one label per cell) with replacement; with ``baseline`` (a
    second predictor of ``y``) also its correlation and the paired difference ρ(x) − ρ(baseline)
    on the same draws. One label per cell reproduces the cell bootstrap of
    :func:`spearman_ci` draw for draw. NaN with fewer than 3 cells or a constant side."""
    if method not in RANK_CORRELATIONS:
        raise InputError(f"unknown rank correlation {method!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    clusters = np.asarray(clusters)
    if not x.shape == y.shape == clusters.shape or x.ndim != 1:
        raise InputError(f"predictor, measurement and cluster labels differ in length: "
                         f"{x.size}, {y.size}, {clusters.size}")
    z = None if baseline is None else np.asarray(baseline, dtype=np.float64)
    if z is not None and z.shape != x.shape:
        raise InputError(f"baseline predictor has {z.size} cells, not {x.size}")
    _, label = np.unique(clusters, return_inverse=True)
    members = [np.flatnonzero(label == k) for k in range(label.max() + 1 if x.size else 0)]
    estimate = _rank_statistic(x, y, method)
    nan = math.nan
    base = _rank_statistic(z, y, method) if z is not None else nan
    if not math.isfinite(estimate) and not math.isfinite(base):
        return ClusteredCorrelation(nan, nan, nan, len(members), base)
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(members), size=(num_resamples, len(members)))
    values = _resampled(x, y, chosen, members, label, method)
    low, high = _percentile(values, level) if math.isfinite(estimate) else (nan, nan)
    if z is None:
        return ClusteredCorrelation(estimate, low, high, len(members))
    base_values = _resampled(z, y, chosen, members, label, method)
    base_low, base_high = _percentile(base_values, level) if math.isfinite(base) else (nan, nan)
    diff_low, diff_high = _percentile(values - base_values, level)
    return ClusteredCorrelation(estimate, low, high, len(members), base, base_low, base_high,
                                estimate - base, diff_low, diff_high)
