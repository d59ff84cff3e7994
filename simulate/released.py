"""The study's released 1D generator (``make_data1d.py`` of ``SilviaLauraPintea/reg-cls``),
rewritten in our own code so that ``--protocol released`` trains on the very datasets the
study's code writes (PROTOCOL §2 "Released generator").

Why it differs from :mod:`simulate.data` (our cleaned-up protocol): the released code seeds
NumPy's legacy global generator once per sampling, draws one 100,000-point candidate pool and
then the peak, so the relative peak is shared by all functions and severities; it keeps
``all_samples − max_bins − min_spls`` window points (splits of 21,705 imbalanced, 20,138
uniform); the noisy uniform sampling bins on noisy targets; OOD samples each interval on its
own and does not clip interval edges. Every draw below is the released draw, in the released
order, from a ``numpy.random.RandomState`` — so clean, noisy and OOD-uniform datasets equal
the released ones exactly. OOD with a window sampling draws its peak from a target range the
released code takes from an *unseeded* draw (the global state left by the previous dataset
and its plot); we replay that chain (:func:`_ood_peak_range`), which is exact when the
datasets are written in the released order.
"""

from __future__ import annotations

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.simulate.data import (
    NOISE_STD,
    WINDOW_STD,
    Dataset,
    SineFunction,
    Split,
    sine_function,
)

MAX_BINS = 1024
MIN_SAMPLES = 5
POOL = 100_000
OOD_RANGE = 1.0 / 4.5
CASES = ("uniform", "mild", "moderate", "severe")  # the released order within one seed


def min_num_points() -> int:
    """The smallest ``all_samples`` the released window sampling accepts (one point per
    window sub-bin at least)."""
    return MAX_BINS * MIN_SAMPLES + MAX_BINS


def _pool(state: np.random.RandomState, function: SineFunction, low: float, high: float,
          noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The released candidate pool: 100,000 uniform x in [low, high] and their targets."""
    x = state.uniform(low=low, high=high, size=(POOL, 1))
    y = function(x)
    if noise > 0:
        y = y + state.normal(loc=0.0, scale=noise, size=y.shape)
    return x.ravel(), y.ravel()


def _draw_per_bin(state: np.random.RandomState, x: np.ndarray, y: np.ndarray,
                  edges: np.ndarray, per_bin: int) -> list[np.ndarray]:
    """For every bin ``[edges[i], edges[i+1]]`` (both ends inclusive, as released) with
    points, ``per_bin`` of its x drawn with replacement; empty bins draw nothing."""
    order = np.argsort(y, kind="stable")
    sorted_y = y[order]
    lows = np.searchsorted(sorted_y, edges[:-1], side="left")
    highs = np.searchsorted(sorted_y, edges[1:], side="right")
    chosen = []
    for low, high in zip(lows, highs, strict=True):
        if high > low:
            members = np.sort(order[low:high])  # np.where's order: ascending pool index
            chosen.append(x[members[state.randint(0, high - low, per_bin)]])
    return chosen


def _uniform_x(state: np.random.RandomState, function: SineFunction, all_samples: int,
               low: float = -1.0, high: float = 1.0, noise: float = 0.0) -> np.ndarray:
    """``get_uniform``: ``all_samples // 1024 + 1`` points per target bin of the pool."""
    x, y = _pool(state, function, low, high, noise)
    edges = np.linspace(y.min(), y.max(), MAX_BINS + 1)
    return np.concatenate(_draw_per_bin(state, x, y, edges, all_samples // MAX_BINS + 1))


def _window_x(state: np.random.RandomState, function: SineFunction, std: float,
              min_samples: int, all_samples: int, low: float = -1.0, high: float = 1.0,
              peak: float | None = None) -> tuple[np.ndarray, float]:
    """``get_imbalanced``: a dense window around the peak, cut to ``all_samples − 1024 −
    min_samples`` points, then ``min_samples + 1`` background points per full-range bin."""
    x, y = _pool(state, function, low, high)
    y_min, y_max = y.min(), y.max()
    half_width = std * (y_max - y_min)
    if peak is None:
        peak = state.uniform(low=y_min, high=y_max)
    kept = []
    if y_min < peak < y_max:
        per_bin = (all_samples - MAX_BINS * min_samples) // MAX_BINS * 2
        edges = np.linspace(peak - half_width, peak + half_width, MAX_BINS + 1)
        window = np.concatenate(_draw_per_bin(state, x, y, edges, per_bin))
        order = np.arange(window.size)
        state.shuffle(order)
        kept.append(window[order[:all_samples - MAX_BINS - min_samples]])
    edges = np.linspace(y_min, y_max, MAX_BINS + 1)
    kept.extend(_draw_per_bin(state, x, y, edges, min_samples + 1))
    return np.concatenate(kept), peak


def _thirds(state: np.random.RandomState, function: SineFunction, x: np.ndarray,
            noise: float) -> dict[str, Split]:
    """``sample_sets``: shuffle, cut in thirds, targets (with fresh noise) per split."""
    order = np.arange(x.size)
    state.shuffle(order)
    n = x.size
    cuts = {"train": order[:n // 3], "val": order[n // 3:2 * n // 3], "test": order[2 * n // 3:]}
    splits = {}
    for name in ("train", "val", "test"):
        xs = x[cuts[name]]
        y = function(xs.reshape(-1, 1))
        if noise > 0:
            y = y + state.normal(loc=0.0, scale=noise, size=y.shape)
        splits[name] = Split(x=xs, y=y.ravel())
    return splits


def ood_ranges(state: np.random.RandomState) -> dict[str, np.ndarray]:
    """The released OOD intervals (rows low, high): right edges extended by |N(0, 1/18²)|
    and clipped at 1 but not at the next interval, so neighbours can overlap."""
    spread = OOD_RANGE / 4.0
    starts = np.arange(-1.0, 1.0 + spread, OOD_RANGE)
    ranges = np.array([starts[:-1], starts[1:]])
    ranges[1, :] += np.abs(state.normal(0, spread, ranges.shape[1]))
    ranges[1, :] = np.minimum(ranges[1], 1.0)
    count = ranges.shape[1] // 3
    return {name: ranges[:, np.arange(count) * 3 + offset]
            for offset, name in enumerate(("train", "val", "test"))}


def _ood_peak(state: np.random.RandomState, function: SineFunction,
              ranges: dict[str, np.ndarray], y_range: tuple[float, float]) -> tuple[float, dict]:
    """``get_ood_imbalanced_mean``: redraw the peak until every split has an interval whose
    pool covers it; returns the peak and, per split, how many intervals cover it."""
    while True:
        peak = state.uniform(low=y_range[0], high=y_range[1])
        covering = {"train": 0, "val": 0, "test": 0}
        for r in range(ranges["train"].shape[1]):
            for name in ("train", "test", "val"):
                _, y = _pool(state, function, ranges[name][0, r], ranges[name][1, r])
                covering[name] += int(y.min() <= peak <= y.max())
        if all(covering.values()):
            return peak, covering


def _ood(state: np.random.RandomState, function: SineFunction, case: str, seed: int,
         all_samples: int, y_range: tuple[float, float] | None) -> tuple[dict, float | None]:
    """``sample_ood`` after its unseeded draw: intervals, reseed, x per interval (train,
    test, val for uniform; train, val, test for a window), clean targets, no shuffle."""
    state.seed(seed)
    ranges = ood_ranges(state)
    state.seed(seed)
    count = ranges["train"].shape[1]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    peak = None
    if case == "uniform":
        for r in range(count):
            for name in ("train", "test", "val"):
                parts[name].append(_uniform_x(state, function, all_samples // (3 * count),
                                              ranges[name][0, r], ranges[name][1, r]))
    else:
        peak, covering = _ood_peak(state, function, ranges, y_range)
        for r in range(count):
            for name in ("train", "val", "test"):
                x, _ = _window_x(state, function, WINDOW_STD[case], MIN_SAMPLES // count,
                                 all_samples // (3 * covering[name]),
                                 ranges[name][0, r], ranges[name][1, r], peak)
                parts[name].append(x)
    splits = {}
    for name, xs in parts.items():
        x = np.concatenate(xs)
        splits[name] = Split(x=x, y=function(x.reshape(-1, 1)).ravel())
    return splits, peak


def _y_range_after(state: np.random.RandomState, function: SineFunction,
                   previous: dict[str, Split], all_samples: int) -> tuple[float, float]:
    """The target range the released ``sample_ood`` takes before seeding: the previous
    dataset's plot draws three index samples, then 60,000 unseeded x give min and max."""
    for name in ("train", "val", "test"):
        state.randint(0, previous[name].x.size, 1000)
    y = function(state.uniform(low=-1.0, high=1.0, size=(all_samples, 1)))
    return float(y.min()), float(y.max())


def _case(function: SineFunction, setting: str, case: str, seed: int, all_samples: int,
          state: np.random.RandomState, y_range: tuple[float, float] | None
          ) -> tuple[dict[str, Split], float | None]:
    """One released dataset (``sample_clean`` / ``sample_noisey`` / ``sample_ood``)."""
    if setting == "ood":
        return _ood(state, function, case, seed, all_samples, y_range)
    state.seed(seed)
    noise = NOISE_STD if setting == "noisy" else 0.0
    peak = None
    if case == "uniform":
        x = _uniform_x(state, function, all_samples, noise=noise)
    else:
        x, peak = _window_x(state, function, WINDOW_STD[case], MIN_SAMPLES, all_samples)
    return _thirds(state, function, x, noise), peak


def _intervals(setting: str, seed: int) -> dict[str, list[tuple[float, float]]]:
    if setting != "ood":
        return {name: [(-1.0, 1.0)] for name in ("train", "val", "test")}
    ranges = ood_ranges(np.random.RandomState(seed))
    return {name: [(float(lo), float(hi)) for lo, hi in r.T] for name, r in ranges.items()}


def released_dataset(function_index: int, setting: str, sampling: str, data_seed: int,
                     num_points: int = 60_000, function_seed: int = 0) -> Dataset:
    """The released generator's dataset: train and val of ``sampling``, test of the uniform
    sampling (what the released training script evaluates on). ``num_points`` is the
    released ``all_samples``."""
    if num_points < min_num_points():
        raise InputError(f"the released protocol needs num_points >= {min_num_points()} "
                         f"(its window sampling draws (N - 5120) // 1024 * 2 points per "
                         f"sub-bin), got {num_points}")
    function = sine_function(function_index, function_seed)
    state = np.random.RandomState(int(data_seed))
    uniform, _ = _case(function, setting, "uniform", int(data_seed), num_points, state, None)
    splits, peak = uniform, None
    previous = uniform
    # Clean and noisy datasets seed themselves; OOD needs the chain of the cases before it.
    chain = CASES[1:CASES.index(sampling) + 1] if setting == "ood" else (
        () if sampling == "uniform" else (sampling,))
    for case in chain:
        y_range = (_y_range_after(state, function, previous, num_points)
                   if setting == "ood" else None)
        previous, peak = _case(function, setting, case, int(data_seed), num_points, state,
                               y_range)
        splits = previous
    return Dataset(train=splits["train"], val=splits["val"], test=uniform["test"],
                   function=function, setting=setting, sampling=sampling,
                   data_seed=int(data_seed), peak=None if peak is None else float(peak),
                   x_intervals=_intervals(setting, int(data_seed)))
