"""Sweeps: a grid's runs, trained population by population into the store.

Runs of one architecture, method and optimizer are cut into populations of a fixed size, in a
fixed order, so a population is always made of the same runs. An executor
(:mod:`simulate.executors`) trains the pending populations; this loop writes each finished one
in one transaction, so the store is the only writer. A restarted sweep skips populations whose
rows are all present and retrains the others whole, so an interrupted and resumed sweep ends
with exactly the rows, and on the same device and thread count the same numbers, of an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clsreg.analysis.errors import ConfigError
from clsreg.analysis.store import ResultsStore, require_kind
from clsreg.analysis.vocabulary import SIM_KIND
from clsreg.core.device import resolve_dtype
from clsreg.simulate.executors import Executor, LocalExecutor
from clsreg.simulate.grid import RECIPE_DEFAULTS, Grid, Run, expand_all, populations
from clsreg.simulate.population import flush_subnormals

# Models per population: on the CPU enough to amortize per-step overhead while a population
# stays a small unit of work to lose on interruption; on a GPU as many as the grid offers.
CPU_POPULATION = 64
GPU_POPULATION = 1024


# Recipe entries a folder's runs must share: a report pairs and pools runs across them, so a
# store that mixed two values would mix two experiments.
SHARED_RECIPE = ("epochs", "batch_size", "num_points", "dtype", "weight_decay", "function_seed",
                 "protocol", "decay_scaling")


def _values(values) -> str:
    return "/".join(map(str, sorted(values)))


def check_same_recipe(stored: list[dict], runs: list[Run], folder: Path) -> None:
    """Refuse a sweep that does not ask for every recipe already stored in ``folder``: the
    shared entries, the learning rate per (setting, optimizer) and λ per (setting, method).
    Extending a grid (more settings, functions, seeds, classes, widths, methods) is fine, and
    so is resuming a suite, whose grids vary some of these on purpose."""
    if not stored:
        return
    differences = []
    for name in SHARED_RECIPE:
        before = {config.get(name, RECIPE_DEFAULTS.get(name)) for config in stored}
        asked = {run.config[name] for run in runs}
        if before - asked:
            differences.append(f"{name} {_values(before)} stored, {_values(asked)} asked")
    for label, of_config, of_run in (
            ("lr", lambda c: ((c["setting"], c["optimizer"]), c["lr"]),
             lambda run: ((run.recipe.setting, run.recipe.train.optimizer), run.recipe.train.lr)),
            ("lam", lambda c: ((c["setting"], c["model"]), c["lam"]),
             lambda run: ((run.recipe.setting, run.method), run.lam))):
        before, asked = {}, {}
        for key, value in map(of_config, stored):
            before.setdefault(key, set()).add(value)
        for key, value in map(of_run, runs):
            asked.setdefault(key, set()).add(value)
        for key in before.keys() & asked.keys():
            if before[key] - asked[key]:
                differences.append(f"{label} for {key[0]}/{key[1]} {_values(before[key])} "
                                   f"stored, {_values(asked[key])} asked")
                break
    if differences:
        raise ConfigError(f"{folder} already holds 1D runs with another recipe "
                          f"({'; '.join(differences)}); use another --out")


@dataclass(frozen=True)
class SweepSummary:
    total: int
    trained: int
    skipped: int
    diverged: int
    device: str


def run_sweep(grid: Grid | list[Grid], out_dir: Path, device: str = "auto",
              dtype: str = "float32", population_size: int | None = None,
              show_progress: bool = True, executor: Executor | None = None) -> SweepSummary:
    """Train every run of ``grid`` (or of a suite's grids) not yet in ``out_dir``'s store,
    population by population.

    Device (as the executor reads it) and dtype are checked before anything is written.
    Sets the process to flush subnormal floats (:func:`simulate.population.flush_subnormals`).
    """
    flush_subnormals()
    executor = executor or LocalExecutor(show_progress=show_progress)
    resolve_dtype(dtype)
    torch_device = executor.device(device)
    grids = [grid] if isinstance(grid, Grid) else list(grid)
    runs = expand_all(grids, dtype=dtype, device=str(torch_device))
    if not runs:
        raise ConfigError("the grid has no runs")
    size = population_size or (GPU_POPULATION if torch_device.type == "cuda" else CPU_POPULATION)
    if size < 1:
        raise ConfigError(f"population size must be >= 1, got {size}")
    chunks = populations(runs, size)
    with ResultsStore(out_dir) as store:
        require_kind(store, SIM_KIND, "1D simulation results")
        check_same_recipe([r["config"] for r in store.records(SIM_KIND)], runs, out_dir)
        done = store.done_keys()
        pending = [chunk for chunk in chunks if any(run.key not in done for run in chunk)]
        diverged = 0
        for records in executor.train(pending):
            store.write(records)
            diverged += sum(r.metrics["diverged"] for r in records)
    todo = sum(len(chunk) for chunk in pending)
    return SweepSummary(total=len(runs), trained=todo, skipped=len(runs) - todo,
                        diverged=diverged, device=torch_device.type)
