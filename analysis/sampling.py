"""The study's samplings on a target: which points of a pool a training set takes.

One implementation for the 1D sines (a pool of x with their f(x)) and for real tables (a
pool of rows with their targets), so it lives below both: *uniform* fills ``num_bins``
equal-width target bins equally; *mild / moderate / severe* put most points in a window
``peak ± std·(y_max − y_min)`` (std = 0.3 / 0.1 / 0.03) filled equally over ``num_bins``
sub-bins, on top of a thin background per occupied full-range bin (PROTOCOL.md section 2).
Every draw comes from the caller's NumPy ``Generator``.
"""

from __future__ import annotations

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.analysis.validate import check_choice
from clsreg.analysis.vocabulary import SAMPLINGS

WINDOW_STD = {"mild": 0.3, "moderate": 0.1, "severe": 0.03}
TARGET_BINS = 1024
BACKGROUND_PER_BIN = 6


def _fill_bins(
    pool_y: np.ndarray,
    edges: np.ndarray,
    per_bin: np.ndarray,
    rng: np.random.Generator,
    replace: bool,
) -> np.ndarray:
    """Indices of ``per_bin[i]`` pool points drawn among those whose target is in bin ``i``.

    With ``replace=False`` a bin gives at most the points it has.
    """
    which = np.searchsorted(edges, pool_y, side="right") - 1
    which[pool_y == edges[-1]] = len(edges) - 2
    inside = np.flatnonzero((which >= 0) & (which < len(edges) - 1))
    order = inside[np.argsort(which[inside], kind="stable")]
    starts = np.searchsorted(which[order], np.arange(len(edges)))
    chosen = []
    for i in range(len(edges) - 1):
        size = starts[i + 1] - starts[i]
        if size and per_bin[i]:
            if replace:
                picks = rng.integers(0, size, per_bin[i])
            else:
                picks = rng.permutation(size)[:per_bin[i]]
            chosen.append(order[starts[i] + picks])
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def _occupied_bins(pool_y: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(pool_y, bins=edges)
    return counts > 0


def _equal_shares(total: int, slots: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spread ``total`` points over the True ``slots`` as equally as possible."""
    per_bin = np.zeros(slots.size, dtype=np.int64)
    index = np.flatnonzero(slots)
    if index.size == 0 or total <= 0:
        return per_bin
    per_bin[index] = total // index.size
    per_bin[rng.choice(index, total % index.size, replace=False)] += 1
    return per_bin


def select_by_target(
    pool_y: np.ndarray,
    num_points: int,
    sampling: str,
    peak: float | None,
    rng: np.random.Generator,
    background_per_bin: int = BACKGROUND_PER_BIN,
    replace: bool = True,
    num_bins: int = TARGET_BINS,
) -> np.ndarray:
    """Indices of about ``num_points`` pool points drawn with ``sampling`` on their targets.

    The one implementation of the study's samplings, used for the sines (a pool of x with
    their f(x)) and for real tables (a pool of rows with their targets). *uniform* fills
    ``num_bins`` equal-width target bins equally; a window sampling spends
    ``background_per_bin`` points per occupied full-range bin and the rest equally over
    ``num_bins`` sub-bins of ``peak ± std·(y_max − y_min)``. The result is shuffled and cut
    to ``num_points``; without replacement a sparse pool can give fewer.
    """
    check_choice("sampling", sampling, SAMPLINGS)
    pool_y = np.asarray(pool_y, dtype=np.float64)
    full_edges = np.linspace(pool_y.min(), pool_y.max(), num_bins + 1)
    full_occupied = _occupied_bins(pool_y, full_edges)
    if sampling == "uniform":
        per_bin = np.where(full_occupied, num_points // num_bins + 1, 0)
        chosen = _fill_bins(pool_y, full_edges, per_bin, rng, replace)
    else:
        if peak is None:
            raise InputError(f"sampling {sampling!r} needs a peak")
        background = np.where(full_occupied, background_per_bin, 0)
        half_width = WINDOW_STD[sampling] * (pool_y.max() - pool_y.min())
        window_edges = np.linspace(peak - half_width, peak + half_width, num_bins + 1)
        window_total = num_points - int(background.sum())
        window = _equal_shares(window_total, _occupied_bins(pool_y, window_edges), rng)
        background_pick = _fill_bins(pool_y, full_edges, background, rng, replace)
        if not replace:  # the window draws from what the background left
            left = np.setdiff1d(np.arange(pool_y.size), background_pick)
            window_pick = left[_fill_bins(pool_y[left], window_edges, window, rng, replace)]
        else:
            window_pick = _fill_bins(pool_y, window_edges, window, rng, replace)
        chosen = np.concatenate([window_pick, background_pick])
    return rng.permutation(chosen)[:num_points]
