"""Seed-level statistics: the seed, not the pair, is the unit when pairs share a seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from clsreg.analysis.inference import unit_row
from clsreg.analysis.stats import compare_paired
from scipy import stats


def test_unit_row_uses_per_seed_means():
    # Two seeds x three pairs; per-seed mean MSEs (2, 1.333) and (1.8, 1.067).
    a = np.array([1.0, 2.0, 3.0, 1.0, 1.0, 2.0])
    b = np.array([0.9, 1.8, 2.7, 0.8, 0.8, 1.6])
    seeds = np.array([7, 7, 7, 9, 9, 9])
    row = unit_row(a, b, seeds)
    seed_a, seed_b = np.array([2.0, 4 / 3]), np.array([1.8, 3.2 / 3])
    assert row["n_seeds"] == 2
    assert row["rel_change"] == pytest.approx(seed_b.mean() / seed_a.mean() - 1, rel=1e-12)
    assert row["p_seed"] == pytest.approx(stats.ttest_rel(seed_b, seed_a).pvalue, rel=1e-9)
    # With one degree of freedom (t = 12.7) the interval is wide but contains the estimate.
    assert row["ci_low"] < row["rel_change"] < row["ci_high"]


def test_seed_level_interval_is_wider_when_pairs_within_a_seed_move_together():
    """Five seeds whose shared draw moves all ten functions' pairs the same way: per pair
    the noise looks 10 times smaller than it is; the seed-level CI sees the 5 real draws."""
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0.0, 0.1, 5)          # one shared shift per seed
    seeds = np.repeat(np.arange(5), 10)
    a = np.ones(50)
    b = 1.0 + seed_effect[seeds] + rng.normal(0.0, 0.002, 50)
    pair = compare_paired(a, b, num_resamples=4000)
    by_seed = unit_row(a, b, seeds)
    assert by_seed["ci_high"] - by_seed["ci_low"] > 2 * (pair.ci_high - pair.ci_low)
    assert by_seed["p_seed"] > pair.p_ttest


def test_unit_row_with_one_seed_or_no_data_is_undecided_not_an_error():
    one = unit_row(np.ones(3), np.ones(3) * 0.9, np.zeros(3))
    assert one["n_seeds"] == 1 and math.isnan(one["ci_low"]) and math.isnan(one["p_seed"])
    empty = unit_row(np.full(2, np.nan), np.full(2, np.nan), np.arange(2))
    assert math.isnan(empty["rel_change"]) and math.isnan(empty["p_seed"])
