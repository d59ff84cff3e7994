"""Target binning shared by the 1D study and the real benchmarks.

A classification head needs integer labels for continuous targets. Two binnings are used:

* uniform-width bins over the training target range (the paper's default);
* equal-frequency bins by histogram equalization: the cumulative-histogram mapping
  ``class = floor(C * F_before(bin))`` sends adjacent base bins to the same class, so
  classes hold about ``N / C`` samples each. Bins that hold a large mass (ties, or a base
  bin heavier than ``N / C``) cannot be split, so the final count may be below ``C``.

Labels are assigned by the edges alone: values on an interior edge go to the upper class,
the top edge goes to the last class and values outside the training range clip to the end
classes, so a test target always gets a valid label.

For equal-frequency training, :func:`keep_probabilities` and :func:`balanced_label_mask`
drop labels (set them to -1, ignored by the cross-entropy) so that the classification loss
sees a class-balanced subsample: class ``c`` is kept with probability ``min_k n_k / n_c``.
"""

from __future__ import annotations

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.analysis.validate import check_int
from clsreg.analysis.vocabulary import BINNINGS

IGNORE_LABEL = -1


def finite_1d(values: np.ndarray, what: str = "values to bin") -> np.ndarray:
    """Return ``values`` as a 1D float64 array, refusing empty, NaN or infinite input."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise InputError(f"{what}: none given (the array is empty)")
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(f"{what}: {int(bad.sum())} of {array.size} are NaN or infinite")
    return array


def _check_num_classes(num_classes: int) -> None:
    check_int("number of classes", num_classes, 1)


def uniform_edges(
    values: np.ndarray, num_classes: int, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Edges of ``num_classes`` equal-width bins over ``value_range`` (default: min..max)."""
    _check_num_classes(num_classes)
    if value_range is None:
        array = finite_1d(values)
        low, high = float(array.min()), float(array.max())
    else:
        low, high = (float(v) for v in value_range)
        if not (np.isfinite(low) and np.isfinite(high)) or high < low:
            raise InputError(f"invalid value range {value_range!r}")
    if high == low:  # a constant target still gets valid, increasing edges
        high = low + 1.0
    return np.linspace(low, high, int(num_classes) + 1)


def equal_frequency_edges(
    values: np.ndarray, num_classes: int, base_bins: int | None = None
) -> np.ndarray:
    """Edges of at most ``num_classes`` bins holding about equal counts of ``values``.

    Histogram equalization: a base histogram is mapped through its cumulative count to
    ``floor(C * count_before / N)`` and adjacent base bins with the same image are merged.
    With ``base_bins=None`` the base histogram has one bin per distinct value (exact
    quantile classes, within one sample of ``N / C`` on continuous data); with an integer
    it is a uniform-width histogram of that many bins, as in the original 1D code.
    """
    _check_num_classes(num_classes)
    array = finite_1d(values)
    low, high = float(array.min()), float(array.max())
    if low == high:
        return uniform_edges(array, 1)
    if base_bins is None:
        support, counts = np.unique(array, return_counts=True)
        # Split points between consecutive distinct values.
        between = (support[:-1] + support[1:]) / 2.0
    else:
        _check_num_classes(base_bins)
        base = uniform_edges(array, base_bins)
        counts = np.bincount(assign_labels(array, base), minlength=base_bins)
        between = base[1:-1]
    count_before = np.concatenate(([0], np.cumsum(counts)[:-1]))
    image = np.floor(num_classes * count_before / array.size).astype(np.int64)
    # Merge base bins: a new edge wherever the image changes between neighbours
    # (empty base bins join their left neighbour and never make a class on their own).
    nonempty = counts > 0
    image = np.maximum.accumulate(np.where(nonempty, image, -1))
    cut = image[1:] != image[:-1]
    interior = between[cut]
    # A float midpoint can round onto an end of the range; such a cut would make an empty bin.
    interior = interior[(interior > low) & (interior < high)]
    return np.concatenate(([low], interior, [high]))


def make_edges(
    values: np.ndarray,
    num_classes: int,
    binning: str = "uniform",
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Edges for ``binning`` in {"uniform", "equal"} (``value_range`` only for uniform)."""
    if binning == "uniform":
        return uniform_edges(values, num_classes, value_range)
    if binning == "equal":
        return equal_frequency_edges(values, num_classes)
    raise InputError(f"unknown binning {binning!r}; choose one of {', '.join(BINNINGS)}")


def bin_centres(edges: np.ndarray) -> np.ndarray:
    """The midpoint of each bin."""
    edges = np.asarray(edges, dtype=np.float64)
    return (edges[:-1] + edges[1:]) / 2


def assign_labels(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Class index in ``0 .. len(edges) - 2`` of each value; out-of-range values clip."""
    array = np.asarray(values, dtype=np.float64)
    if array.size and not np.isfinite(array).all():
        raise InputError("cannot label values: NaN or infinite entries")
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise InputError("bin edges must be a strictly increasing array of at least 2 values")
    labels = np.searchsorted(edges[1:-1], array, side="right")
    return labels.astype(np.int64)


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Count of each class among ``labels``, ignoring ``IGNORE_LABEL``."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    return np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes]


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many ``values`` fall in each bin of ``edges`` (out-of-range values clip to the ends)."""
    return class_counts(assign_labels(values, edges), len(edges) - 1)


def keep_probabilities(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class keep probability ``min_k n_k / n_c`` over the non-empty classes (0 if empty)."""
    counts = class_counts(labels, num_classes).astype(np.float64)
    present = counts > 0
    if not present.any():
        raise InputError("cannot balance classes: no labelled samples")
    keep = np.zeros(num_classes)
    keep[present] = counts[present].min() / counts[present]
    return keep


def balanced_label_mask(
    labels: np.ndarray, keep_probability: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Copy of ``labels`` with each sample set to -1 with probability ``1 - keep[label]``."""
    labels = np.asarray(labels, dtype=np.int64)
    keep_probability = np.asarray(keep_probability, dtype=np.float64)
    drop = rng.random(labels.shape) >= keep_probability[np.clip(labels, 0, None)]
    return np.where(drop | (labels < 0), IGNORE_LABEL, labels)


def imbalance_ratio(values: np.ndarray, num_bins: int = 64) -> float:
    """Max over min count of the *non-empty* bins among ``num_bins`` equal-width bins of
    ``values``: finite always (:func:`empty_bin_share` says how many bins hold nothing)."""
    counts = bin_counts(finite_1d(values), uniform_edges(values, num_bins))
    counts = counts[counts > 0]
    return float(counts.max() / counts.min())


def empty_bin_share(values: np.ndarray, num_bins: int = 64) -> float:
    """The share of ``num_bins`` equal-width bins of ``values`` that hold no value."""
    counts = bin_counts(finite_1d(values), uniform_edges(values, num_bins))
    return float(np.mean(counts == 0))
