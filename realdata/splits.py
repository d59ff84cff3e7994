"""Balanced validation and test splits, cut out of a table before any training.

DIR-style evaluation measures the error on a test set with the same number of samples in
every target bin, so that the dense region of a long-tailed target does not dominate the
average. We cut the target range into ``split_bins`` equal-width bins. A bin is
*well-populated* when it holds at least ``min_bin_rows`` rows; the per-bin quota is

    q = min(max_per_bin, floor(share · smallest well-populated bin count)),

and exactly ``q`` rows of every well-populated bin go to the test split and another ``q``
to the validation split (model selection), drawn at random. Bins with fewer rows (the far
tail) give no evaluation rows: all their rows stay in training, where they remain the
rare targets of the imbalance. ``share`` (default 0.3) keeps at least 40% of even the
smallest well-populated bin for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from clsreg.analysis.binning import assign_labels, uniform_edges
from clsreg.analysis.errors import ConfigError, InputError
from clsreg.analysis.validate import check_int, check_number


@dataclass(frozen=True)
class SplitConfig:
    """How the balanced evaluation splits are cut (see the module docstring)."""

    split_bins: int = 15
    min_bin_rows: int = 100
    share: float = 0.3
    max_per_bin: int = 500

    def __post_init__(self) -> None:
        check_int("split bins", self.split_bins, 1)
        check_int("min rows per split bin", self.min_bin_rows, 3)
        if not 0.0 < check_number("split share", self.share) < 0.5:
            raise ConfigError(f"split share must be in (0, 0.5), got {self.share}")
        check_int("max rows per split bin", self.max_per_bin, 1)


@dataclass(frozen=True)
class Splits:
    """Row indices of the three splits and the bins they were balanced on."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    edges: np.ndarray
    per_bin: int
    evaluated_bins: np.ndarray


def balanced_splits(target: np.ndarray, config: SplitConfig, seed: int) -> Splits:
    """Cut balanced val and test splits (``q`` rows per well-populated bin) out of ``target``."""
    target = np.asarray(target, dtype=np.float64)
    edges = uniform_edges(target, config.split_bins)
    bins = assign_labels(target, edges)
    counts = np.bincount(bins, minlength=config.split_bins)
    evaluated = np.flatnonzero(counts >= config.min_bin_rows)
    if evaluated.size == 0:
        raise InputError(f"no target bin holds {config.min_bin_rows} rows (largest of "
                         f"{config.split_bins} bins: {counts.max()} of {target.size} rows); "
                         "the table is too small for a balanced test split")
    per_bin = int(min(config.max_per_bin, np.floor(config.share * counts[evaluated].min())))
    if per_bin < 1:
        raise InputError("the balanced test split would be empty")
    rng = np.random.default_rng([int(seed), 0x5EB1])
    val, test = [], []
    for b in evaluated:
        rows = rng.permutation(np.flatnonzero(bins == b))
        test.append(rows[:per_bin])
        val.append(rows[per_bin:2 * per_bin])
    test_rows = np.sort(np.concatenate(test))
    val_rows = np.sort(np.concatenate(val))
    train_mask = np.ones(target.size, dtype=bool)
    train_mask[test_rows] = False
    train_mask[val_rows] = False
    return Splits(train=np.flatnonzero(train_mask), val=val_rows, test=test_rows, edges=edges,
                  per_bin=per_bin, evaluated_bins=evaluated)
