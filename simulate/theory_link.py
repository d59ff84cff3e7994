"""Theory predictions for the 1D study (the check against a store: :mod:`simulate.theory_check`).

For each (setting, sampling, function, data seed) of PROTOCOL §2 the training-target
density is the sampler's own expectation: a uniform background on the clean target range
``[y_min, y_max]`` plus a uniform window ``[m ± std·(y_max − y_min)] ∩ [y_min, y_max]``
around the dataset's peak ``m``, with the window weight ``π = 1 − background / sampled``
(60,000 points, 6 per each of 1024 bins: ``π ≈ 0.898``). We use this closed form, not a
histogram of ``make_dataset(...).train.y``: it is what the sampler draws from, has no
histogram noise, and is ~100× faster (the peak comes from the protocol's own random
stream, checked against ``make_dataset`` in the tests). *uniform* sampling is
``p_train = p_bal``: every prediction is 0.

σ is the model's predictive scale (docs/theory.md): by default ``σ = 0.075·(y_max −
y_min)``, the median relative test RMSE of the protocol's plain MLP on clean uniform data,
combined in quadrature with the label noise (0.1) in the noisy setting; or, from a results
store, the measured RMSE of plain regression on uniform data of the same setting and
function. The samplings select x through its clean target, so strictly the data shift is a
covariate shift; a model that cannot resolve x finer than σ in target space sees it as the
label shift the theory assumes. OOD splits x by interval, which breaks ``p_train(x|y) =
p_bal(x|y)``: its rows are computed alike but flagged ``theory_applies = False``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path, ensure_dir, read_csv_file
from clsreg.analysis.theory import (
    class_edges,
    decompose,
    excess_mse,
    window_interval,
    window_mixture_density,
)
from clsreg.analysis.vocabulary import (
    BINNINGS,
    CLASS_COUNTS,
    DEFAULT_SIGMA_FRACTION,
    LABEL_SHIFT_SETTINGS,
    SAMPLINGS,
    SETTINGS,
)
from clsreg.simulate import data as protocol
from tqdm import tqdm

SIGMA_FRACTIONS = (0.02, 0.0375, DEFAULT_SIGMA_FRACTION, 0.15, 0.3)
COLUMNS = ("setting", "sampling", "function", "function_seed", "data_seed", "num_points",
           "num_classes",
           "binning", "excess_mse", "captured_fraction", "expected_gap", "relative_excess",
           "predicted_benefit", "sigma", "sigma_fraction", "range_low", "range_high", "peak",
           "window_low", "window_high", "window_weight", "theory_applies")
PRESETS = {
    "paper": {"settings": SETTINGS, "samplings": SAMPLINGS,
              "functions": tuple(range(protocol.NUM_FUNCTIONS)), "seeds": (0, 1, 2, 3, 4),
              "class_counts": CLASS_COUNTS, "binnings": BINNINGS},
    "small": {"settings": LABEL_SHIFT_SETTINGS, "samplings": SAMPLINGS,
              "functions": (0, 1), "seeds": (0,), "class_counts": (4, 64),
              "binnings": BINNINGS},
}


@dataclass(frozen=True)
class TargetModel:
    """The training-target density of one 1D dataset, as its sampler defines it."""

    setting: str
    sampling: str
    function: int
    function_seed: int
    data_seed: int
    num_points: int
    low: float
    high: float
    peak: float | None
    half_width: float
    window_weight: float

    def density(self):
        """``p_train`` as a :class:`analysis.theory.TargetDensity` (uniform: no window)."""
        if self.peak is None:
            return window_mixture_density(self.low, self.high, 0.5 * (self.low + self.high),
                                          self.high - self.low, 0.0)
        return window_mixture_density(self.low, self.high, self.peak, self.half_width,
                                      self.window_weight)


def target_model(
    function_index: int,
    setting: str,
    sampling: str,
    data_seed: int,
    function_seed: int = 0,
    num_points: int = protocol.NUM_POINTS,
) -> TargetModel:
    """The sampler's density for one dataset without drawing the dataset itself.

    The peak is the first draw of the protocol's stream for this dataset, exactly as in
    :func:`simulate.data.make_dataset`; the range is that of ``f`` over the training
    x-intervals (the full ``[-1, 1]`` except for OOD).
    """
    if setting not in SETTINGS or sampling not in SAMPLINGS:
        raise InputError(f"unknown setting/sampling {setting!r}/{sampling!r}")
    function = protocol.sine_function(function_index, function_seed)
    if setting == "ood":
        train_intervals = protocol.split_intervals(setting, data_seed)["train"]
        per_split = num_points // 3
        background = protocol.BACKGROUND_PER_BIN // 3
    else:
        train_intervals = [(-1.0, 1.0)]
        per_split = 3 * (num_points // 3)
        background = protocol.BACKGROUND_PER_BIN
    grid = np.concatenate([np.linspace(lo, hi, 20_001) for lo, hi in train_intervals])
    low, high = float(function(grid).min()), float(function(grid).max())
    peak, half_width, weight = None, 0.0, 0.0
    if sampling != "uniform":
        peak = protocol.dataset_peak(function_index, setting, sampling, data_seed, function_seed)
        half_width = protocol.WINDOW_STD[sampling] * (high - low)
        weight = max(0.0, 1.0 - background * protocol.TARGET_BINS / per_split)
    return TargetModel(setting=setting, sampling=sampling, function=int(function_index),
                       function_seed=int(function_seed), data_seed=int(data_seed),
                       num_points=int(num_points), low=low,
                       high=high, peak=peak, half_width=half_width, window_weight=weight)


def effective_sigma(model: TargetModel, sigma_fraction: float,
                    measured_rmse: float | None = None) -> float:
    """σ for one dataset: a measured plain-regression RMSE if given, else
    ``sigma_fraction·range`` (with the label noise added in quadrature when noisy)."""
    if measured_rmse is not None:
        return float(measured_rmse)
    if not sigma_fraction > 0:
        raise InputError(f"sigma fraction must be positive, got {sigma_fraction}")
    sigma = sigma_fraction * (model.high - model.low)
    if model.setting == "noisy":
        sigma = math.hypot(sigma, protocol.NOISE_STD)
    return sigma


def predict_dataset(
    model: TargetModel,
    sigma: float,
    sigma_fraction: float,
    class_counts: Iterable[int] = CLASS_COUNTS,
    binnings: Iterable[str] = BINNINGS,
) -> list[dict]:
    """Prediction rows (one per class count and binning) for one dataset."""
    density = model.density()
    uniform = model.peak is None
    excess = 0.0 if uniform else excess_mse(density, sigma)
    window = ((math.nan, math.nan) if uniform
              else window_interval(model.low, model.high, model.peak, model.half_width))
    rows = []
    for binning in binnings:
        for num_classes in class_counts:
            if uniform:
                gap_abs, captured = 0.0, math.nan
            else:
                result = decompose(density, sigma, class_edges(density, num_classes, binning))
                gap_abs, captured = result.expected_gap, result.captured_fraction
            rows.append({
                "setting": model.setting, "sampling": model.sampling, "function": model.function,
                "function_seed": model.function_seed, "data_seed": model.data_seed,
                "num_points": model.num_points,
                "num_classes": int(num_classes), "binning": binning, "excess_mse": excess,
                "captured_fraction": captured, "expected_gap": gap_abs,
                "relative_excess": excess / sigma ** 2,
                "predicted_benefit": 0.0 if uniform else captured * excess, "sigma": sigma,
                "sigma_fraction": sigma_fraction, "range_low": model.low,
                "range_high": model.high,
                "peak": math.nan if model.peak is None else model.peak,
                "window_low": window[0], "window_high": window[1],
                "window_weight": model.window_weight,
                "theory_applies": model.setting in LABEL_SHIFT_SETTINGS})
    return rows


@dataclass(frozen=True)
class _Job:
    function: int
    setting: str
    sampling: str
    data_seed: int
    function_seed: int
    sigma_fraction: float
    measured_rmse: float | None
    class_counts: tuple[int, ...]
    binnings: tuple[str, ...]
    num_points: int = protocol.NUM_POINTS


def _run_job(job: _Job) -> list[dict]:
    model = target_model(job.function, job.setting, job.sampling, job.data_seed,
                         job.function_seed, job.num_points)
    sigma = effective_sigma(model, job.sigma_fraction, job.measured_rmse)
    return predict_dataset(model, sigma, job.sigma_fraction, job.class_counts, job.binnings)


def _run_jobs(jobs: list[_Job], workers: int, progress: bool, what: str) -> list[dict]:
    rows: list[dict] = []
    bar = tqdm(total=len(jobs), desc=what, unit="dataset", disable=not progress)
    if workers <= 1:
        for job in jobs:
            rows.extend(_run_job(job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_run_job, jobs, chunksize=4):
                rows.extend(result)
                bar.update()
    bar.close()
    return rows


def predict_protocol(
    settings: Iterable[str],
    samplings: Iterable[str],
    functions: Iterable[int],
    seed_indices: Iterable[int],
    class_counts: Iterable[int] = CLASS_COUNTS,
    binnings: Iterable[str] = BINNINGS,
    sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
    measured_rmse: dict[tuple[str, int], float] | None = None,
    workers: int = 1,
    progress: bool = False,
) -> list[dict]:
    """Prediction rows for a grid of datasets; ``measured_rmse[(setting, function)]``
    overrides σ where present."""
    measured_rmse = measured_rmse or {}
    jobs = [_Job(function=f, setting=s, sampling=p, data_seed=protocol.data_seed(i),
                 function_seed=0, sigma_fraction=sigma_fraction,
                 measured_rmse=measured_rmse.get((s, f)), class_counts=tuple(class_counts),
                 binnings=tuple(binnings))
            for s in settings for p in samplings for f in functions for i in seed_indices]
    return _run_jobs(jobs, workers, progress, "theory predictions")


def sigma_sensitivity(
    settings: Iterable[str] = LABEL_SHIFT_SETTINGS,
    samplings: Iterable[str] = ("mild", "moderate", "severe"),
    functions: Iterable[int] = tuple(range(protocol.NUM_FUNCTIONS)),
    fractions: Iterable[float] = SIGMA_FRACTIONS,
    num_classes: int = 64,
    workers: int = 1,
    progress: bool = False,
) -> list[dict]:
    """How the predictions move with σ: rows for data seed index 0 and ``num_classes``
    uniform and equal classes at each σ fraction."""
    jobs = [_Job(function=f, setting=s, sampling=p, data_seed=protocol.data_seed(0),
                 function_seed=0, sigma_fraction=fraction, measured_rmse=None,
                 class_counts=(num_classes,), binnings=BINNINGS)
            for fraction in fractions for s in settings for p in samplings for f in functions]
    return _run_jobs(jobs, workers, progress, "sigma sensitivity")


def write_rows(rows: list[dict], path: Path, columns: Iterable[str] = COLUMNS) -> Path:
    """Write ``rows`` as CSV atomically (full precision)."""
    import pandas as pd

    ensure_dir(Path(path).parent)
    frame = pd.DataFrame(rows, columns=list(columns))
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False, float_format="%.10g")
    return Path(path)


def format_prediction_summary(rows: list[dict]) -> str:
    """Mean excess MSE, relative excess and captured fraction per (setting, binning,
    sampling) at the largest class count, as a table like the other reports'."""
    import pandas as pd
    from tabulate import tabulate

    frame = pd.DataFrame(rows)
    summary = (frame[(frame["num_classes"] == frame["num_classes"].max())]
               .groupby(["setting", "binning", "sampling"], sort=False)
               [["excess_mse", "relative_excess", "captured_fraction"]].mean().reset_index())
    body = [[r.setting, r.binning, r.sampling, f"{r.excess_mse:.4g}",
             f"{r.relative_excess:.4g}",
             "–" if math.isnan(r.captured_fraction) else f"{r.captured_fraction:.3f}"]
            for r in summary.itertuples()]
    return tabulate(body, headers=["setting", "binning", "sampling", "excess_mse",
                                   "excess_mse / σ²", "captured fraction"],
                    tablefmt="github", disable_numparse=True)


def read_predictions(path: Path):
    """A predictions CSV as a DataFrame (checked for the columns the join needs)."""

    path = Path(path)
    frame = read_csv_file(path, "predictions file")
    needed = {"setting", "sampling", "function", "data_seed", "num_classes", "binning",
              "excess_mse", "captured_fraction"}
    missing = needed - set(frame.columns)
    if missing:
        raise InputError(f"{path} lacks columns {', '.join(sorted(missing))}")
    if "function_seed" not in frame.columns:
        frame["function_seed"] = 0
    return frame


DATASET_KEYS = ("setting", "sampling", "function", "function_seed", "data_seed")


def predictions_for_pairs(
    pairs: list[dict], sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
    measured_rmse: dict[tuple[str, int], float] | None = None, workers: int = 1,
    progress: bool = False,
):
    """Predictions for exactly the datasets and class setups present in ``pairs``."""
    import pandas as pd

    measured_rmse = measured_rmse or {}
    wanted: dict[tuple, set] = defaultdict(set)
    for pair in pairs:
        dataset = tuple(pair[k] for k in DATASET_KEYS) + (pair["num_points"],)
        wanted[dataset].add((pair["num_classes"], pair["binning"]))
    jobs = []
    for (setting, sampling, function, function_seed, data_seed, num_points), setups in (
            wanted.items()):
        for binning in sorted({b for _, b in setups}):
            counts = tuple(sorted({c for c, b in setups if b == binning}))
            jobs.append(_Job(function=int(function), setting=setting, sampling=sampling,
                             data_seed=int(data_seed), function_seed=int(function_seed),
                             sigma_fraction=sigma_fraction,
                             measured_rmse=measured_rmse.get((setting, int(function))),
                             class_counts=counts, binnings=(binning,),
                             num_points=int(num_points)))
    return pd.DataFrame(_run_jobs(jobs, workers, progress, "theory predictions"),
                        columns=list(COLUMNS))
