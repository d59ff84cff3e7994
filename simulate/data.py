"""The controlled 1D data protocol of the study (PROTOCOL.md section 2).

Targets are ``f(x) = A sin(Cx) + B sin(Dx)`` on ``x in [-1, 1]``. A dataset is fixed by
(function index, setting, sampling, data seed); the same four values give bit-identical
arrays on any machine, because every draw comes from a NumPy ``Generator`` (PCG64) seeded
by those values, never from global state.

Samplings act on the target: *uniform* fills 1024 equal-width target bins equally;
*mild / moderate / severe* put most points in a window ``m ± std·(y_max − y_min)`` around a
random peak ``m`` (std = 0.3 / 0.1 / 0.03), filled equally over 1024 sub-bins, on top of a
thin background of about six points per full-range bin so that no target value is absent.
The test split is always the uniform sampling's test split (balanced evaluation).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path
from clsreg.analysis.sampling import (  # noqa: F401 (the protocol's sampling constants)
    BACKGROUND_PER_BIN,
    TARGET_BINS,
    WINDOW_STD,
    select_by_target,
)
from clsreg.analysis.validate import check_choice
from clsreg.analysis.vocabulary import PROTOCOLS, SAMPLINGS, SETTINGS

NOISE_STD = 0.1
# The study's 5 (data, model) seed pairs, continued for studies with more seeds: data seeds
# continue the study's own draw (legacy numpy.random.seed(0); randint(0, 10000, n), whose
# first five are the study's), model seeds 10,000 + index (never one of the study's).
MAX_SEEDS = 100
DATA_SEEDS = tuple(int(s) for s in np.random.RandomState(0).randint(0, 10_000, MAX_SEEDS))
MODEL_SEEDS = (0, 421, 8125, 2481, 849) + tuple(range(10_005, 10_000 + MAX_SEEDS))
NUM_FUNCTIONS = 10
NUM_POINTS = 60_000
CANDIDATE_POOL = 100_000
OOD_INTERVALS = 9
OOD_WIDTH = 1.0 / 4.5
OOD_EDGE_STD = 1.0 / 18.0


@dataclass(frozen=True)
class SineFunction:
    """``f(x) = a sin(c x) + b sin(d x)``."""

    a: float
    b: float
    c: int
    d: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.a * np.sin(self.c * x) + self.b * np.sin(self.d * x)


def sine_functions(count: int = NUM_FUNCTIONS, function_seed: int = 0) -> list[SineFunction]:
    """The first ``count`` functions of the family drawn with Python's ``random.seed(seed)``.

    Seed 0 gives the paper's ten: function 0 is (0.8444, 0.6556, 22, 7).
    """
    if count < 0:
        raise InputError(f"function count must be >= 0, got {count}")
    draw = random.Random(function_seed)
    functions = []
    for _ in range(count):
        a = draw.random()
        c = draw.randint(9, 30)
        functions.append(SineFunction(a=a, b=1.5 - a, c=c, d=c // 3))
    return functions


def sine_function(index: int, function_seed: int = 0) -> SineFunction:
    """Function number ``index`` (0-based) of the family for ``function_seed``."""
    if int(index) != index or index < 0:
        raise InputError(f"function index must be a non-negative integer, got {index!r}")
    return sine_functions(int(index) + 1, function_seed)[-1]


@dataclass(frozen=True)
class Split:
    """One split: inputs ``x`` and targets ``y``, both 1D float64."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """A 1D dataset: train and val from the chosen sampling, test always uniform."""

    train: Split
    val: Split
    test: Split
    function: SineFunction
    setting: str
    sampling: str
    data_seed: int
    peak: float | None
    x_intervals: dict[str, list[tuple[float, float]]]


def ood_intervals(data_seed: int) -> dict[str, list[tuple[float, float]]]:
    """The OOD x-intervals per split: nine consecutive intervals, 0,3,6 train, 1,4,7 val, rest test.

    Each right edge is extended by ``|N(0, (1/18)^2)|`` and clipped at 1, so neighbours may
    overlap slightly at their shared edge; they never share an interior point otherwise.
    """
    rng = np.random.default_rng([int(data_seed), 0xD0D])
    lefts = -1.0 + OOD_WIDTH * np.arange(OOD_INTERVALS)
    rights = np.minimum(lefts + OOD_WIDTH + np.abs(rng.normal(0.0, OOD_EDGE_STD, OOD_INTERVALS)),
                        1.0)
    intervals = {"train": [], "val": [], "test": []}
    for i, (low, high) in enumerate(zip(lefts, rights, strict=True)):
        intervals[("train", "val", "test")[i % 3]].append((float(low), float(high)))
    return intervals


def _ood_disjoint(intervals: dict[str, list[tuple[float, float]]]) -> dict[str, list]:
    """Clip each interval at the next interval's left edge so that splits are disjoint in x.

    The extended right edge of interval ``i`` may run into interval ``i + 1``, which belongs
    to another split; the original protocol let them overlap, ours keeps x disjoint across
    splits as an out-of-distribution split must be.
    """
    ordered = sorted((iv, name) for name, ivs in intervals.items() for iv in ivs)
    clipped = {name: [] for name in intervals}
    for i, ((low, high), name) in enumerate(ordered):
        if i + 1 < len(ordered):
            high = min(high, ordered[i + 1][0][0])
        clipped[name].append((low, high))
    return clipped


def _candidates(
    function: SineFunction, intervals: list[tuple[float, float]], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A pool of x drawn uniformly over the union of ``intervals``, with clean targets."""
    lows = np.array([iv[0] for iv in intervals])
    widths = np.array([iv[1] - iv[0] for iv in intervals])
    which = rng.choice(len(intervals), size=CANDIDATE_POOL, p=widths / widths.sum())
    x = lows[which] + widths[which] * rng.random(CANDIDATE_POOL)
    return x, function(x)


def _sample_x(
    function: SineFunction,
    intervals: list[tuple[float, float]],
    num_points: int,
    sampling: str,
    peak: float | None,
    background_per_bin: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exactly ``num_points`` x values (shuffled) drawn with ``sampling`` on the target."""
    pool_x, pool_y = _candidates(function, intervals, rng)
    return pool_x[select_by_target(pool_y, num_points, sampling, peak, rng, background_per_bin)]


def _rng(data_seed: int, function_index: int, function_seed: int, setting: str, sampling: str):
    key = [int(data_seed), int(function_seed), int(function_index),
           SETTINGS.index(setting), SAMPLINGS.index(sampling)]
    return np.random.default_rng(key)


def _draw_peak(
    function: SineFunction,
    split_intervals: list[list[tuple[float, float]]],
    rng: np.random.Generator,
) -> float:
    """A peak ``m ~ U(y_min, y_max)`` that lies inside the target range of every given split."""
    ranges = []
    for intervals in split_intervals:
        grid = np.concatenate([np.linspace(low, high, 20_001) for low, high in intervals])
        ranges.append((function(grid).min(), function(grid).max()))
    y_min = min(r[0] for r in ranges)
    y_max = max(r[1] for r in ranges)
    for _ in range(10_000):
        peak = float(rng.uniform(y_min, y_max))
        if all(low <= peak <= high for low, high in ranges):
            return peak
    raise InputError("no target value is shared by the train, val and test x-ranges")


def _splits(
    function: SineFunction,
    setting: str,
    sampling: str,
    num_points: int,
    peak: float | None,
    intervals: dict[str, list[tuple[float, float]]],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """x of train, val and test for one sampling (before noise)."""
    third = num_points // 3
    if setting == "ood":
        # Each split is sampled on its own x-range, with a third of the background.
        return {name: _sample_x(function, intervals[name], third, sampling, peak,
                                BACKGROUND_PER_BIN // 3, rng)
                for name in ("train", "val", "test")}
    x = _sample_x(function, [(-1.0, 1.0)], 3 * third, sampling, peak, BACKGROUND_PER_BIN, rng)
    return {"train": x[:third], "val": x[third:2 * third], "test": x[2 * third:]}


def split_intervals(setting: str, data_seed: int) -> dict[str, list[tuple[float, float]]]:
    """The x-intervals each split is drawn from: all of [-1, 1], or the disjoint OOD ones."""
    check_choice("setting", setting, SETTINGS)
    if setting == "ood":
        return _ood_disjoint(ood_intervals(data_seed))
    return {name: [(-1.0, 1.0)] for name in ("train", "val", "test")}


def _peak_and_rng(
    function_index: int, setting: str, sampling: str, data_seed: int, function_seed: int
) -> tuple[float, np.random.Generator]:
    """The window peak (the first draw of the sampling's stream) and the stream after it."""
    rng = _rng(data_seed, function_index, function_seed, setting, sampling)
    function = sine_function(function_index, function_seed)
    peak = _draw_peak(function, list(split_intervals(setting, data_seed).values()), rng)
    return peak, rng


def dataset_peak(
    function_index: int, setting: str, sampling: str, data_seed: int, function_seed: int = 0
) -> float | None:
    """The peak :func:`make_dataset` uses for these arguments, without drawing the data."""
    check_choice("sampling", sampling, SAMPLINGS)
    if sampling == "uniform":
        return None
    return _peak_and_rng(function_index, setting, sampling, data_seed, function_seed)[0]


def make_dataset(
    function_index: int,
    setting: str,
    sampling: str,
    data_seed: int,
    num_points: int = NUM_POINTS,
    function_seed: int = 0,
    protocol: str = "clsreg",
) -> Dataset:
    """The dataset of PROTOCOL §2 for one (function, setting, sampling, data seed).

    ``num_points`` (default 60,000) are split in thirds. Train and val come from
    ``sampling``; test is the test third of the uniform sampling with the same function,
    setting and seed. In the noisy setting ``N(0, 0.1²)`` noise is added to every target.
    ``protocol="released"`` gives the study's released generator's dataset instead
    (:mod:`simulate.released`).
    """
    check_choice("setting", setting, SETTINGS)
    check_choice("sampling", sampling, SAMPLINGS)
    check_choice("protocol", protocol, PROTOCOLS)
    if protocol == "released":
        from clsreg.simulate.released import released_dataset  # it builds on this module

        return released_dataset(function_index, setting, sampling, data_seed, num_points,
                                function_seed)
    if num_points < 3 * 3:
        raise InputError(f"need at least 9 points, got {num_points}")
    function = sine_function(function_index, function_seed)
    intervals = split_intervals(setting, data_seed)

    uniform_rng = _rng(data_seed, function_index, function_seed, setting, "uniform")
    uniform_x = _splits(function, setting, "uniform", num_points, None, intervals, uniform_rng)
    if sampling == "uniform":
        x, peak = uniform_x, None
    else:
        peak, rng = _peak_and_rng(function_index, setting, sampling, data_seed, function_seed)
        x = _splits(function, setting, sampling, num_points, peak, intervals, rng)
        x["test"] = uniform_x["test"]

    splits = {}
    for name in ("train", "val", "test"):
        y = function(x[name])
        if setting == "noisy":
            # Noise draws come after all sampling draws, from a stream of their own.
            noise_rng = np.random.default_rng(
                [int(data_seed), int(function_seed), int(function_index), 7,
                 ("train", "val", "test").index(name),
                 SAMPLINGS.index("uniform" if name == "test" else sampling)])
            y = y + noise_rng.normal(0.0, NOISE_STD, y.shape)
        splits[name] = Split(x=x[name], y=y)
    return Dataset(train=splits["train"], val=splits["val"], test=splits["test"],
                   function=function, setting=setting, sampling=sampling,
                   data_seed=int(data_seed), peak=peak, x_intervals=intervals)


def data_seed(seed_index: int) -> int:
    """The data seed of a seed index (0-4 are the study's: numpy.random.seed(0);
    randint(0, 10000, 5))."""
    if int(seed_index) != seed_index or not 0 <= seed_index < len(DATA_SEEDS):
        raise InputError(f"seed index must be in 0..{len(DATA_SEEDS) - 1}, got {seed_index!r}")
    return DATA_SEEDS[int(seed_index)]


def save_dataset(dataset: Dataset, directory: Path) -> list[Path]:
    """Write ``train.csv``, ``val.csv`` and ``test.csv`` (header ``x,y``, full precision)."""
    written = []
    for name in ("train", "val", "test"):
        split = getattr(dataset, name)
        target = Path(directory) / f"{name}.csv"
        with atomic_path(target) as temporary:
            np.savetxt(temporary, np.column_stack([split.x, split.y]), delimiter=",",
                       header="x,y", comments="", fmt="%.17g")
        written.append(target)
    return written


def load_split(path: Path) -> Split:
    """Read a split CSV written by :func:`save_dataset`."""
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {path}: {error}") from None
    return Split(x=table[:, 0], y=table[:, 1])
