"""Seed-level statistics: the seed, not the pair, is the unit when pairs share a seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from clsreg.analysis.stats import compare_by_seed, compare_paired, seeds_needed
from scipy import stats


def test_seed_comparison_uses_per_seed_changes():
    # Two seeds x three pairs: per-seed ratios 0.9 and 0.8 exactly.
    a = np.array([1.0, 2.0, 3.0, 1.0, 1.0, 2.0])
    b = np.array([0.9, 1.8, 2.7, 0.8, 0.8, 1.6])
    seeds = np.array([7, 7, 7, 9, 9, 9])
    result = compare_by_seed(a, b, seeds, num_resamples=2000)
    assert result.n_seeds == 2
    # Every resample is a mix of the two seeds: its ratio lies between theirs.
    assert -0.2 - 1e-12 <= result.ci_low <= result.ci_high <= -0.1 + 1e-12
    per_seed = np.array([-0.1, -0.2])
    assert result.p_ttest == pytest.approx(stats.ttest_1samp(per_seed, 0.0).pvalue, rel=1e-9)
    assert result.rel_change_sd == pytest.approx(per_seed.std(ddof=1), rel=1e-9)


def test_seed_comparison_is_wider_when_pairs_within_a_seed_move_together():
    """Five seeds whose shared draw moves all ten functions' pairs the same way: per pair
    the noise looks 10 times smaller than it is; the seed-level CI sees the 5 real draws."""
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0.0, 0.1, 5)          # one shared shift per seed
    seeds = np.repeat(np.arange(5), 10)
    a = np.ones(50)
    b = 1.0 + seed_effect[seeds] + rng.normal(0.0, 0.002, 50)
    pair = compare_paired(a, b, num_resamples=4000)
    by_seed = compare_by_seed(a, b, seeds, num_resamples=4000)
    assert by_seed.ci_high - by_seed.ci_low > 2 * (pair.ci_high - pair.ci_low)
    assert by_seed.p_ttest > pair.p_ttest


def test_seed_comparison_needs_two_seeds_and_matching_lengths():
    result = compare_by_seed(np.ones(3), np.ones(3) * 0.9, np.zeros(3))
    assert result.n_seeds == 1 and math.isnan(result.ci_low) and math.isnan(result.p_ttest)
    with pytest.raises(Exception, match="differ in length"):
        compare_by_seed(np.ones(3), np.ones(3), np.zeros(2))


def test_seeds_needed_is_the_one_sample_t_power():
    # Effect size 0.5, α = 0.05 two-sided, power 0.8: 33.4 seeds by the t distribution (34;
    # the normal approximation's (1.96 + 0.8416)² / 0.25 = 31.4 is too optimistic).
    assert seeds_needed(-0.05, 0.1) == 34
    assert seeds_needed(0.05, 0.1) == 34
    assert seeds_needed(0.0, 0.1) == math.inf
    assert seeds_needed(-1.0, 0.01) == 3
    # Effect size 1: 9.9 -> 10 seeds.
    assert seeds_needed(-0.1, 0.1) == 10
