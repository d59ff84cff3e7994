"""The balanced-vs-imbalanced regression gap, evaluated numerically for any target density.

Following the relation formalized by Pintea et al. (after Ren et al., Balanced MSE, CVPR
2022); definitions and assumptions are in ``docs/theory.md``. Targets live on ``[a, b]``,
``p_bal(y)`` is uniform there, ``p_bal(y|x) = N(y; t, σ²)`` restricted to ``[a, b]`` with
``t = f(x)``, and ``w = p_train / p_bal``. Under label shift

* ``Δ(t, y) = log w(y) − log Z(t)``, ``Z(t) = ∫ p_bal(y'|t) w(y') dy'`` — the gap between
  ``−log p_bal(y|x)`` and ``−log p_train(y|x)``;
* ``μ_train(t) = E_train[y | x]``, the Bayes predictor under imbalance, and
  ``excess_mse = E_bal[(μ_train − μ_bal)²]``, the balanced MSE imbalance adds to the best
  plain regressor;
* for classes ``c(y)``: ``Δ = Δ_class + Δ_within`` with ``Δ_class = log p_train(c|x) −
  log p_bal(c|x)`` (what a classifier over those classes can absorb) and ``Δ_within =
  log p_train(y|x,c) − log p_bal(y|x,c)`` (zero when ``w`` is constant inside each bin).

Every integral over ``y`` is done in log space. For a piecewise-constant ``p_train`` (a
histogram, the window mixture of the 1D study, or samples binned) the ``y``-integrals are
exact sums of normal-CDF differences (:func:`log_diff_ndtr`, accurate in both tails and for
bins far narrower than σ); a density callable uses Gauss–Legendre panels no wider than σ/4.
Expectations over ``t ~ U[a, b]`` use Gauss–Legendre panels no wider than σ. Terms more
than ``15σ`` from ``t`` are dropped: their Gaussian weight is below ``e^{-112}``.

(About 700 lines: every quantity — gap, class posteriors, Bayes mean, decomposition, bound —
is built on the same private atoms and quadrature blocks; one module keeps them private.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from clsreg.analysis.binning import assign_labels, bin_counts, finite_1d, make_edges
from clsreg.analysis.errors import InputError
from scipy import special

LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
BAND = 15.0  # in units of σ: Gaussian weights beyond this are below exp(-112)
T_ORDER = 8  # Gauss–Legendre order of the t-panels
Y_ORDER = 16  # Gauss–Legendre order of the y-panels (density callables)
QUANTILE_POINTS = 1 << 15  # deterministic quantile sample used for equal-frequency edges
_CHUNK_ELEMENTS = 400_000


# ----------------------------------------------------------------------------- primitives
def log_diff_ndtr(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``log(Φ(β) − Φ(α))`` for ``α ≤ β``, accurate in both tails and for narrow intervals.

    Each end's ``log Φ(z)`` and ``log Φ(−z)`` are combined so that no difference of two
    numbers near 1 is ever taken (see :func:`_log_interval_mass`).
    """
    alpha, beta = np.broadcast_arrays(np.asarray(alpha, dtype=np.float64),
                                      np.asarray(beta, dtype=np.float64))
    return _log_interval_mass(alpha, beta, special.log_ndtr(alpha), special.log_ndtr(-alpha),
                              special.log_ndtr(beta), special.log_ndtr(-beta))


def _log_interval_mass(alpha, beta, lower_a, upper_a, lower_b, upper_b):
    """``log(Φ(β) − Φ(α))`` from ``log Φ`` (lower) and ``log Φ(−·)`` (upper) at both ends.

    Below 0: ``log Φ(β) + log(1 − Φ(α)/Φ(β))``; above 0 the mirror image; across 0:
    ``log(1 − Φ(α) − Φ(−β))``. An interval much narrower than the scale of ``φ`` uses the
    midpoint series ``φ(m)·w·(1 + He₂(m)w²/24 + He₄(m)w⁴/1920)`` (truncation below 1e-17
    relative where it is used), since the forms above lose digits as ``w → 0``.
    """
    width = beta - alpha
    mid = 0.5 * (alpha + beta)
    below, above = beta <= 0.0, alpha >= 0.0
    # log of the larger CDF value (0 = log 1 across zero) and of what is subtracted from it.
    high = np.where(below, lower_b, np.where(above, upper_a, 0.0))
    low = np.where(below, lower_a, np.where(above, upper_b, np.logaddexp(lower_a, upper_b)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = high + np.log(-np.expm1(low - high))
        m2 = mid * mid
        narrow = (-0.5 * m2 - LOG_SQRT_2PI + np.log(width)
                  + np.log1p((m2 - 1.0) * width ** 2 / 24.0
                             + (m2 * m2 - 6.0 * m2 + 3.0) * width ** 4 / 1920.0))
    out = np.where(width * np.maximum(1.0, np.abs(mid)) < 1e-2, narrow, out)
    return np.where(width > 0.0, out, -np.inf)


def _segment_logsumexp(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Log-sum-exp of ``values[:, starts[k]:starts[k+1]]`` for each segment (along axis 1)."""
    peak = np.maximum.reduceat(values, starts, axis=1)
    safe = np.where(np.isfinite(peak), peak, 0.0)
    expanded = np.repeat(safe, np.diff(np.append(starts, values.shape[1])), axis=1)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.add.reduceat(np.exp(values - expanded), starts, axis=1))


def _legendre_rule(breakpoints: np.ndarray, max_width: float, order: int):
    """Nodes and weights of composite Gauss–Legendre panels between sorted ``breakpoints``."""
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(order)
    lefts, widths = [], []
    for low, high in zip(breakpoints[:-1], breakpoints[1:], strict=True):
        if high <= low:
            continue
        count = max(1, int(np.ceil((high - low) / max_width)))
        cuts = np.linspace(low, high, count + 1)
        lefts.append(cuts[:-1])
        widths.append(np.diff(cuts))
    lefts = np.concatenate(lefts)
    widths = np.concatenate(widths)
    nodes = (lefts[:, None] + 0.5 * widths[:, None] * (unit_nodes[None, :] + 1.0)).ravel()
    weights = (0.5 * widths[:, None] * unit_weights[None, :]).ravel()
    return nodes, weights


def _check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma <= 0.0:
        raise InputError(f"sigma must be a positive number, got {sigma!r}")
    return sigma


# ----------------------------------------------------------------------------- densities
@dataclass(frozen=True)
class TargetDensity:
    """A training-target density ``p_train`` on ``[low, high]``, positive everywhere there.

    Either piecewise constant (``edges`` and ``log_density`` per piece) or a log-density
    callable (``log_pdf``, normalized on construction; ``breakpoints`` mark its kinks).
    Build with :func:`density_from_samples`, :func:`density_from_histogram`,
    :func:`density_from_callable`, :func:`window_mixture_density` or
    :func:`gaussian_density`.
    """

    low: float
    high: float
    edges: np.ndarray | None = None
    log_density: np.ndarray | None = None
    log_pdf: Callable[[np.ndarray], np.ndarray] | None = None
    breakpoints: tuple[float, ...] = ()
    log_norm: float = 0.0
    samples: np.ndarray | None = field(default=None, repr=False)

    @property
    def piecewise(self) -> bool:
        return self.edges is not None

    @property
    def width(self) -> float:
        return self.high - self.low

    def log_pdf_at(self, y: np.ndarray) -> np.ndarray:
        """``log p_train(y)`` (values outside ``[low, high]`` clip to the end pieces)."""
        y = np.asarray(y, dtype=np.float64)
        if self.piecewise:
            return self.log_density[assign_labels(y, self.edges)]
        return self.log_pdf(y) - self.log_norm

    def cdf_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Points and CDF values, piecewise linear between them (exact for histograms)."""
        if self.piecewise:
            mass = np.exp(self.log_density) * np.diff(self.edges)
            return self.edges, np.concatenate(([0.0], np.cumsum(mass)))
        nodes, weights = _fine_rule(self)
        mass = weights * np.exp(self.log_pdf(nodes) - self.log_norm)
        points = np.concatenate(([self.low], nodes, [self.high]))
        cdf = np.concatenate(([0.0], np.cumsum(mass) - 0.5 * mass, [mass.sum()]))
        return points, cdf

    def quantile_sample(self, count: int = QUANTILE_POINTS) -> np.ndarray:
        """``count`` deterministic quantiles ``F⁻¹((i + ½) / count)``: a noiseless sample."""
        points, cdf = self.cdf_table()
        levels = (np.arange(count) + 0.5) / count * cdf[-1]
        return np.interp(levels, cdf, points)


def _fine_rule(density: TargetDensity) -> tuple[np.ndarray, np.ndarray]:
    breaks = np.unique(np.clip(np.array([density.low, density.high, *density.breakpoints]),
                               density.low, density.high))
    return _legendre_rule(breaks, density.width / 512.0, Y_ORDER)


def _check_range(low: float, high: float) -> tuple[float, float]:
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise InputError(f"target range must be finite with a < b, got [{low}, {high}]")
    return low, high


def density_from_histogram(edges: np.ndarray, counts: np.ndarray) -> TargetDensity:
    """Piecewise-constant density with mass proportional to ``counts`` on each bin."""
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if edges.ndim != 1 or edges.size != counts.size + 1 or np.any(np.diff(edges) <= 0):
        raise InputError("histogram needs strictly increasing edges, one more than counts")
    if not np.all(np.isfinite(counts)) or np.any(counts <= 0):
        raise InputError("every histogram bin needs a positive count: label shift requires "
                         "p_train(y) > 0 wherever balanced targets occur")
    log_density = np.log(counts) - np.log(np.diff(edges)) - np.log(counts.sum())
    low, high = _check_range(edges[0], edges[-1])
    return TargetDensity(low=low, high=high, edges=edges, log_density=log_density)


def default_num_bins(count: int, width: float, sigma: float) -> int:
    """Histogram bins for ``count`` samples: ten per σ, at least 16, about 20 samples a bin."""
    wanted = int(np.ceil(10.0 * width / sigma))
    return int(np.clip(wanted, 16, max(16, min(4096, count // 20))))


def density_from_samples(
    samples: np.ndarray,
    value_range: tuple[float, float] | None = None,
    num_bins: int = 256,
    pseudo_count: float = 0.5,
) -> TargetDensity:
    """Histogram density of ``samples`` on ``value_range`` (default: their min..max).

    Each bin gets ``pseudo_count`` extra samples (Jeffreys) so that ``w > 0`` everywhere:
    an empty bin would make the balanced loss infinite, which the data cannot support.
    The samples are kept for equal-frequency class edges.
    """
    values = finite_1d(samples, "target values")
    if value_range is None:
        value_range = (values.min(), values.max())
    low, high = value_range
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise InputError(f"target range must have a < b, got [{low}, {high}] (a constant "
                         "target has no range to balance)")
    outside = (values < low) | (values > high)
    if outside.any():
        raise InputError(f"{int(outside.sum())} of {values.size} targets lie outside the range "
                         f"[{low:g}, {high:g}]")
    edges = np.linspace(low, high, int(num_bins) + 1)
    counts = bin_counts(values, edges) + pseudo_count
    histogram = density_from_histogram(edges, counts)
    return TargetDensity(low=histogram.low, high=histogram.high, edges=histogram.edges,
                         log_density=histogram.log_density, samples=values)


def density_from_callable(
    density: Callable[[np.ndarray], np.ndarray],
    low: float,
    high: float,
    log: bool = False,
    breakpoints: tuple[float, ...] = (),
) -> TargetDensity:
    """Density given as a (log-)pdf callable on ``[low, high]``; normalized numerically.

    ``breakpoints`` are points where the density is not smooth (window edges); quadrature
    panels break there.
    """
    low, high = _check_range(low, high)

    def log_pdf(y: np.ndarray) -> np.ndarray:
        value = np.asarray(density(np.asarray(y, dtype=np.float64)), dtype=np.float64)
        if log:
            return value
        with np.errstate(divide="ignore"):
            return np.log(value)

    draft = TargetDensity(low=low, high=high, log_pdf=log_pdf,
                          breakpoints=tuple(float(b) for b in breakpoints))
    nodes, weights = _fine_rule(draft)
    log_values = log_pdf(nodes)
    if not np.all(np.isfinite(log_values)):
        raise InputError("the density must be positive and finite on the whole target range")
    log_norm = float(special.logsumexp(log_values + np.log(weights)))
    return TargetDensity(low=low, high=high, log_pdf=log_pdf, breakpoints=draft.breakpoints,
                         log_norm=log_norm)


def window_interval(
    low: float, high: float, center: float, half_width: float
) -> tuple[float, float]:
    """The window ``[center − h, center + h]`` clipped to ``[low, high]``."""
    left, right = max(low, center - half_width), min(high, center + half_width)
    if right <= left:
        raise InputError(f"window {center}±{half_width} does not overlap [{low}, {high}]")
    return left, right


def window_mixture_density(
    low: float, high: float, center: float, half_width: float, window_weight: float
) -> TargetDensity:
    """The 1D study's sampling: uniform background on ``[low, high]`` (weight ``1 − π``)
    plus a uniform window ``[center ± half_width] ∩ [low, high]`` (weight ``π``)."""
    low, high = _check_range(low, high)
    if not 0.0 <= window_weight < 1.0:
        raise InputError(f"window weight must be in [0, 1), got {window_weight}")
    left, right = window_interval(low, high, center, half_width)
    edges = np.unique([low, left, right, high])
    middle = 0.5 * (edges[:-1] + edges[1:])
    inside = (middle >= left) & (middle <= right)
    density = (1.0 - window_weight) / (high - low) + np.where(
        inside, window_weight / (right - left), 0.0)
    return TargetDensity(low=low, high=high, edges=edges, log_density=np.log(density))


def gaussian_density(low: float, high: float, mean: float, std: float) -> TargetDensity:
    """``N(mean, std²)`` restricted to ``[low, high]`` (exact normalizer)."""
    low, high = _check_range(low, high)
    std = _check_sigma(std)
    log_mass = float(log_diff_ndtr((low - mean) / std, (high - mean) / std))

    def log_pdf(y: np.ndarray) -> np.ndarray:
        z = (np.asarray(y, dtype=np.float64) - mean) / std
        return -0.5 * z * z - LOG_SQRT_2PI - np.log(std) - log_mass

    return TargetDensity(low=low, high=high, log_pdf=log_pdf, breakpoints=(float(mean),))


# ----------------------------------------------------------------------------- atoms
@dataclass(frozen=True)
class _Atoms:
    """``[low, high]`` cut into pieces with one class each: histogram pieces split at class
    edges (``left``/``right``), or quadrature nodes (``node``/``log_weight``)."""

    left: np.ndarray | None
    right: np.ndarray | None
    node: np.ndarray | None
    log_weight: np.ndarray | None
    log_p: np.ndarray
    label: np.ndarray
    num_classes: int

    @property
    def center(self) -> np.ndarray:
        return self.node if self.node is not None else 0.5 * (self.left + self.right)


def _atoms(density: TargetDensity, edges: np.ndarray, sigma: float) -> _Atoms:
    edges = np.asarray(edges, dtype=np.float64)
    num_classes = edges.size - 1
    inner = edges[1:-1]
    if density.piecewise:
        cuts = np.unique(np.concatenate([density.edges, inner]))
        cuts = cuts[(cuts >= density.low) & (cuts <= density.high)]
        left, right = cuts[:-1], cuts[1:]
        middle = 0.5 * (left + right)
        return _Atoms(left=left, right=right, node=None, log_weight=None,
                      log_p=density.log_pdf_at(middle), label=assign_labels(middle, edges),
                      num_classes=num_classes)
    breaks = np.unique(np.clip(np.concatenate([[density.low, density.high],
                                               density.breakpoints, inner]),
                               density.low, density.high))
    nodes, weights = _legendre_rule(breaks, min(sigma / 4.0, density.width / 64.0), Y_ORDER)
    log_p = density.log_pdf_at(nodes)
    if not np.all(np.isfinite(log_p)):
        raise InputError("the density must be positive and finite on the whole target range")
    return _Atoms(left=None, right=None, node=nodes, log_weight=np.log(weights), log_p=log_p,
                  label=assign_labels(nodes, edges), num_classes=num_classes)


def _t_rule(low: float, high: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre rule for the mean over ``t ~ U[low, high]`` (weights sum to 1)."""
    nodes, weights = _legendre_rule(np.array([low, high]), min(sigma, (high - low) / 16.0),
                                    T_ORDER)
    return nodes, weights / (high - low)


@dataclass
class _Block:
    """Per-t quantities for a chunk of sorted ``t``, restricted to atoms/classes in band."""

    t: np.ndarray
    log_mass: np.ndarray  # (T, A): log ∫_atom N(y; t, σ²) dy
    log_p: np.ndarray  # (A,)
    atom_class: np.ndarray  # (A,) index into the band's classes
    classes: np.ndarray  # (K,) class ids in band
    log_bal_c: np.ndarray  # (T, K): log ∫_c N
    log_train_c: np.ndarray  # (T, K): log ∫_c N p
    log_nab: np.ndarray  # (T,): log ∫_a^b N
    log_zraw: np.ndarray  # (T,): log ∫_a^b N p
    atoms: _Atoms
    select: np.ndarray  # (A,) indices into atoms


def _blocks(density: TargetDensity, t: np.ndarray, sigma: float, edges: np.ndarray):
    """Yield :class:`_Block` for chunks of sorted ``t`` (``t`` must be sorted)."""
    atoms = _atoms(density, edges, sigma)
    centers = atoms.center
    lo_side = atoms.left if atoms.left is not None else atoms.node
    hi_side = atoms.right if atoms.right is not None else atoms.node
    reach = BAND * sigma
    in_band = centers.size * min(1.0, 3.0 * reach / density.width) + 1.0
    chunk = max(8, int(_CHUNK_ELEMENTS // in_band))
    start = 0
    while start < t.size:
        stop = min(t.size, start + chunk)
        tc = t[start:stop]
        first = np.searchsorted(hi_side, tc[0] - reach, side="left")
        last = np.searchsorted(lo_side, tc[-1] + reach, side="right")
        first = min(first, centers.size - 1)
        select = np.arange(first, max(last, first + 1))
        if atoms.node is not None:
            z = (atoms.node[select][None, :] - tc[:, None]) / sigma
            log_mass = atoms.log_weight[select][None, :] - 0.5 * z * z - LOG_SQRT_2PI - np.log(
                sigma)
        else:
            cuts = np.r_[atoms.left[select], atoms.right[select][-1]]
            z = (cuts[None, :] - tc[:, None]) / sigma
            lower, upper = special.log_ndtr(z), special.log_ndtr(-z)
            log_mass = _log_interval_mass(z[:, :-1], z[:, 1:], lower[:, :-1], upper[:, :-1],
                                          lower[:, 1:], upper[:, 1:])
        labels = atoms.label[select]
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        log_p = atoms.log_p[select]
        log_bal_c = _segment_logsumexp(log_mass, starts)
        log_train_c = _segment_logsumexp(log_mass + log_p[None, :], starts)
        yield _Block(t=tc, log_mass=log_mass, log_p=log_p,
                     atom_class=np.cumsum(np.r_[True, labels[1:] != labels[:-1]]) - 1,
                     classes=labels[starts], log_bal_c=log_bal_c, log_train_c=log_train_c,
                     log_nab=special.logsumexp(log_bal_c, axis=1),
                     log_zraw=special.logsumexp(log_train_c, axis=1), atoms=atoms,
                     select=select)
        start = stop


def _sorted(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    t = np.asarray(t, dtype=np.float64)
    flat = t.ravel()
    order = np.argsort(flat, kind="stable")
    return flat[order], order, t.shape


def _unsort(values: np.ndarray, order: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty_like(values)
    out[order] = values
    return out.reshape(shape)


def _whole_range(density: TargetDensity) -> np.ndarray:
    return np.array([density.low, density.high])


# ----------------------------------------------------------------------------- pointwise
def log_normalizer(density: TargetDensity, t: np.ndarray, sigma: float) -> np.ndarray:
    """``log Z(t)``, ``Z(t) = ∫ p_bal(y|t) w(y) dy`` with ``p_bal(y|t)`` on ``[a, b]``."""
    sigma = _check_sigma(sigma)
    flat, order, shape = _sorted(t)
    parts = [b.log_zraw - b.log_nab for b in _blocks(density, flat, sigma, _whole_range(density))]
    return _unsort(np.concatenate(parts), order, shape) + np.log(density.width)


def gap(density: TargetDensity, t: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """``Δ(t, y) = log w(y) − log Z(t)``: ``−log p_bal(y|x) = −log p_train(y|x) + Δ``."""
    t, y = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64))
    log_w = density.log_pdf_at(y) + np.log(density.width)
    return log_w - log_normalizer(density, t, sigma)


def class_log_posteriors(
    density: TargetDensity, t: np.ndarray, sigma: float, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``log p_bal(c|t)`` and ``log p_train(c|t)`` as ``(len(t), C)`` arrays (exact posteriors
    under label shift; classes beyond the 15σ band get ``-inf``)."""
    sigma = _check_sigma(sigma)
    flat, order, shape = _sorted(t)
    num_classes = np.asarray(edges).size - 1
    bal = np.full((flat.size, num_classes), -np.inf)
    train = np.full((flat.size, num_classes), -np.inf)
    row = 0
    for block in _blocks(density, flat, sigma, np.asarray(edges, dtype=np.float64)):
        rows = slice(row, row + block.t.size)
        bal[rows, block.classes] = block.log_bal_c - block.log_nab[:, None]
        train[rows, block.classes] = block.log_train_c - block.log_zraw[:, None]
        row += block.t.size
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return (bal[inverse].reshape(*shape, num_classes),
            train[inverse].reshape(*shape, num_classes))


def class_gap(
    density: TargetDensity, t: np.ndarray, y: np.ndarray, sigma: float, edges: np.ndarray
) -> np.ndarray:
    """``Δ_class(t, c(y)) = log p_train(c|t) − log p_bal(c|t)``: the part of Δ a classifier
    over the bins ``edges`` absorbs; ``Δ − Δ_class`` is ``Δ_within``."""
    t, y = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64))
    bal, train = class_log_posteriors(density, t, sigma, edges)
    labels = assign_labels(y, np.asarray(edges, dtype=np.float64))
    return (np.take_along_axis(train, labels[..., None], axis=-1)
            - np.take_along_axis(bal, labels[..., None], axis=-1))[..., 0]


def balanced_mean(low: float, high: float, t: np.ndarray, sigma: float) -> np.ndarray:
    """``μ_bal(t) = E_bal[y|x]``: the mean of ``N(t, σ²)`` restricted to ``[low, high]``."""
    t = np.asarray(t, dtype=np.float64)
    alpha, beta = (low - t) / sigma, (high - t) / sigma
    log_mass = log_diff_ndtr(alpha, beta)
    log_phi_a, log_phi_b = -0.5 * alpha ** 2 - LOG_SQRT_2PI, -0.5 * beta ** 2 - LOG_SQRT_2PI
    return t + sigma * (np.exp(log_phi_a - log_mass) - np.exp(log_phi_b - log_mass))


def bayes_mean(density: TargetDensity, t: np.ndarray, sigma: float) -> np.ndarray:
    """``μ_train(t) = E_train[y|x]``, the Bayes predictor of plain regression under imbalance.

    For a piecewise-constant density, ``μ − t = σ Σ_j φ(z_j)(p_j − p_{j−1}) / ∫ N p``
    over the density's jumps ``z_j`` (signed log-sum-exp), exactly 0 inside a flat region.
    """
    sigma = _check_sigma(sigma)
    flat, order, shape = _sorted(t)
    parts = []
    for block in _blocks(density, flat, sigma, _whole_range(density)):
        atoms, select = block.atoms, block.select
        if atoms.node is not None:
            offset = atoms.node[select][None, :] - block.t[:, None]
            with np.errstate(divide="ignore"):
                terms = block.log_mass + block.log_p[None, :] + np.log(np.abs(offset))
            lse, sign = special.logsumexp(terms, b=np.sign(offset), axis=1, return_sign=True)
        else:
            cuts = np.r_[atoms.left[select], atoms.right[select][-1]]
            density_left = np.r_[-np.inf, block.log_p]
            density_right = np.r_[block.log_p, -np.inf]
            jump = np.exp(density_right) - np.exp(density_left)
            z = (cuts[None, :] - block.t[:, None]) / sigma
            with np.errstate(divide="ignore"):
                terms = -0.5 * z * z - LOG_SQRT_2PI + np.log(np.abs(jump))[None, :]
            terms = np.where(jump[None, :] != 0.0, terms, -np.inf)
            # Edges beyond the band: their φ(z) is below exp(-112); the first/last band edge
            # is then an interior cut and must not count as the end of the support.
            inside = np.ones(cuts.size, dtype=bool)
            inside[0] = cuts[0] <= density.low
            inside[-1] = cuts[-1] >= density.high
            terms = np.where(inside[None, :], terms, -np.inf)
            lse, sign = special.logsumexp(terms, b=np.broadcast_to(np.sign(jump), terms.shape),
                                          axis=1, return_sign=True)
            lse = lse + np.log(sigma)
        parts.append(block.t + sign * np.exp(lse - block.log_zraw))
    return _unsort(np.concatenate(parts), order, shape)


def excess_mse(density: TargetDensity, sigma: float) -> float:
    """``E_bal[(μ_train − μ_bal)²]`` over ``t ~ U[a, b]``: the balanced MSE that imbalance
    adds to the best plain regressor (0 for a uniform ``p_train``)."""
    sigma = _check_sigma(sigma)
    nodes, weights = _t_rule(density.low, density.high, sigma)
    shift = bayes_mean(density, nodes, sigma) - balanced_mean(density.low, density.high, nodes,
                                                              sigma)
    return float(np.sum(weights * shift ** 2))


# ----------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class BoundCheck:
    """Bound (4), ``L_bal^reg ≤ L_imb^reg + L_bal^CE``, in expectation under ``p_bal(x, y)``.

    ``slack = L_imb^reg + L_bal^CE − L_bal^reg = L_imb^CE − E[Δ_within] ≥ 0``:
    ``E_bal[Δ_within]`` is minus a KL divergence, so the bound holds without the within-bin
    assumption; with it (``Δ_within ≡ 0``) the slack is the imbalanced cross-entropy.
    """

    l_bal_reg: float
    l_imb_reg: float
    l_bal_ce: float
    l_imb_ce: float
    mean_within: float
    slack: float

    @property
    def holds(self) -> bool:
        return self.slack >= -1e-9 * max(1.0, abs(self.l_bal_reg))


@dataclass(frozen=True)
class GapDecomposition:
    """Expected gap terms under ``p_bal`` for one set of classes."""

    num_classes: int
    expected_gap: float  # E|Δ|
    expected_class_gap: float  # E|Δ_class|
    expected_within_gap: float  # E|Δ_within|
    captured_fraction: float  # E|Δ_class| / (E|Δ_class| + E|Δ_within|); nan if no gap
    bound: BoundCheck


def class_edges(
    density: TargetDensity, num_classes: int, binning: str
) -> np.ndarray:
    """Class edges over ``[a, b]`` from :func:`analysis.binning.make_edges`.

    Equal-frequency edges come from the density's own samples when it has them, else from a
    deterministic quantile sample; the outer edges are set to ``a`` and ``b``.
    """
    if binning == "uniform":
        return make_edges(np.empty(0), num_classes, "uniform", (density.low, density.high))
    values = density.samples if density.samples is not None else density.quantile_sample()
    edges = make_edges(values, num_classes, binning).copy()
    edges[0], edges[-1] = density.low, density.high
    return edges[np.r_[True, np.diff(edges) > 0]] if edges.size > 2 else edges


def decompose(density: TargetDensity, sigma: float, edges: np.ndarray) -> GapDecomposition:
    """``E|Δ|``, ``E|Δ_class|``, ``E|Δ_within|``, the captured fraction and bound (4)."""
    sigma = _check_sigma(sigma)
    edges = np.asarray(edges, dtype=np.float64)
    nodes, weights = _t_rule(density.low, density.high, sigma)
    totals = np.zeros(8)
    row = 0
    for block in _blocks(density, nodes, sigma, edges):
        weight = weights[row:row + block.t.size]
        row += block.t.size
        log_prob_c = block.log_bal_c - block.log_nab[:, None]  # log p_bal(c|t)
        prob_c = np.exp(log_prob_c)
        delta_class = (block.log_train_c - block.log_bal_c) - (block.log_zraw - block.log_nab)[
            :, None]
        prob_atom = np.exp(block.log_mass - block.log_nab[:, None])
        delta = block.log_p[None, :] - (block.log_zraw - block.log_nab)[:, None]
        within = block.log_p[None, :] - (block.log_train_c - block.log_bal_c)[:, block.atom_class]
        log_train_prob_c = block.log_train_c - block.log_zraw[:, None]
        # −log N(y; t, σ²) averaged over y ~ p_bal(·|t): log(σ√2π) + E[z²]/2 on [a, b].
        alpha = (density.low - block.t) / sigma
        beta = (density.high - block.t) / sigma
        phi = special.ndtr(beta) - special.ndtr(alpha)
        second = 1.0 - (beta * np.exp(-0.5 * beta ** 2) - alpha * np.exp(-0.5 * alpha ** 2)) / (
            np.sqrt(2.0 * np.pi) * np.exp(block.log_nab))
        second = np.where(phi > 0, second, 1.0)
        common = np.log(sigma) + LOG_SQRT_2PI + 0.5 * second
        mean_log_p = np.sum(prob_atom * block.log_p[None, :], axis=1)
        per_t = np.stack([
            np.sum(prob_atom * np.abs(delta), axis=1),
            np.sum(prob_c * np.abs(delta_class), axis=1),
            np.sum(prob_atom * np.abs(within), axis=1),
            np.sum(prob_atom * within, axis=1),
            common + block.log_nab,  # −log p_bal(y|t) = −log N + log ∫_a^b N
            common + block.log_zraw - mean_log_p,  # −log p_train(y|t)
            -np.sum(prob_c * log_prob_c, axis=1),
            -np.sum(prob_c * log_train_prob_c, axis=1),
        ])
        totals += per_t @ weight
    gap_abs, class_abs, within_abs, within_mean, l_bal, l_imb, ce_bal, ce_imb = totals
    # L_bal^reg is a differential entropy (nats) and may be negative.
    share = class_abs + within_abs
    captured = class_abs / share if share > 1e-300 else float("nan")
    bound = BoundCheck(l_bal_reg=float(l_bal), l_imb_reg=float(l_imb), l_bal_ce=float(ce_bal),
                       l_imb_ce=float(ce_imb), mean_within=float(within_mean),
                       slack=float(l_imb + ce_bal - l_bal))
    return GapDecomposition(num_classes=edges.size - 1, expected_gap=float(gap_abs),
                            expected_class_gap=float(class_abs),
                            expected_within_gap=float(within_abs),
                            captured_fraction=float(captured), bound=bound)


def expected_gap(density: TargetDensity, sigma: float) -> float:
    """``E_bal|Δ|`` in nats: how far the imbalanced likelihood is from the balanced one."""
    return decompose(density, sigma, _whole_range(density)).expected_gap


def captured_fraction(
    density: TargetDensity, sigma: float, num_classes: int, binning: str = "uniform"
) -> float:
    """Share of ``E|Δ|`` carried by ``Δ_class`` for ``num_classes`` bins (0 for one class)."""
    return decompose(density, sigma, class_edges(density, num_classes, binning)).captured_fraction


@dataclass(frozen=True)
class BoundGridRow:
    """One point of the bound (4) grid."""

    window_std: float
    sigma: float
    num_classes: int
    binning: str
    captured_fraction: float
    bound: BoundCheck


def bound_grid(
    window_stds: tuple[float, ...] = (0.3, 0.1, 0.03, 0.01, 0.001),
    sigmas: tuple[float, ...] = (0.1, 0.03, 0.01, 0.003, 0.001),
    class_counts: tuple[int, ...] = (1, 4, 16, 64, 256),
    binnings: tuple[str, ...] = ("uniform", "equal"),
    center: float = 0.37,
    window_weight: float = 0.9,
) -> list[BoundGridRow]:
    """Bound (4) and the captured fraction over a grid of window mixtures on ``[0, 1]``
    (window half-width = std, as in the 1D study; σ in units of the range)."""
    rows = []
    for window_std in window_stds:
        density = window_mixture_density(0.0, 1.0, center, window_std, window_weight)
        for sigma in sigmas:
            for binning in binnings:
                for num_classes in class_counts:
                    result = decompose(density, sigma, class_edges(density, num_classes, binning))
                    rows.append(BoundGridRow(window_std=window_std, sigma=sigma,
                                             num_classes=result.num_classes, binning=binning,
                                             captured_fraction=result.captured_fraction,
                                             bound=result.bound))
    return rows


def write_bound_grid(rows: list[BoundGridRow], path: str | Path) -> Path:
    """The bound grid as a flat CSV (one line per grid point, full precision), atomically."""
    import pandas as pd
    from clsreg.analysis.files import atomic_path, ensure_dir

    frame = pd.DataFrame([{
        "window_std": r.window_std, "sigma": r.sigma, "num_classes": r.num_classes,
        "binning": r.binning, "captured_fraction": r.captured_fraction,
        "l_bal_reg": r.bound.l_bal_reg, "l_imb_reg": r.bound.l_imb_reg,
        "l_bal_ce": r.bound.l_bal_ce, "l_imb_ce": r.bound.l_imb_ce,
        "mean_within": r.bound.mean_within, "slack": r.bound.slack,
        "holds": r.bound.holds} for r in rows])
    ensure_dir(Path(path).resolve().parent)
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False, float_format="%.10g")
    return Path(path)


def format_bound_summary(rows: list[BoundGridRow], path: str | Path) -> str:
    """One line: at how many grid points bound (4) holds, the smallest slack, the CSV."""
    return (f"bound (4) holds at {sum(r.bound.holds for r in rows)} of {len(rows)} grid "
            f"points; smallest slack {min(r.bound.slack for r in rows):.4g} nats -> {path}")
