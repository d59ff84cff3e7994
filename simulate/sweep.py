"""Sweeps: a grid spec expands into runs, trained population by population into the store.

A grid (a preset, optionally overridden by a TOML file) names settings, samplings, functions,
seed indices, class counts, binnings, hidden widths and optimizers. It expands into one plain
regression run per (setting, sampling, function, seed, hidden, optimizer) — plain regression does
not depend on the class count — and one reg+cls run per class count and binning on top.

Runs of one architecture and optimizer are cut into populations of a fixed size, in a fixed
order, so a population is always made of the same runs. Each finished population is written in
one transaction; a restarted sweep skips populations whose rows are all present and retrains the
others whole, so an interrupted and resumed sweep ends with exactly the rows, and on the same
device the same numbers, of an uninterrupted one.

Rows follow the shared 1D contract (kind ``sim1d``): ``config`` holds setting, sampling,
function, function_seed, data_seed, model_seed, model, num_classes, binning, lam, lr, optimizer,
weight_decay, hidden, epochs, batch_size, num_points, dtype, device; ``metrics`` holds
train_mse, val_mse, test_mse, class_top1 (test split; null for reg) and diverged. A plain reg
row has ``num_classes`` 0, ``lam`` 0.0 and ``binning`` "uniform" (binning does not apply to it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from analysis.binning import BINNINGS, assign_labels, keep_probabilities, make_edges
from analysis.errors import ConfigError
from simulate.data import (
    DATA_SEEDS,
    MODEL_SEEDS,
    SAMPLINGS,
    SETTINGS,
    Dataset,
    make_dataset,
)
from simulate.population import (
    OPTIMIZERS,
    Architecture,
    Member,
    Population,
    TrainConfig,
    flush_subnormals,
    mean_squared_error,
    resolve_device,
    resolve_dtype,
)
from simulate.store import Record, ResultsStore

KIND = "sim1d"
PAPER_LAM = {"clean": 1e2, "noisy": 1e3, "ood": 1e4}
PAPER_LR = {"clean": 1e-3, "noisy": 1e-2, "ood": 1e-4}
# Models per population: on the CPU enough to amortize per-step overhead while a population
# stays a small unit of work to lose on interruption; on a GPU as many as the grid offers.
CPU_POPULATION = 64
GPU_POPULATION = 1024


@dataclass(frozen=True)
class Grid:
    """What a sweep trains. Seeds are indices 0-4: data seed i pairs with model seed i."""

    settings: tuple[str, ...] = SETTINGS
    samplings: tuple[str, ...] = SAMPLINGS
    functions: tuple[int, ...] = tuple(range(10))
    seeds: tuple[int, ...] = tuple(range(5))
    num_classes: tuple[int, ...] = (4, 16, 64, 256, 1024)
    binnings: tuple[str, ...] = ("uniform",)
    hidden: tuple[tuple[int, ...], ...] = ((6, 15),)
    optimizers: tuple[str, ...] = ("adam",)
    epochs: int = 80
    batch_size: int = 256
    num_points: int = 60_000
    function_seed: int = 0
    weight_decay: float = 1e-3
    lam: dict[str, float] = field(default_factory=lambda: dict(PAPER_LAM))
    lr: dict[str, float] = field(default_factory=lambda: dict(PAPER_LR))
    sgd_lr: dict[str, float] = field(default_factory=dict)

    def learning_rate(self, setting: str, optimizer: str) -> float:
        if optimizer == "sgd" and setting in self.sgd_lr:
            return self.sgd_lr[setting]
        return self.lr[setting]


PRESETS: dict[str, dict] = {
    # Seconds: wiring check on one function and seed, small N, a few epochs.
    "smoke": {"settings": ["clean"], "samplings": ["uniform", "severe"], "functions": [0],
              "seeds": [0], "num_classes": [4, 64], "epochs": 3, "num_points": 3000},
    # About a minute on 2 CPU cores: the clean setting at full N and epochs, all four
    # samplings, two class counts, 10 functions × 2 seeds = 20 paired runs per cell.
    "quick": {"settings": ["clean"], "samplings": ["uniform", "mild", "moderate", "severe"],
              "functions": list(range(10)), "seeds": [0, 1], "num_classes": [16, 64]},
    # PROTOCOL §2: 3 settings × 4 samplings × 10 functions × 5 seeds × 5 class counts.
    "paper": {},
    # After the paper: hidden widths (both layers) 5 … 65 with Adam and SGD, clean data.
    # Plain SGD feels λ directly (reg+cls steps λ times larger on the MSE term), so its
    # learning rate is kept low; it is not tuned.
    "widths": {"settings": ["clean"], "samplings": ["uniform", "severe"],
               "functions": list(range(10)), "seeds": [0, 1], "num_classes": [64],
               "hidden": [[w, w] for w in (5, 9, 17, 33, 65)], "optimizers": ["adam", "sgd"],
               "sgd_lr": {"clean": 1e-3, "noisy": 1e-3, "ood": 1e-4}},
}
PRESET_NAMES = tuple(PRESETS)


# ---------------------------------------------------------------------- parsing and checks
def _as_list(name: str, value) -> list:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list, got {value!r}")
    if not value:
        raise ConfigError(f"{name} is empty: the grid has no runs")
    return list(value)


def _int(name: str, value, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _float(name: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


def _choices(name: str, value, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = _as_list(name, value)
    for item in items:
        if item not in allowed:
            raise ConfigError(f"unknown {name} entry {item!r}; choose from {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


def _per_setting(name: str, value, settings: tuple[str, ...], positive: bool,
                 required: bool = True) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table of setting = value, got {value!r}")
    for key in value:
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r} in {name}")
    out = {key: _float(f"{name}.{key}", v, positive) for key, v in value.items()}
    missing = [s for s in settings if s not in out]
    if required and missing:
        raise ConfigError(f"{name} has no value for setting(s) {', '.join(missing)}")
    return out


def grid_from_mapping(values: dict) -> Grid:
    """A checked :class:`Grid` from plain values; anything wrong is a :class:`ConfigError`."""
    known = {f.name for f in fields(Grid)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown grid key(s): {', '.join(unknown)}; "
                          f"known keys are {', '.join(sorted(known))}")
    merged = {f.name: getattr(Grid(), f.name) for f in fields(Grid)}
    merged.update(values)
    settings = _choices("settings", merged["settings"], SETTINGS)
    seeds = tuple(_int("seeds entry", s, 0) for s in _as_list("seeds", merged["seeds"]))
    if any(s >= len(DATA_SEEDS) for s in seeds):
        raise ConfigError(f"seed indices must be in 0..{len(DATA_SEEDS) - 1}, got {list(seeds)}")
    num_classes = tuple(_int("num_classes entry", c) for c in
                        _as_list("num_classes", merged["num_classes"]))
    if any(c < 2 for c in num_classes):
        raise ConfigError(f"every class count must be >= 2, got {list(num_classes)}")
    hidden = []
    for widths in _as_list("hidden", merged["hidden"]):
        hidden.append(tuple(_int("hidden width", w, 1) for w in _as_list("hidden entry", widths)))
    grid = Grid(
        settings=settings,
        samplings=_choices("samplings", merged["samplings"], SAMPLINGS),
        functions=tuple(dict.fromkeys(_int("functions entry", f, 0)
                                      for f in _as_list("functions", merged["functions"]))),
        seeds=tuple(dict.fromkeys(seeds)),
        num_classes=tuple(dict.fromkeys(num_classes)),
        binnings=_choices("binnings", merged["binnings"], BINNINGS),
        hidden=tuple(dict.fromkeys(hidden)),
        optimizers=_choices("optimizers", merged["optimizers"], OPTIMIZERS),
        epochs=_int("epochs", merged["epochs"], 1),
        batch_size=_int("batch_size", merged["batch_size"], 1),
        num_points=_int("num_points", merged["num_points"], 9),
        function_seed=_int("function_seed", merged["function_seed"], 0),
        weight_decay=_float("weight_decay", merged["weight_decay"]),
        lam=_per_setting("lam", merged["lam"], settings, positive=False),
        lr=_per_setting("lr", merged["lr"], settings, positive=True),
        sgd_lr=_per_setting("sgd_lr", merged["sgd_lr"], settings, positive=True,
                            required=False),
    )
    if grid.num_points // 3 < grid.batch_size:
        raise ConfigError(f"num_points {grid.num_points} gives training sets smaller than one "
                          f"batch of {grid.batch_size}")
    return grid


def load_grid(preset: str | None, config_file: Path | None = None) -> Grid:
    """The preset's grid with the TOML file's keys on top (the paper grid if no preset)."""
    if preset is None and config_file is None:
        raise ConfigError("give a --preset, a --config file, or both")
    name = preset or "paper"
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    values = dict(PRESETS[name])
    if config_file is not None:
        values.update(read_toml(config_file))
    return grid_from_mapping(values)


def read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path} is not valid TOML: {error}") from None


# ---------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    """One model to train: its row config (the shared contract) and its key."""

    config: dict

    @property
    def key(self) -> str:
        c = self.config
        return (f"{KIND}/{c['setting']}/{c['sampling']}/f{c['function']}/fs{c['function_seed']}"
                f"/d{c['data_seed']}/m{c['model_seed']}/{c['model']}/C{c['num_classes']}"
                f"/{c['binning']}/lam{c['lam']:g}/lr{c['lr']:g}/{c['optimizer']}"
                f"/wd{c['weight_decay']:g}/h{'-'.join(map(str, c['hidden']))}/e{c['epochs']}"
                f"/b{c['batch_size']}/n{c['num_points']}/{c['dtype']}")

    def data_key(self) -> tuple:
        c = self.config
        return (c["setting"], c["sampling"], c["function"], c["function_seed"], c["data_seed"],
                c["num_points"])

    def population_key(self) -> tuple:
        c = self.config
        return (tuple(c["hidden"]), c["num_classes"], c["optimizer"], c["epochs"],
                c["batch_size"], c["num_points"])


def expand(grid: Grid, dtype: str = "float32", device: str = "cpu") -> list[Run]:
    """Every run of the grid, in a fixed order (reg first in each group)."""
    runs = []
    for hidden in grid.hidden:
        for optimizer in grid.optimizers:
            for setting in grid.settings:
                for sampling in grid.samplings:
                    for function in grid.functions:
                        for seed in grid.seeds:
                            base = {
                                "setting": setting, "sampling": sampling,
                                "function": function, "function_seed": grid.function_seed,
                                "data_seed": DATA_SEEDS[seed], "model_seed": MODEL_SEEDS[seed],
                                "lr": grid.learning_rate(setting, optimizer),
                                "optimizer": optimizer, "weight_decay": grid.weight_decay,
                                "hidden": list(hidden), "epochs": grid.epochs,
                                "batch_size": grid.batch_size, "num_points": grid.num_points,
                                "dtype": dtype, "device": device,
                            }
                            runs.append(Run({**base, "model": "reg", "num_classes": 0,
                                             "binning": "uniform", "lam": 0.0}))
                            for num_classes in grid.num_classes:
                                for binning in grid.binnings:
                                    runs.append(Run({**base, "model": "regcls",
                                                     "num_classes": num_classes,
                                                     "binning": binning,
                                                     "lam": grid.lam[setting]}))
    return runs


def populations(runs: list[Run], population_size: int) -> list[list[Run]]:
    """Runs grouped by architecture and optimizer, cut into fixed chunks in grid order."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.population_key(), []).append(run)
    return [group[i:i + population_size] for group in groups.values()
            for i in range(0, len(group), population_size)]


def _build_dataset(key: tuple) -> Dataset:
    setting, sampling, function, function_seed, data_seed, num_points = key
    return make_dataset(function, setting, sampling, data_seed, num_points, function_seed)


class DatasetCache:
    """Datasets built once per sweep and shared by the reg and reg+cls runs that use them."""

    def __init__(self):
        self._cache: dict[tuple, Dataset] = {}

    def get(self, run: Run) -> Dataset:
        key = run.data_key()
        if key not in self._cache:
            self._cache[key] = _build_dataset(key)
        return self._cache[key]

    def prefetch(self, runs: list[Run], workers: int) -> None:
        """Build the datasets of ``runs`` in ``workers`` processes (the same arrays: every
        dataset is a pure function of its key)."""
        keys = [k for k in dict.fromkeys(run.data_key() for run in runs) if k not in self._cache]
        if workers < 2 or len(keys) < 2 * workers:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # The workers run NumPy only, so forking is safe even after CUDA was touched; spawn
        # (where fork is missing) needs the caller's main module to be import-safe.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for key, dataset in zip(keys, pool.map(_build_dataset, keys, chunksize=4),
                                    strict=True):
                self._cache[key] = dataset


def member_for(run: Run, dataset: Dataset) -> tuple[Member, np.ndarray | None]:
    """The population member of ``run`` and the class labels of its test targets."""
    c = run.config
    labels = keep = test_labels = None
    if c["num_classes"]:
        edges = make_edges(dataset.train.y, c["num_classes"], c["binning"])
        labels = assign_labels(dataset.train.y, edges)
        test_labels = assign_labels(dataset.test.y, edges)
        if c["binning"] == "equal":
            keep = keep_probabilities(labels, edges.size - 1)
    order_seed = (c["model_seed"], c["data_seed"], c["function_seed"], c["function"],
                  SETTINGS.index(c["setting"]), SAMPLINGS.index(c["sampling"]))
    member = Member(x=dataset.train.x, y=dataset.train.y,
                    lam=c["lam"] if c["num_classes"] else 1.0, lr=c["lr"],
                    weight_decay=c["weight_decay"], init_seed=c["model_seed"],
                    order_seed=order_seed, labels=labels, keep=keep)
    return member, test_labels


def train_population(runs: list[Run], cache: DatasetCache,
                     progress: Callable[[float], None] | None = None) -> list[Record]:
    """Train one population of runs and return their rows."""
    first = runs[0].config
    architecture = Architecture(tuple(first["hidden"]), first["num_classes"])
    config = TrainConfig(optimizer=first["optimizer"], epochs=first["epochs"],
                         batch_size=first["batch_size"], dtype=first["dtype"],
                         device=first["device"])
    datasets = [cache.get(run) for run in runs]
    built = [member_for(run, d) for run, d in zip(runs, datasets, strict=True)]
    population = Population(architecture, config, [b[0] for b in built])
    result = population.train(progress)
    val_pred, _ = population.predict([d.val.x for d in datasets])
    test_pred, test_top = population.predict([d.test.x for d in datasets], with_classes=True)
    records = []
    for i, (run, dataset) in enumerate(zip(runs, datasets, strict=True)):
        metrics = {
            "train_mse": float(result.train_mse[i]),
            "val_mse": mean_squared_error(val_pred[i], dataset.val.y),
            "test_mse": mean_squared_error(test_pred[i], dataset.test.y),
            "class_top1": (float(np.mean(test_top[i] == built[i][1]))
                           if test_top is not None else None),
            "diverged": bool(result.diverged[i]),
            "train_size": int(dataset.train.x.size),
        }
        if metrics["diverged"]:
            for name in ("train_mse", "val_mse", "test_mse"):
                metrics[name] = metrics[name] if math.isfinite(metrics[name]) else math.nan
        records.append(Record(key=run.key, kind=KIND, config=run.config,
                              seed=run.config["model_seed"], metrics=metrics))
    return records


@dataclass(frozen=True)
class SweepSummary:
    total: int
    trained: int
    skipped: int
    diverged: int
    device: str


def run_sweep(grid: Grid, out_dir: Path, device: str = "auto", dtype: str = "float32",
              population_size: int | None = None, show_progress: bool = True) -> SweepSummary:
    """Train every run of ``grid`` not yet in ``out_dir``'s store, population by population.

    Device and dtype are checked before anything is written. Sets the process to flush
    subnormal floats (:func:`simulate.population.flush_subnormals`).
    """
    flush_subnormals()
    torch_device = resolve_device(device)
    resolve_dtype(dtype)
    runs = expand(grid, dtype=dtype, device=torch_device.type)
    if not runs:
        raise ConfigError("the grid has no runs")
    size = population_size or (GPU_POPULATION if torch_device.type == "cuda" else CPU_POPULATION)
    if size < 1:
        raise ConfigError(f"population size must be >= 1, got {size}")
    chunks = populations(runs, size)
    with ResultsStore(out_dir) as store:
        done = store.done_keys()
        pending = [chunk for chunk in chunks if any(run.key not in done for run in chunk)]
        todo = sum(len(chunk) for chunk in pending)
        cache = DatasetCache()
        cache.prefetch([run for chunk in pending for run in chunk], os.cpu_count() or 1)
        diverged = 0
        bar = _progress_bar(todo, show_progress)
        try:
            for chunk in pending:
                records = train_population(chunk, cache, bar.update if bar else None)
                store.write(records)
                diverged += sum(r.metrics["diverged"] for r in records)
        finally:
            if bar is not None:
                bar.close()
    return SweepSummary(total=len(runs), trained=todo, skipped=len(runs) - todo,
                        diverged=diverged, device=torch_device.type)


def _progress_bar(total: int, show: bool):
    if not show or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="model", desc="training", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.0f}/{total} models "
                           "[{elapsed}<{remaining}, {rate_fmt}]")
