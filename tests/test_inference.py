"""The seed-level inference rule (analysis/inference.py): its interval covers with 5-20 skewed
units where the percentile bootstrap does not, each verdict on constructed cells, TOST and
the interval by hand with scipy.stats.t, units_needed by its formula, Holm within named
families, table verdicts and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from clsreg.analysis.errors import InputError
from clsreg.analysis.inference import (
    compare_units,
    decide_families,
    family_sizes,
    linearized_sd,
    per_unit_means,
    simulate_coverage,
    tost_p,
    unit_row,
    units_needed,
)
from scipy import stats

BASELINE = np.array([1.0, 1.1, 0.9, 1.05, 0.95])  # five seeds' mean MSE, mean exactly 1


def cell(changes: list[float]):
    return compare_units(BASELINE, BASELINE * np.array(changes))


# ------------------------------------------------------------------ coverage by simulation
@pytest.mark.parametrize("n_units", [5, 10, 20])
def test_interval_covers_skewed_changes_where_the_percentile_bootstrap_does_not(n_units):
    # Log-normal per-unit changes with sigma 0.3 (skewness ~1). 20,000 draws put the
    # coverage's Monte Carlo se at 0.0015, 2,000 bootstrap draws at <= 0.009.
    result = simulate_coverage(n_units, replications=20_000, bootstrap_replications=2_000,
                               seed=1)
    assert result["fieller"] >= 0.93
    assert result["percentile_bootstrap"] < result["fieller"] - 0.02
    if n_units == 5:
        assert result["percentile_bootstrap"] < 0.90  # measured 0.83: it undercovers


def test_coverage_simulation_targets_the_ratio_of_means():
    # A huge sample's ratio of means sits on the stated truth exp(mu + s^2/2) - 1.
    result = simulate_coverage(5, replications=10, bootstrap_replications=1,
                               change_mu=0.1, change_sigma=0.4)
    assert result["true_rel_change"] == pytest.approx(math.exp(0.1 + 0.08) - 1.0)


# ------------------------------------------------------------------ the four verdicts
def test_clear_help():
    result = cell([0.80, 0.82, 0.79, 0.81, 0.80])
    assert result.verdict == "helps" and result.verdict_label == "helps"
    assert result.rel_change == pytest.approx(0.8047 - 1.0)
    assert result.ci_low < result.rel_change < result.ci_high < 0
    assert result.p_difference < 1e-5 and result.units_needed <= result.n_units


def test_clear_hurt():
    result = cell([1.2, 1.25, 1.18, 1.22, 1.21])
    assert result.verdict == "hurts"
    assert 0 < result.ci_low < 0.2135 < result.ci_high
    assert result.p_difference < 0.001


def test_equivalence_within_the_margin():
    result = cell([1.01, 0.99, 1.005, 0.995, 1.0])
    assert result.verdict == "equivalent"
    assert result.verdict_label == "equivalent within ±5%"
    assert result.ci_low < 0 < result.ci_high and result.p_difference > 0.5
    assert result.p_equivalence < 0.001
    # The same cell with a 0.5% margin is not equivalent: the margin is a real parameter.
    narrow = compare_units(BASELINE, BASELINE * np.array([1.01, 0.99, 1.005, 0.995, 1.0]),
                           margin=0.005)
    assert narrow.verdict == "undecided" and narrow.p_equivalence > 0.05


def test_a_small_certain_change_is_a_difference_first():
    # -1.9% with a CI below 0 is also inside ±5%: the direction is the verdict.
    result = cell([0.97, 0.99, 0.96, 1.0, 0.98])
    assert result.ci_high < 0 and result.p_equivalence < 0.05
    assert result.verdict == "helps"


def hand_units_needed(rel_change, sd, margin=0.05, alpha=0.05):
    """The formula written out: the first n whose half-width fits either target."""
    for n in range(2, 100_000):
        difference = stats.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n) < abs(rel_change)
        equivalence = stats.t.ppf(1 - alpha, n - 1) * sd / math.sqrt(n) < margin - abs(
            rel_change)
        if difference or equivalence:
            return n
    return math.inf


def test_undecided_near_equivalence_needs_the_units_its_formula_gives():
    changes = np.array([0.9, 1.1, 0.95, 1.08, 0.97])
    result = cell(changes)
    assert result.verdict == "undecided"
    assert result.rel_change == pytest.approx(0.0041)
    # Linearized per-unit relative changes (b_i - 1.0041 a_i) / 1, their sd by hand.
    z = BASELINE * changes - 1.0041 * BASELINE
    sd = float(np.std(z, ddof=1))
    assert linearized_sd(BASELINE, BASELINE * changes) == pytest.approx(sd)
    # Equivalence is the nearer target: 1.7823 * 0.0891 / sqrt(13) = 0.0440 < 0.0459,
    # while 12 units give 1.7959 * 0.0891 / sqrt(12) = 0.0462.
    assert result.units_needed == 13 == hand_units_needed(0.0041, sd)
    assert result.verdict_label == "undecided — needs ≈ 13 units"


def test_undecided_near_a_difference_needs_the_units_its_formula_gives():
    changes = np.array([0.7, 1.0, 0.85, 1.05, 0.8])
    result = cell(changes)
    assert result.verdict == "undecided"
    assert result.rel_change == pytest.approx(-0.1145)  # outside the margin
    sd = linearized_sd(BASELINE, BASELINE * changes)
    needed = hand_units_needed(result.rel_change, sd)
    assert result.units_needed == needed
    # That n excludes 0 with the two-sided t and n - 1 does not.
    half = [stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) for n in (needed - 1, needed)]
    assert half[0] >= abs(result.rel_change) > half[1]


def test_units_needed_edge_cases():
    assert units_needed(0.05, 0.1) == hand_units_needed(0.05, 0.1) == 18  # difference only
    assert units_needed(0.0, 0.1) == hand_units_needed(0.0, 0.1)  # only equivalence
    assert units_needed(0.0, 0.0) == 2.0
    assert math.isnan(units_needed(math.nan, 0.1))


# ------------------------------------------------------------------ by hand with scipy
def test_tost_by_hand():
    changes = np.array([0.96, 1.03, 0.99, 1.02, 0.98])
    a, b = BASELINE, BASELINE * changes
    n = a.size
    upper, lower = b - 1.05 * a, b - 0.95 * a
    t_upper = upper.mean() / (upper.std(ddof=1) / math.sqrt(n))
    t_lower = lower.mean() / (lower.std(ddof=1) / math.sqrt(n))
    expected = max(stats.t.cdf(t_upper, n - 1), stats.t.sf(t_lower, n - 1))
    assert tost_p(a, b, 0.05) == pytest.approx(expected, rel=1e-12)
    assert compare_units(a, b).p_equivalence == pytest.approx(expected, rel=1e-12)
    # scipy's own one-sided tests agree.
    p_upper = stats.ttest_1samp(upper, 0.0, alternative="less").pvalue
    p_lower = stats.ttest_1samp(lower, 0.0, alternative="greater").pvalue
    assert expected == pytest.approx(max(p_upper, p_lower), rel=1e-12)


def test_interval_ends_are_where_the_t_test_of_the_contrast_is_critical():
    rng = np.random.default_rng(3)
    a = rng.lognormal(0.0, 0.2, 7)
    b = a * rng.lognormal(-0.1, 0.15, 7)
    result = compare_units(a, b)
    critical = stats.t.ppf(0.975, 6)
    for end in (result.ci_low, result.ci_high):
        t = stats.ttest_1samp(b - (1.0 + end) * a, 0.0).statistic
        assert abs(t) == pytest.approx(critical, rel=1e-9)
    assert result.p_difference == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-12)


def test_the_interval_and_the_difference_test_never_disagree():
    rng = np.random.default_rng(4)
    for _ in range(300):
        n = int(rng.integers(3, 12))
        a = rng.lognormal(0.0, 0.3, n)
        b = a * rng.lognormal(rng.normal(0, 0.1), 0.2, n)
        result = compare_units(a, b)
        assert (result.ci_high < 0 or result.ci_low > 0) == (result.p_difference < 0.05)


# ------------------------------------------------------------------ units, family, bad input
def test_per_unit_means():
    values = np.array([1.0, 3.0, 10.0, 2.0, 20.0])
    labels, means = per_unit_means(values, np.array([4, 4, 9, 4, 9]))
    assert labels.tolist() == [4, 9]
    assert means.tolist() == [2.0, 15.0]
    with pytest.raises(InputError, match="differ in length"):
        per_unit_means(values, np.array([1, 2]))
    with pytest.raises(InputError, match="NaN"):
        per_unit_means(np.array([1.0, math.nan]), np.array([1, 2]))


def family_row(changes: list[float], family: str, higher_is_better: bool = False) -> dict:
    seeds = np.arange(BASELINE.size)
    row = unit_row(BASELINE, BASELINE * np.array(changes), seeds,
                   higher_is_better=higher_is_better)
    return {**row, "name": family}


def test_holm_within_each_named_family_and_verdicts_from_the_adjusted_p():
    rows = [family_row([0.80, 0.82, 0.79, 0.81, 0.80], "A"),
            family_row([0.9, 1.1, 0.95, 1.08, 0.97], "A"),
            family_row([1.01, 0.99, 1.005, 0.995, 1.0], "A"),
            family_row([0.95, 0.94, 0.96, 0.95, 0.93], "B")]
    decide_families(rows, lambda row: row["name"])
    p = [row["p_seed"] for row in rows[:3]]
    # Holm by hand within family A: sorted p_(1) < p_(2) < p_(3) get 3 p_(1), max(.., 2 p_(2))
    order = np.argsort(p)
    expected = np.empty(3)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p[i]))
        expected[i] = running
    assert [row["p_seed_holm"] for row in rows[:3]] == pytest.approx(expected.tolist())
    assert rows[2]["p_equiv_holm"] == pytest.approx(min(1.0, 3 * rows[2]["p_equiv"]))
    # Family B has one cell: nothing to adjust.
    assert rows[3]["p_seed_holm"] == rows[3]["p_seed"]
    assert [row["family"] for row in rows] == ["A", "A", "A", "B"]
    assert rows[0]["verdict"] == "helps"
    assert rows[2]["verdict"] == "equivalent within ±5%"
    # -5% with a tiny spread: significant, yet TOST cannot bound it inside ±5%.
    assert rows[3]["verdict"] == "helps"
    # Undecided: the seeds it needs come from its spread at family A's strictest level.
    assert rows[1]["verdict"] == f"undecided — needs ≈ {rows[1]['seeds_needed']:.0f} seeds"
    assert rows[1]["seeds_needed"] == units_needed(rows[1]["rel_change"], rows[1]["change_sd"],
                                                   0.05, 1 - 0.05 / 3)
    assert family_sizes(rows) == ("Holm families (one question each): A (3 cells); "
                                  "B (1 cells)")


def test_a_significant_change_inside_the_margin_says_both():
    rows = decide_families([family_row([0.98, 0.981, 0.979, 0.98, 0.9805], "A")],
                           lambda row: "A")
    assert rows[0]["verdict"] == "helps, by less than ±5%"


def test_higher_is_better_flips_the_direction():
    rows = decide_families([family_row([1.20, 1.22, 1.19, 1.21, 1.20], "A", True)],
                           lambda row: "A")
    assert rows[0]["verdict"] == "helps"
    assert compare_units(BASELINE, BASELINE * 1.2, higher_is_better=True).verdict == "helps"
    assert compare_units(BASELINE, BASELINE * 1.2 + [0, .01, 0, 0, 0]).verdict == "hurts"


def test_a_cell_without_data_is_a_dash_and_not_counted():
    empty = {**unit_row(np.full(3, np.nan), np.full(3, np.nan), np.arange(3)), "name": "A"}
    rows = decide_families([empty, family_row([0.8, 0.82, 0.79, 0.81, 0.8], "A")],
                           lambda row: "A")
    assert rows[0]["verdict"] == "—" and rows[1]["verdict"] == "helps"
    assert family_sizes(rows) == "Holm families (one question each): A (1 cells)"


def test_bad_input():
    with pytest.raises(InputError, match="differ in units"):
        compare_units([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="NaN"):
        compare_units([1.0, math.nan], [1.0, 1.0])
    with pytest.raises(InputError, match="no units"):
        compare_units([], [])
    with pytest.raises(InputError, match="positive"):
        compare_units([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(InputError, match="margin"):
        compare_units([1.0, 2.0], [1.0, 2.0], margin=0.0)
    one = compare_units([2.0], [1.0])  # one unit: a cell, but nothing can be decided
    assert one.verdict == "undecided" and one.verdict_label == "undecided"
    assert one.rel_change == -0.5 and math.isnan(one.ci_low) and math.isnan(one.p_difference)
