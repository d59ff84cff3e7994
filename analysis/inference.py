"""The seed-level inference rule: one interval, one difference test, one equivalence test and
one verdict per cell, with the independent replicate as the unit (issue 22, item 1).

The unit is what is drawn independently: the seed index in the 1D study, seed × data draw
on real data — never the test sample, nor a function × seed pair (pairs that share a seed
share its draw). Each unit contributes one baseline value ``a_i`` and one candidate value
``b_i`` (e.g. its mean test MSE; :func:`per_unit_means` makes them from raw rows).

The estimand is the relative change of the means, ``R = E[b] / E[a] - 1`` (lower error is
better, so R < 0 means the candidate helps); its estimate is the ratio of the means over
units. Every test is a one-sample t-test over units of a linear contrast ``b_i - θ a_i``:

* the interval is Fieller's: the θ for which a two-sided t-test of ``mean(b - θ a) = 0``
  does not reject at ``1 - level``. It inverts exactly the paired t-test of
  ``p_difference`` (θ = 1), so "the CI excludes 0" and "p_difference < alpha" never disagree,
  and it is exact when the per-unit pairs are bivariate normal. With skewed per-unit changes
  (log-normal, σ = 0.3) :func:`simulate_coverage` measures 94% from 5 units, where the
  percentile bootstrap over units (``stats.bootstrap_rel_change_ci``) covers 83%
  (docs/statistics.md has the table).
* the equivalence test (TOST) against ±``margin`` of the baseline's mean tests
  ``E[b - (1 + m) a] < 0`` and ``E[b - (1 - m) a] > 0``, each one-sided at alpha.

Verdicts (alpha = 1 - level): "helps" when the CI lies below 0 (above 0 for a metric where
higher is better), "hurts" on the other side, else "equivalent" when the TOST p < alpha, else
"undecided" with the units needed (see :func:`units_needed`).

Tables (:func:`unit_row`, :func:`decide_families`): every cell gets these columns from its
raw paired values and unit labels, and each table names its multiple-testing families (one
question each); a cell's verdict there uses the family's Holm-adjusted p-values, so "helps"
means the CI excludes 0 *and* the difference survives Holm within the family.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.analysis.stats import bootstrap_rel_change_ci, holm, paired_t_p
from clsreg.analysis.vocabulary import (
    DEFAULT_MARGIN,
    P_EQUIV,
    P_EQUIV_HOLM,
    P_SEED,
    P_SEED_HOLM,
)
from scipy import stats

VERDICTS = ("helps", "hurts", "equivalent", "undecided")


def verdict_text(verdict: str, margin: float, needed: float, unit: str = "units") -> str:
    """A verdict as a table prints it: "equivalent within ±5%", "undecided — needs ≈ 13
    seeds" (the units an undecided cell needs, from its observed spread)."""
    if verdict == "equivalent":
        return f"equivalent within ±{margin:.0%}"
    if verdict == "undecided" and math.isfinite(needed):
        return f"undecided — needs ≈ {needed:.0f} {unit}"
    return verdict


def decide(rel_change: float, p_difference: float, p_equivalence: float,
           alpha: float = 0.05, higher_is_better: bool = False) -> str:
    """One of :data:`VERDICTS`: a significant difference by its direction, else equivalence
    when TOST rejects, else undecided (NaN p-values decide nothing)."""
    if p_difference < alpha and rel_change != 0:
        return "helps" if (rel_change > 0) == higher_is_better else "hurts"
    if p_equivalence < alpha:
        return "equivalent"
    return "undecided"


@dataclass(frozen=True)
class UnitComparison:
    """Baseline against candidate over independent units (lower values are better).

    ``rel_change`` is ``mean(candidate) / mean(baseline) - 1`` over units, ``ci_low`` and
    ``ci_high`` its Fieller interval, ``p_difference`` the paired t-test over units,
    ``p_equivalence`` the TOST p against ±``margin`` (a fraction of the baseline's mean) and
    ``units_needed`` the fewest units with which the observed spread decides the cell (what an
    undecided cell would need; at most ``n_units`` when it is decided)."""

    n_units: int
    mean_baseline: float
    mean_candidate: float
    rel_change: float
    ci_low: float
    ci_high: float
    p_difference: float
    p_equivalence: float
    margin: float
    verdict: str
    units_needed: float

    @property
    def verdict_label(self) -> str:
        """The verdict as a table prints it, e.g. "equivalent within ±5%"."""
        return verdict_text(self.verdict, self.margin, self.units_needed)

    def as_dict(self) -> dict:
        return {**asdict(self), "verdict_label": self.verdict_label}


def per_unit_means(values: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``values`` within each unit label, as (sorted labels, means): raw rows
    (per function, per test sample, ...) collapse to the one value per independent unit."""
    values = np.asarray(values, dtype=np.float64).ravel()
    units = np.asarray(units).ravel()
    if values.shape != units.shape:
        raise InputError(f"values and unit labels differ in length: {values.size} vs "
                         f"{units.size}")
    if not np.all(np.isfinite(values)):
        raise InputError("values contain NaN or infinity")
    labels, index = np.unique(units, return_inverse=True)
    sums = np.bincount(index, weights=values, minlength=labels.size)
    return labels, sums / np.bincount(index, minlength=labels.size)


def fieller_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Fieller interval of ``mean(b) / mean(a) - 1`` over the last axis (units); leading axes
    are independent problems. An interval that is unbounded (the baseline's mean is not
    distinguishable from 0) is (-inf, inf)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = a.shape[-1]
    c = stats.t.ppf(0.5 + level / 2.0, n - 1) ** 2 / n
    mean_a, mean_b = a.mean(axis=-1), b.mean(axis=-1)
    da, db = a - mean_a[..., None], b - mean_b[..., None]
    s_aa = (da * da).sum(axis=-1) / (n - 1)
    s_bb = (db * db).sum(axis=-1) / (n - 1)
    s_ab = (da * db).sum(axis=-1) / (n - 1)
    # (mean_b - θ mean_a)² <= c (s_bb - 2θ s_ab + θ² s_aa): a quadratic q2 θ² - 2 q1 θ + q0 <= 0.
    q2 = mean_a ** 2 - c * s_aa
    q1 = mean_a * mean_b - c * s_ab
    q0 = mean_b ** 2 - c * s_bb
    bounded = q2 > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(q1 ** 2 - q2 * q0, 0.0))  # >= 0 when q2 > 0 (Cauchy-Schwarz)
        low = np.where(bounded, (q1 - root) / q2 - 1.0, -np.inf)
        high = np.where(bounded, (q1 + root) / q2 - 1.0, np.inf)
    return low, high


def _one_sided_t_p(contrast: np.ndarray, alternative: str) -> float:
    """p of a one-sample t-test that the contrast's mean is below ("less") or above
    ("greater") 0; a contrast with no spread decides by its sign."""
    mean = float(contrast.mean())
    sd = float(contrast.std(ddof=1))
    if sd == 0:
        holds = mean < 0 if alternative == "less" else mean > 0
        return 0.0 if holds else 1.0
    t = mean / (sd / math.sqrt(contrast.size))
    df = contrast.size - 1
    return float(stats.t.cdf(t, df) if alternative == "less" else stats.t.sf(t, df))


def tost_p(baseline: np.ndarray, candidate: np.ndarray, margin: float = 0.05) -> float:
    """TOST p that ``|E[candidate] - E[baseline]| < margin · E[baseline]``: the larger of the
    one-sided t-test p-values of ``candidate - (1 + m) baseline < 0`` and
    ``candidate - (1 - m) baseline > 0`` over units."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    return max(_one_sided_t_p(b - (1.0 + margin) * a, "less"),
               _one_sided_t_p(b - (1.0 - margin) * a, "greater"))


def units_needed(rel_change: float, unit_sd: float, margin: float = 0.05,
                 level: float = 0.95) -> float:
    """The fewest units n >= 2 with which the observed spread decides the cell, whichever
    verdict comes first: the two-sided half-width ``t(1 - α/2, n-1) · sd / √n`` below
    ``|rel_change|`` (a difference), or the one-sided ``t(1 - α, n-1) · sd / √n`` below
    ``margin - |rel_change|`` (equivalence, when ``|rel_change| < margin``). ``unit_sd`` is
    the spread of one unit's relative change (``linearized_sd``). A plug-in: it assumes
    the observed change and spread are the true ones, so a study of that size decides
    about half the time; inf when neither target can be reached."""
    if not (math.isfinite(rel_change) and math.isfinite(unit_sd)) or unit_sd < 0:
        return math.nan
    alpha = 1.0 - level
    targets = [(abs(rel_change), 1.0 - alpha / 2.0), (margin - abs(rel_change), 1.0 - alpha)]
    targets = [(width, q) for width, q in targets if width > 0]
    if not targets:
        return math.inf
    if unit_sd == 0:
        return 2.0
    n = 2
    while n <= 1_000_000:
        if any(stats.t.ppf(q, n - 1) * unit_sd / math.sqrt(n) < width for width, q in targets):
            return float(n)
        n = n + 1 if n < 1000 else int(n * 1.1)
    return math.inf


def linearized_sd(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Spread of one unit's relative change (delta method): the sd of
    ``(b_i - (1 + R) a_i) / mean(a)`` with R the ratio-of-means change."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    ratio = b.mean() / a.mean()
    return float(np.std((b - ratio * a) / a.mean(), ddof=1))


def compare_units(baseline: np.ndarray, candidate: np.ndarray, margin: float = DEFAULT_MARGIN,
                  level: float = 0.95, higher_is_better: bool = False) -> UnitComparison:
    """The inference rule on one value per independent unit (position i of both arrays is
    unit i). Mismatched lengths, no units, NaN or infinity, a margin outside (0, 1) or a
    baseline mean that is not positive raise InputError; a single unit gives NaN statistics
    and the verdict "undecided". ``higher_is_better`` (a metric such as δ1) flips which
    direction "helps"."""
    a = np.asarray(baseline, dtype=np.float64).ravel()
    b = np.asarray(candidate, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError(f"baseline and candidate differ in units: {a.size} vs {b.size}")
    if a.size == 0:
        raise InputError("no units to compare")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("per-unit values contain NaN or infinity")
    if not 0 < margin < 1 or not 0 < level < 1:
        raise InputError(f"margin and level must lie in (0, 1), got {margin} and {level}")
    mean_a, mean_b = float(a.mean()), float(b.mean())
    if mean_a <= 0:
        raise InputError(f"the baseline's mean must be positive, got {mean_a}")
    rel_change = mean_b / mean_a - 1.0
    nan = math.nan
    if a.size < 2:
        return UnitComparison(1, mean_a, mean_b, rel_change, nan, nan, nan, nan, margin,
                              "undecided", nan)
    low, high = (float(x) for x in fieller_interval(a, b, level))
    p_difference = paired_t_p(a, b)
    p_equivalence = tost_p(a, b, margin)
    # The interval inverts the paired t-test: it excludes 0 exactly when p < alpha.
    verdict = decide(rel_change, p_difference, p_equivalence, 1.0 - level, higher_is_better)
    needed = units_needed(rel_change, linearized_sd(a, b), margin, level)
    return UnitComparison(int(a.size), mean_a, mean_b, rel_change, low, high, p_difference,
                          p_equivalence, margin, verdict, needed)


def unit_row(baseline: np.ndarray, candidate: np.ndarray, units: np.ndarray,
             margin: float = DEFAULT_MARGIN, level: float = 0.95,
             higher_is_better: bool = False) -> dict:
    """The primary columns of one table cell from raw paired values and their unit labels
    (the seed of each pair): per-unit means, then :func:`compare_units`. A cell it cannot
    judge (non-finite values, a baseline mean that is not positive) gets NaN statistics and
    the verdict "undecided" instead of an error, so one empty shot group does not stop a
    table. Finish a table's rows with :func:`decide_families`."""
    baseline = np.asarray(baseline, dtype=np.float64).ravel()
    candidate = np.asarray(candidate, dtype=np.float64).ravel()
    units = np.asarray(units).ravel()
    nan = math.nan
    try:
        labels, a = per_unit_means(baseline, units)
        _, b = per_unit_means(candidate, units)
        result = compare_units(a, b, margin, level, higher_is_better)
        change_sd = linearized_sd(a, b) if a.size > 1 else nan
    except InputError:
        n = np.unique(units).size
        result = UnitComparison(n, nan, nan, nan, nan, nan, nan, nan, margin, "undecided", nan)
        change_sd = nan
    return {"n_seeds": result.n_units, "rel_change": result.rel_change,
            "ci_low": result.ci_low, "ci_high": result.ci_high,
            P_SEED: result.p_difference, P_EQUIV: result.p_equivalence, "margin": margin,
            "change_sd": change_sd, "higher_is_better": higher_is_better}


def decide_families(rows: list[dict], family_of: Callable[[dict], str], level: float = 0.95,
                    secondary: Sequence[str] = ()) -> list[dict]:
    """Finish :func:`unit_row` rows (in place): each row's family (one question, named by
    ``family_of``), ``p_seed_holm`` and ``p_equiv_holm`` adjusted within its family, the
    Holm adjustment of each ``secondary`` p column (``<name>_holm``, the per-pair or
    per-sample tests) within the same family, the verdict from the adjusted p-values, and
    ``seeds_needed``: the seeds with which the observed spread would decide the cell at the
    family's strictest Holm level (alpha / family size, so a conservative figure)."""
    families: dict[str, list[dict]] = {}
    for row in rows:
        row["family"] = family_of(row)
        families.setdefault(row["family"], []).append(row)
    alpha = 1.0 - level
    for members in families.values():
        for name in (P_SEED, P_EQUIV, *secondary):
            for row, adjusted in zip(members, holm([r[name] for r in members]), strict=True):
                row[f"{name}_holm"] = float(adjusted)
        for row in members:
            row["seeds_needed"] = units_needed(row["rel_change"], row["change_sd"],
                                               row["margin"], 1.0 - alpha / len(members))
    for row in rows:
        row["verdict"] = _table_verdict(row, alpha)
    return rows


def _table_verdict(row: dict, alpha: float) -> str:
    """A finished row's verdict text; "—" for a cell without data (e.g. an empty shot
    group), and a significant change that TOST also bounds says so ("hurts, by less than
    ±5%": real, but inside the margin)."""
    if not math.isfinite(row["rel_change"]):
        return "—"
    verdict = decide(row["rel_change"], row[P_SEED_HOLM], row[P_EQUIV_HOLM], alpha,
                     row.get("higher_is_better", False))
    if verdict in ("helps", "hurts") and row[P_EQUIV_HOLM] < alpha:
        return f"{verdict}, by less than ±{row['margin']:.0%}"
    return verdict_text(verdict, row["margin"], row["seeds_needed"], "seeds")


def verdict_tally(rows: list[dict]) -> str:
    """How many finished rows got each verdict, e.g. "3 helps, 57 undecided" (the
    qualifiers after the verdict — seeds needed, "by less than ±5%" — are not split out)."""
    counts: dict[str, int] = {}
    for row in rows:
        name = row["verdict"].split(" — ")[0].split(",")[0]
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))


def family_sizes(rows: list[dict]) -> str:
    """The families of a finished table, for its header: "Holm families: <name> (n cells);
    ..."."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["family"]] = counts.get(row["family"], 0) + math.isfinite(row[P_SEED])
    return "Holm families (one question each): " + "; ".join(
        f"{name} ({count} cells)" for name, count in counts.items())


def simulate_coverage(n_units: int, replications: int, bootstrap_replications: int,
                      seed: int = 0, change_mu: float = -0.05, change_sigma: float = 0.3,
                      baseline_sigma: float = 0.2, level: float = 0.95,
                      bootstrap_resamples: int = 1000) -> dict:
    """Coverage of the true relative change on skewed data, by the Fieller interval (the
    rule), by the delta-method t-interval (the same t, centred on the ratio) and by the
    percentile bootstrap over units (on the first ``bootstrap_replications`` draws: it is
    the slow one). Per-unit baselines ``a ~ LogNormal(0, baseline_sigma)`` and per-unit
    changes ``b / a ~ LogNormal(change_mu, change_sigma)``, independent, so the truth is
    ``E[b] / E[a] - 1 = exp(change_mu + change_sigma² / 2) - 1``."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, baseline_sigma, size=(replications, n_units))
    b = a * rng.lognormal(change_mu, change_sigma, size=(replications, n_units))
    truth = math.exp(change_mu + change_sigma ** 2 / 2.0) - 1.0
    low, high = fieller_interval(a, b, level)
    mean_a = a.mean(axis=1)
    ratio = b.mean(axis=1) / mean_a
    unit_sd = ((b - ratio[:, None] * a) / mean_a[:, None]).std(axis=1, ddof=1)
    half = stats.t.ppf(0.5 + level / 2.0, n_units - 1) * unit_sd / math.sqrt(n_units)
    boot = np.array([bootstrap_rel_change_ci(a[r], b[r], bootstrap_resamples, seed + r, level)
                     for r in range(bootstrap_replications)])
    return {
        "n_units": n_units, "change_sigma": change_sigma, "true_rel_change": truth,
        "replications": replications, "bootstrap_replications": bootstrap_replications,
        "fieller": float(np.mean((low <= truth) & (truth <= high))),
        "delta_method": float(np.mean(np.abs(ratio - 1.0 - truth) <= half)),
        "percentile_bootstrap": float(np.mean((boot[:, 0] <= truth) & (truth <= boot[:, 1]))),
    }
