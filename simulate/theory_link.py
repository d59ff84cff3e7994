"""The theory joined to the 1D study: a prediction for every dataset, checked against a store.

**Predictions.**
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

**The check against a results store: does the theory rank what it predicts?**
Two measured quantities, each per run and then per *cell* (one dataset recipe and class
setup, the seeds averaged):

* ``excess`` — what the theory claims to predict directly: the balanced test MSE that
  imbalance adds to the plain regressor, ``MSE(reg, imbalanced) − MSE(reg, uniform)`` for
  the same setting, function, seeds and training recipe (relative: divided by the uniform
  run's MSE);
* ``gain`` — what the study attributes to it: ``MSE(reg) − MSE(method)`` through the one
  comparison (:func:`analysis.compare.pair_runs`; relative: divided by ``MSE(reg)``), per
  training *regime* (optimizer, learning rate, weight decay, epochs, λ: the controls store
  holds several, e.g. weight decay 0, where the regularization is equal).

σ is, by default, the store's own plain regressor on uniform data of the same setting,
function and regime (``σ-from``), else a fraction of the range. :func:`check`
rank-correlates prediction and measurement (Spearman and Kendall with bootstrap CIs) per
setting and over the label-shift settings pooled, and sets each ρ against the *noise
ceiling*: how well the measured cells rank themselves across halves of their seeds
(:func:`analysis.stats.split_half_reliability`). OOD is reported but flagged: its split
breaks the label-shift assumption.

(About 900 lines: the predictions and the check share the dataset keys and the jobs that
compute predictions; one module joins the theory to stored 1D runs.)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from clsreg.analysis.compare import pair_runs
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path, ensure_dir
from clsreg.analysis.stats import (
    cluster_rank_correlation_ci,
    rank_correlation_ci,
    split_half_reliability,
)
from clsreg.analysis.store import ResultsStore
from clsreg.analysis.theory import (
    class_edges,
    decompose,
    excess_mse,
    window_interval,
    window_mixture_density,
)
from clsreg.analysis.vocabulary import (
    BASELINE_METHOD,
    BINNINGS,
    CLASS_COUNTS,
    DEFAULT_SIGMA_FRACTION,
    LABEL_SHIFT_SETTINGS,
    SAMPLINGS,
    SETTINGS,
    SIM_KIND,
    THEORY_PRESETS,
    THEORY_TARGETS,
)
from clsreg.simulate import data as protocol
from clsreg.simulate.grid import RECIPE_DEFAULTS, sim_identity
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
assert tuple(PRESETS) == THEORY_PRESETS


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


# ----------------------------------------------------------------------------- the check
TARGETS = THEORY_TARGETS
POOLED = "clean+noisy"
# The training recipe beyond data and seeds: runs of one regime are compared with each other.
REGIME_KEYS = ("hidden", "optimizer", "lr", "weight_decay", "decay_scaling", "epochs",
               "batch_size", "lam")
CELL_KEYS = DATASET_KEYS[:4] + ("num_classes", "binning", "num_points", "regime")
# Predictors tried against each measurement (absolute measured → absolute predictors).
PREDICTORS = {
    "absolute": ("excess_mse", "predicted_benefit"),
    "relative": ("relative_excess", "relative_benefit"),
}
DEFAULT_PREDICTOR = {"excess": "excess_mse", "gain": "predicted_benefit"}
# What a bootstrap draws whole: the function (within a regime and group). Every cell of one
# function (its samplings, class counts and, pooled, both settings) shares that function's
# reg runs and σ, so its cells are near-replicates (intraclass correlation ≈ 0.9 on the paper
# grid); resampling cells would treat them as independent and give too narrow a CI.
CLUSTER_KEYS = ("function_seed", "function")
CLUSTER_NAME = "function"
# The baseline predictor: σ alone (the store's uniform reg RMSE the theory is given).
SIGMA_PREDICTOR = "sigma"
CALIBRATION_BINS = 10


def theory_records(store_dir: Path) -> list[dict]:
    """The 1D rows of a store, read once; only a clsreg-protocol store can be checked."""
    with ResultsStore(store_dir, create=False) as store:
        records = store.records(SIM_KIND)
    if not records:
        raise InputError(f"results store {store_dir} holds no {SIM_KIND!r} rows")
    protocols = {r["config"].get("protocol", "clsreg") for r in records}
    if protocols != {"clsreg"}:
        raise InputError(f"results store {store_dir} was trained under --protocol "
                         f"{'/'.join(sorted(protocols - {'clsreg'}))}; the theory models the "
                         f"clsreg protocol's sampling, so check a clsreg store")
    return records


def _config(record: dict) -> dict:
    return {**RECIPE_DEFAULTS, **record["config"]}


def regime_of(config: dict, lam: float | None = None) -> tuple:
    """The training regime of a stored run (``lam``: the method's λ, 0 for plain reg)."""
    config = {**RECIPE_DEFAULTS, **config}
    values = [tuple(config["hidden"]) if k == "hidden" else config[k]
              for k in REGIME_KEYS[:-1]]
    return tuple(values) + (float(config.get("lam", 0.0) if lam is None else lam),)


def describe_regime(regime: tuple, varying: set[str] | None = None) -> str:
    """``regime`` in words (only the entries in ``varying``, when given)."""
    parts = []
    for key, value in zip(REGIME_KEYS, regime, strict=True):
        if varying is None or key in varying:
            parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts) or "the store's recipe"


def measured_pairs(records: list[dict], method: str = "regcls") -> list[dict]:
    """Paired (baseline, ``method``) test MSEs of :func:`theory_records`: one row per pair,
    its dataset, seed, class setup and regime (the method's λ included; reg's own regime
    for the σ)."""
    pairing = pair_runs(records, sim_identity, BASELINE_METHOD, [method])
    rows = []
    for pair in pairing.pairs:
        config, base = _config(pair.candidate), _config(pair.baseline)
        reg, cand = (float(p["metrics"]["test_mse"]) for p in (pair.baseline, pair.candidate))
        rows.append({**{k: config[k] for k in DATASET_KEYS},
                     "model_seed": config["model_seed"], "num_points": config["num_points"],
                     "num_classes": int(config["num_classes"]), "binning": config["binning"],
                     "regime": regime_of(config), "sigma_regime": regime_of(base, 0.0),
                     "reg_mse": reg, "regcls_mse": cand, "measured": reg - cand,
                     "measured_rel": (reg - cand) / reg})
    return rows


def _nothing_measured(store_dir: Path, target: str, method: str) -> InputError:
    if target == "gain":
        return InputError(f"results store {store_dir} has no complete {BASELINE_METHOD} / "
                          f"{method} pairs")
    return InputError(f"results store {store_dir} has no {BASELINE_METHOD} runs on both "
                      "uniform and imbalanced data of one function and seed: the excess "
                      "MSE cannot be measured (try --target gain)")


def store_pairs(store_dir: Path, method: str = "regcls") -> list[dict]:
    """:func:`measured_pairs` of a store; an error naming it when there is no pair."""
    rows = measured_pairs(theory_records(store_dir), method)
    if not rows:
        raise _nothing_measured(store_dir, "gain", method)
    return rows


def measured_excess(records: list[dict]) -> list[dict]:
    """The plain regressor's excess balanced MSE under imbalance, one row per imbalanced run:
    its MSE minus that of the uniform-data run of the same setting, function, seeds and
    regime (rows without such a run are left out)."""
    records = [r for r in records if r["config"].get("model") == BASELINE_METHOD
               and not r["metrics"].get("diverged")]

    def twin(config: dict) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in config.items() if k != "sampling"))

    uniform = {twin(_config(r)): float(r["metrics"]["test_mse"]) for r in records
               if r["config"]["sampling"] == "uniform"}
    rows = []
    for record in records:
        config = _config(record)
        base = uniform.get(twin(config))
        if config["sampling"] == "uniform" or base is None:
            continue
        mse = float(record["metrics"]["test_mse"])
        regime = regime_of(config, 0.0)
        rows.append({**{k: config[k] for k in DATASET_KEYS},
                     "model_seed": config["model_seed"], "num_points": config["num_points"],
                     "num_classes": 0, "binning": "uniform", "regime": regime,
                     "sigma_regime": regime, "reg_mse": mse, "uniform_mse": base,
                     "measured": mse - base, "measured_rel": mse / base - 1.0})
    return rows


def uniform_rmse(records: list[dict]) -> dict[tuple, float]:
    """Plain-regression test RMSE on uniform data per (regime, setting, function): σ-from."""
    values: dict[tuple, list[float]] = defaultdict(list)
    for record in records:
        config = _config(record)
        if (config.get("model") == BASELINE_METHOD and config["sampling"] == "uniform"
                and not record["metrics"].get("diverged")):
            key = (regime_of(config, 0.0), config["setting"], int(config["function"]))
            values[key].append(record["metrics"]["test_mse"])
    return {key: math.sqrt(float(np.mean(v))) for key, v in values.items()}


def measured_uniform_rmse(store_dir: Path) -> dict[tuple[str, int], float]:
    """σ-from for ``theory predict``: uniform reg RMSE per (setting, function), regimes pooled."""
    values: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (_, setting, function), rmse in uniform_rmse(theory_records(store_dir)).items():
        values[(setting, function)].append(rmse ** 2)
    return {key: math.sqrt(float(np.mean(v))) for key, v in values.items()}


def attach_predictions(rows: list[dict], sigma: dict[tuple, float] | None,
                       sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
                       workers: int = 1) -> list[dict]:
    """``rows`` with the theory's predictions for their datasets and class setups.

    ``sigma`` maps (regime, setting, function) to a measured σ (None: the fraction of the
    range for every dataset, and likewise for datasets it lacks). Excess rows (no class
    head) get the 4-class decomposition only as a placeholder for the benefit columns.
    """
    sigma = sigma or {}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["sigma_regime"]].append(row)
    joined = []
    for regime, members in groups.items():
        measured = {(s, f): v for (r, s, f), v in sigma.items() if r == regime}
        setups = [{**m, "num_classes": m["num_classes"] or 4} for m in members]
        table = predictions_for_pairs(setups, sigma_fraction, measured, workers=workers)
        lookup = {(r["setting"], r["sampling"], int(r["function"]), int(r["data_seed"]),
                   int(r["num_points"]), int(r["num_classes"]), r["binning"]): r
                  for r in table.to_dict("records")}
        for member, setup in zip(members, setups, strict=True):
            p = lookup[(member["setting"], member["sampling"], int(member["function"]),
                        int(member["data_seed"]), int(member["num_points"]),
                        setup["num_classes"], member["binning"])]
            sigma2, excess = p["sigma"] ** 2, p["excess_mse"]
            benefit = p["predicted_benefit"] if member["num_classes"] else math.nan
            from_store = (member["setting"], int(member["function"])) in measured
            joined.append({**member, "sigma": p["sigma"],
                           "sigma_source": "store" if from_store else "fraction",
                           "excess_mse": excess, "relative_excess": excess / sigma2,
                           "predicted_benefit": benefit,
                           "relative_benefit": benefit / (sigma2 + excess)})
    return joined


def cells_of(rows: list[dict]) -> list[dict]:
    """Per cell: the measured values per seed (by data seed) and the mean prediction."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in CELL_KEYS)].append(row)
    cells = []
    for key, members in groups.items():
        cell = dict(zip(CELL_KEYS, key, strict=True))
        cell["seeds"] = {int(m["data_seed"]): (m["measured"], m["measured_rel"])
                         for m in members}
        for name in ("measured", "measured_rel", "sigma", *PREDICTORS["absolute"],
                     *PREDICTORS["relative"]):
            cell[name] = float(np.mean([m[name] for m in members]))
        cell["num_seeds"] = len(members)
        cells.append(cell)
    return cells


@dataclass(frozen=True)
class CheckRow:
    """One rank correlation of a prediction with a measurement over a group of cells."""

    target: str
    regime: str
    group: str
    form: str
    predictor: str
    num_cells: int
    num_runs: int
    spearman: float
    spearman_low: float
    spearman_high: float
    p_value: float
    kendall: float
    kendall_low: float
    kendall_high: float
    split_half: float
    reliability: float
    ceiling: float
    share_of_ceiling: float
    theory_applies: bool
    cluster: str = CLUSTER_NAME
    num_clusters: int = 0
    spearman_cell_low: float = math.nan  # the cell bootstrap's CI, for comparison only
    spearman_cell_high: float = math.nan
    sigma_spearman: float = math.nan  # σ alone as the predictor, same cells
    sigma_low: float = math.nan
    sigma_high: float = math.nan
    over_sigma: float = math.nan  # ρ(predictor) − ρ(σ), CI paired over the same clusters
    over_sigma_low: float = math.nan
    over_sigma_high: float = math.nan

    def as_dict(self) -> dict:
        return asdict(self)


def _groups(cells: list[dict]) -> dict[str, list[dict]]:
    groups = {s: [c for c in cells if c["setting"] == s] for s in SETTINGS}
    groups[POOLED] = [c for c in cells if c["setting"] in LABEL_SHIFT_SETTINGS]
    return {name: members for name, members in groups.items() if members}


def _seed_matrix(cells: list[dict], relative: bool) -> np.ndarray:
    seeds = sorted({s for c in cells for s in c["seeds"]})
    matrix = np.full((len(cells), len(seeds)), np.nan)
    for i, cell in enumerate(cells):
        for j, seed in enumerate(seeds):
            if seed in cell["seeds"]:
                matrix[i, j] = cell["seeds"][seed][1 if relative else 0]
    return matrix


def _within(values: np.ndarray, labels: list) -> np.ndarray:
    """Ranks within each label, scaled to (0, 1]: a pooled correlation of these ranks
    measures the ordering inside each group only."""
    from scipy.stats import rankdata

    out = np.empty(values.size)
    for label in set(labels):
        index = np.array([i for i, lab in enumerate(labels) if lab == label])
        out[index] = rankdata(values[index]) / index.size
    return out


def correlate(cells: list[dict], target: str, regime: str, group: str, form: str,
              predictor: str, within: str | None = None, num_resamples: int = 1000,
              seed: int = 0) -> CheckRow:
    """The rank correlation of ``predictor`` with the measured ``form`` over ``cells``
    (``within``: ranks taken inside each setting or function first), beside σ alone, with
    CIs that resample whole functions (:data:`CLUSTER_KEYS`)."""
    relative = form == "relative"
    predicted = np.array([c[predictor] for c in cells])
    measured = np.array([c["measured_rel" if relative else "measured"] for c in cells])
    sigma = np.array([c[SIGMA_PREDICTOR] for c in cells])
    keep = np.isfinite(predicted) & np.isfinite(measured) & np.isfinite(sigma)
    kept = [c for c, k in zip(cells, keep, strict=True) if k]
    predicted, measured, sigma = predicted[keep], measured[keep], sigma[keep]
    if within is not None and kept:
        labels = [c[within] for c in kept]
        predicted, measured = _within(predicted, labels), _within(measured, labels)
        sigma = _within(sigma, labels)
    clusters = np.array([str(tuple(c[k] for k in CLUSTER_KEYS)) for c in kept])
    rho = cluster_rank_correlation_ci(predicted, measured, clusters, "spearman",
                                      num_resamples, seed, baseline=sigma)
    tau = cluster_rank_correlation_ci(predicted, measured, clusters, "kendall",
                                      max(200, num_resamples // 5), seed)
    _, p_value, cell_low, cell_high = rank_correlation_ci(predicted, measured, "spearman",
                                                          num_resamples, seed)
    reliability = split_half_reliability(_seed_matrix(kept, relative))
    share = (rho.estimate / reliability.ceiling
             if reliability.ceiling and math.isfinite(rho.estimate) else math.nan)
    name = predictor if within is None else f"{predictor} (ranked within {within})"
    return CheckRow(target=target, regime=regime, group=group, form=form, predictor=name,
                    num_cells=len(kept), num_runs=int(sum(c["num_seeds"] for c in kept)),
                    spearman=rho.estimate, spearman_low=rho.low, spearman_high=rho.high,
                    p_value=p_value, kendall=tau.estimate, kendall_low=tau.low,
                    kendall_high=tau.high, split_half=reliability.split_half,
                    reliability=reliability.reliability, ceiling=reliability.ceiling,
                    share_of_ceiling=share, theory_applies=group != "ood",
                    cluster=CLUSTER_NAME, num_clusters=rho.num_clusters,
                    spearman_cell_low=cell_low, spearman_cell_high=cell_high,
                    sigma_spearman=rho.baseline, sigma_low=rho.baseline_low,
                    sigma_high=rho.baseline_high, over_sigma=rho.difference,
                    over_sigma_low=rho.difference_low, over_sigma_high=rho.difference_high)


def _regimes(cells: list[dict]) -> dict[str, list[dict]]:
    """Cells by regime, named by the regime entries that vary *within* a setting: the
    protocol's per-setting λ and learning rate are one regime across settings."""
    by_setting: dict[str, set] = defaultdict(set)
    for cell in cells:
        by_setting[cell["setting"]].add(cell["regime"])
    varying = {k for i, k in enumerate(REGIME_KEYS)
               if any(len({r[i] for r in regimes}) > 1 for regimes in by_setting.values())}
    groups: dict[str, list[dict]] = defaultdict(list)
    for cell in cells:
        groups[describe_regime(cell["regime"], varying)].append(cell)
    return dict(sorted(groups.items()))


def check(cells: list[dict], target: str, num_resamples: int = 1000,
          seed: int = 0) -> list[CheckRow]:
    """The default predictor against the absolute measurement, per regime and group."""
    rows = []
    for regime, members in _regimes(cells).items():
        for group, group_cells in _groups(members).items():
            rows.append(correlate(group_cells, target, regime, group, "absolute",
                                  DEFAULT_PREDICTOR[target], num_resamples=num_resamples,
                                  seed=seed))
    return rows


def candidates(cells: list[dict], other_sigma_cells: list[dict] | None, target: str,
               num_resamples: int = 500, seed: int = 0) -> list[CheckRow]:
    """What else was tried, on the pooled label-shift cells of each regime: ranks within
    setting (per-setting ranking) and within function (what is left once σ's differences
    between functions are removed), the class-level benefit vs the whole excess, relative
    instead of absolute values, and the other σ."""
    default = DEFAULT_PREDICTOR[target]
    tries = [("absolute", default, "setting"), ("absolute", default, "function"),
             ("relative", "relative_excess", None)]
    if target == "gain":
        tries[2:2] = [("absolute", "excess_mse", None)]
        tries.append(("relative", "relative_benefit", None))
    rows = []
    variants = [(cells, "", tries)]
    if other_sigma_cells:
        variants.append((other_sigma_cells, " [other σ]",
                         [("absolute", default, None), ("relative", tries[-1][1], None)]))
    for variant_cells, suffix, variant_tries in variants:
        for regime, members in _regimes(variant_cells).items():
            pooled = _groups(members).get(POOLED, [])
            settings = {c["setting"] for c in pooled}
            for form, predictor, within in variant_tries:
                if pooled and not (within == "setting" and len(settings) < 2):
                    rows.append(correlate(pooled, target, regime + suffix, POOLED, form,
                                          predictor, within, num_resamples, seed))
    return rows


def calibration_table(cells: list[dict], target: str, bins: int = CALIBRATION_BINS,
                      seed: int = 0) -> list[dict]:
    """Predicted decile → measured mean with a bootstrap 95% CI (pooled label-shift cells,
    the default predictor, absolute values)."""
    pooled = [c for c in cells if c["setting"] in LABEL_SHIFT_SETTINGS
              and math.isfinite(c[DEFAULT_PREDICTOR[target]])]
    if len(pooled) < bins:
        return []
    predicted = np.array([c[DEFAULT_PREDICTOR[target]] for c in pooled])
    measured = np.array([c["measured"] for c in pooled])
    order = np.argsort(predicted, kind="stable")
    rng = np.random.default_rng(seed)
    rows = []
    for index, part in enumerate(np.array_split(order, bins)):
        values = measured[part]
        means = values[rng.integers(0, values.size, (2000, values.size))].mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        rows.append({"decile": index + 1, "num_cells": int(part.size),
                     "predicted_low": float(predicted[part].min()),
                     "predicted_high": float(predicted[part].max()),
                     "predicted_mean": float(predicted[part].mean()),
                     "measured_mean": float(values.mean()), "ci_low": float(low),
                     "ci_high": float(high)})
    return rows


def variance_shares(rows: list[dict], relative: bool = True) -> dict[str, float]:
    """Share of the measured per-run variance (label-shift settings) explained by the
    function, the setting, the sampling (the imbalance) and the rest (type-II sums of
    squares of a linear model; relative measurements as log(1 + x), clipped at −0.99)."""
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    frame = pd.DataFrame([r for r in rows if r["setting"] in LABEL_SHIFT_SETTINGS])
    if frame.empty or frame["sampling"].nunique() < 2 or frame["function"].nunique() < 2:
        return {}
    value = frame["measured_rel"] if relative else frame["measured"]
    frame["y"] = np.log1p(np.clip(value, -0.99, None)) if relative else value
    terms = ["C(function)", "C(sampling)"]
    if frame["setting"].nunique() > 1:
        terms.append("C(setting)")
    if frame["num_classes"].nunique() > 1:
        terms.append("C(num_classes)")
    table = anova_lm(smf.ols("y ~ " + " + ".join(terms), data=frame).fit(), typ=2)
    total = float(table["sum_sq"].sum())
    names = {"C(function)": "function", "C(sampling)": "sampling (imbalance)",
             "C(setting)": "setting", "C(num_classes)": "classes", "Residual": "residual"}
    return {names[k]: float(v) / total for k, v in table["sum_sq"].items()}


@dataclass(frozen=True)
class TheoryCheck:
    """Everything ``clsreg theory check`` prints for one measured target."""

    target: str
    method: str
    sigma_source: str
    rows: list[CheckRow]
    candidates: list[CheckRow]
    calibration: list[dict]
    shares: dict[str, float]
    cells: list[dict]


def run_check(store_dir: Path, target: str = "excess", method: str = "regcls",
              sigma_fraction: float | None = None, num_resamples: int = 1000,
              workers: int = 1) -> TheoryCheck:
    """The whole check of one target against a store (σ from the store unless a fraction
    is given; the candidates table also tries the other σ)."""
    if target not in TARGETS:
        raise InputError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    records = theory_records(store_dir)
    rows = measured_excess(records) if target == "excess" else measured_pairs(records, method)
    if not rows:
        raise _nothing_measured(store_dir, target, method)
    measured_sigma = uniform_rmse(records)
    fraction = DEFAULT_SIGMA_FRACTION if sigma_fraction is None else sigma_fraction
    main = attach_predictions(rows, None if sigma_fraction is not None else measured_sigma,
                              fraction, workers)
    other = attach_predictions(rows, measured_sigma if sigma_fraction is not None else None,
                               fraction, workers)
    if not {r["sigma_source"] for r in other} - {"fraction"} and sigma_fraction is not None:
        other = []
    cells = cells_of(main)
    sources = sorted({r["sigma_source"] for r in main})
    source = (f"σ = {fraction:g} × range" if sources == ["fraction"] else
              "σ = the store's uniform reg RMSE (same setting, function, regime)"
              + (f"; {fraction:g} × range where it has none" if len(sources) > 1 else ""))
    return TheoryCheck(target=target, method=method, sigma_source=source,
                       rows=check(cells, target, num_resamples),
                       candidates=candidates(cells, cells_of(other) if other else None, target,
                                             max(200, num_resamples // 2)),
                       calibration=calibration_table(cells, target),
                       shares=variance_shares(main), cells=cells)


def ci_text(low: float, high: float) -> str:
    """A correlation's CI, two decimals ("—" when undefined)."""
    return f"[{low:.2f}, {high:.2f}]" if math.isfinite(low) else "—"


def number_text(value: float, digits: int = 2) -> str:
    """A correlation-scale number, fixed decimals ("—" when undefined)."""
    return f"{value:.{digits}f}" if math.isfinite(value) else "—"


def signed_text(value: float, low: float, high: float) -> str:
    """A difference of correlations with its CI, signed ("—" when undefined)."""
    if not math.isfinite(value):
        return "—"
    return f"{value:+.2f} " + (f"[{low:+.2f}, {high:+.2f}]" if math.isfinite(low) else "—")


def _cluster_note(rows: list[CheckRow]) -> str:
    """What the CIs resample, with the range of cluster counts over ``rows``."""
    counts = sorted({r.num_clusters for r in rows})
    many = (f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}")
    return (f"95% CIs: percentile bootstrap drawing whole {CLUSTER_NAME}s with replacement "
            f"({many} per row; all cells of a {CLUSTER_NAME} in the row's regime and group — "
            "its samplings, class counts and settings — go together, since they share its "
            "reg runs and σ), not single cells.")


def format_check(result: TheoryCheck) -> str:
    """The check as tables, then the plain statement of where the theory does not apply."""
    from tabulate import tabulate

    what = ("the plain regressor's excess balanced MSE under imbalance (reg on imbalanced "
            "minus reg on uniform data, same function and seeds)" if result.target == "excess"
            else f"the gain MSE(reg) − MSE({result.method})")
    lines = [f"Measured: {what}. Predicted: {DEFAULT_PREDICTOR[result.target]}; "
             f"{result.sigma_source}.", ""]
    lines.append(tabulate(
        [(r.regime, r.group, r.num_cells, r.num_runs,
          f"{r.spearman:.2f} {ci_text(r.spearman_low, r.spearman_high)}", f"{r.p_value:.2g}",
          f"{r.kendall:.2f} {ci_text(r.kendall_low, r.kendall_high)}", number_text(r.split_half),
          number_text(r.reliability), number_text(r.ceiling), number_text(r.share_of_ceiling),
          "yes" if r.theory_applies else "NO")
         for r in result.rows],
        headers=["regime", "cells", "n", "runs", f"Spearman ρ [95% CI, {CLUSTER_NAME}s]",
                 "p (cells)", f"Kendall τ [95% CI, {CLUSTER_NAME}s]", "split-half",
                 "reliability", "ceiling", "ρ/ceiling",
                 "theory applies"]))
    lines += ["", f"{_cluster_note(result.rows)} p (cells): Spearman's test with the cells "
              "as independent, for reference (it is not: read the CI). Split-half: Spearman "
              "of the measured cells between halves of their seeds; "
              "reliability: its Spearman-Brown correction to all seeds (0 if the halves do not "
              "agree); ceiling = √reliability, the ρ a noise-free predictor can expect against "
              "these noisy cells.", ""]
    lines.append("The theory against σ alone (σ: the per-function σ the theory is given; "
                 "its Spearman with the measurement over the same cells; theory − σ: the "
                 "difference of the two ρ, its CI paired over the same resampled "
                 f"{CLUSTER_NAME}s):")
    lines.append(tabulate(
        [(r.regime, r.group, r.num_cells, r.num_clusters,
          f"{r.spearman:.2f} {ci_text(r.spearman_low, r.spearman_high)}",
          f"{number_text(r.sigma_spearman)} {ci_text(r.sigma_low, r.sigma_high)}",
          signed_text(r.over_sigma, r.over_sigma_low, r.over_sigma_high))
         for r in result.rows],
        headers=["regime", "cells", "n", CLUSTER_NAME + "s", "theory ρ [95% CI]",
                 "σ alone ρ [95% CI]", "theory − σ [95% CI]"]))
    lines.append("")
    lines.append(f"What was tried ({POOLED} pooled; CIs resample whole {CLUSTER_NAME}s):")
    lines.append(tabulate(
        [(r.regime, r.form, r.predictor, r.num_cells,
          f"{r.spearman:.2f} {ci_text(r.spearman_low, r.spearman_high)}",
          number_text(r.ceiling), number_text(r.share_of_ceiling)) for r in result.candidates],
        headers=["regime", "measured", "predictor", "cells",
                 f"Spearman ρ [95% CI, {CLUSTER_NAME}s]", "ceiling", "ρ/ceiling"]))
    if result.calibration:
        lines += ["", f"Calibration ({POOLED}, {DEFAULT_PREDICTOR[result.target]}, deciles "
                  "of the prediction; every regime together):"]
        lines.append(tabulate(
            [(r["decile"], r["num_cells"], f"{r['predicted_mean']:.4g}",
              f"{r['measured_mean']:.4g}", ci_text(r["ci_low"], r["ci_high"]))
             for r in result.calibration],
            headers=["decile", "cells", "predicted mean", "measured mean", "95% CI"]))
    if result.shares:
        lines += ["", "Share of the measured per-run variance (relative change, log scale) "
                  "explained by: " + ", ".join(f"{k} {100 * v:.0f}%"
                                               for k, v in result.shares.items())]
    lines += ["", "Theory applies to clean and noisy data (label shift: training and test "
              "differ only in the target marginal). It does NOT apply to ood: training and "
              "test x come from disjoint intervals, so p_train(x|y) != p_bal(x|y); its "
              "correlation is shown for reference only."]
    return "\n".join(lines)


def write_check(result: TheoryCheck, out_dir: Path) -> list[Path]:
    """``check_<target>.csv``, ``candidates_<target>.csv`` and ``calibration_<target>.csv``
    in ``out_dir`` (each written atomically)."""
    import pandas as pd

    out_dir = ensure_dir(out_dir)
    tables = {"check": [r.as_dict() for r in result.rows],
              "candidates": [r.as_dict() for r in result.candidates],
              "calibration": result.calibration}
    paths = []
    for name, rows in tables.items():
        path = out_dir / f"{name}_{result.target}.csv"
        with atomic_path(path) as temporary:
            pd.DataFrame(rows).to_csv(temporary, index=False, float_format="%.6g")
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- commands
def predict_preset(preset: str, out_dir: Path, sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
                   sigma_store: Path | None = None, workers: int = 1,
                   progress: bool = False) -> str:
    """``clsreg theory predict``: ``predictions.csv`` for the grid of :data:`PRESETS`
    ``preset`` (σ from ``sigma_store``'s uniform reg runs when given) and
    ``sigma_sensitivity.csv`` in ``out_dir``; returns the summary and what was written."""
    if preset not in PRESETS:
        raise InputError(f"unknown theory preset {preset!r}; choose from {', '.join(PRESETS)}")
    grid = PRESETS[preset]
    measured = measured_uniform_rmse(sigma_store) if sigma_store is not None else None
    out_dir = ensure_dir(out_dir)
    rows = predict_protocol(grid["settings"], grid["samplings"], grid["functions"],
                            grid["seeds"], grid["class_counts"], grid["binnings"],
                            sigma_fraction, measured, workers=workers, progress=progress)
    path = write_rows(rows, out_dir / "predictions.csv")
    sensitivity = sigma_sensitivity(functions=grid["functions"], workers=workers,
                                    progress=progress)
    sens_path = write_rows(sensitivity, out_dir / "sigma_sensitivity.csv")
    return (f"{format_prediction_summary(rows)}\n{len(rows)} rows -> {path}\n"
            f"{len(sensitivity)} rows -> {sens_path}")


def describe_checks(store_dir: Path, target: str = "both", method: str = "regcls",
                    sigma_fraction: float | None = None, out_dir: Path | None = None,
                    workers: int = 1) -> Iterator[str]:
    """``clsreg theory check``: :func:`format_check` of each target (``both``: every one of
    :data:`TARGETS`) under a ``== target ==`` heading, as soon as it is computed, and the
    CSVs :func:`write_check` writes to ``out_dir`` when given."""
    from clsreg.core.methods import get_method

    get_method(method)
    for name in TARGETS if target == "both" else (target,):
        result = run_check(store_dir, name, method, sigma_fraction, workers=workers)
        yield f"== {name} =="
        yield format_check(result) + "\n"
        if out_dir is not None:
            for path in write_check(result, out_dir):
                yield f"-> {path}"
