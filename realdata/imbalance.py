"""The controlled imbalance series: one real table, training sets of growing imbalance.

After the balanced validation and test splits are cut out, the remaining training rows
are a pool from which each step of the series draws a training set of the same size with
the 1D recipes of :func:`analysis.sampling.select_by_target` on the target: *uniform*,
then a *mild*, *moderate* and *severe* window around the pool's median. Features, test
split, model, loss and seeds stay fixed, so the only thing that changes along the series
is how imbalanced the training targets are, and the claim "the gain of reg+cls grows with
the imbalance" is tested on real features.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from clsreg.analysis.errors import InputError
from clsreg.analysis.vocabulary import DEFAULT_METHODS

from . import sources
from .pipeline import RealConfig
from .tables import Prepared, load_table, prepare, table_part

SERIES_SAMPLINGS = ("uniform", "mild", "moderate", "severe")
DEFAULT_TRAIN_SIZE = 3000


def variant(config: RealConfig, sampling: str, train_size: int | None) -> RealConfig:
    """``config`` with another training sampling (one step of the series)."""
    return replace(config, options={**config.options, "sampling": sampling,
                                    "train_size": train_size})


def prepare_series(
    base: RealConfig, train_size: int = DEFAULT_TRAIN_SIZE,
    samplings: tuple[str, ...] = SERIES_SAMPLINGS,
) -> list[Prepared]:
    """Validate and build every step of the series (the table is loaded once)."""
    if not samplings:
        raise InputError("the series needs at least one sampling")
    if train_size < 1:
        raise InputError(f"train size must be >= 1, got {train_size}")
    table = load_table(base)
    return [prepare(variant(base, sampling, train_size), table) for sampling in samplings]


def run_series(
    steps: list[Prepared], seeds: int, out_dir: str | Path, device: str = "auto",
    progress: bool = True, methods: tuple[str, ...] = DEFAULT_METHODS,
) -> dict[str, dict[str, int]]:
    """Train every step (resuming stored runs); trained/skipped counts per sampling."""
    return {step.config.options["sampling"]: sources.run(
                step.config, out_dir, seeds, methods, device, progress=progress,
                parts=[table_part(step)])
            for step in steps}


SERIES_DATASET = "diamonds"
SERIES_SEEDS = 10
SERIES_EPOCHS = 60


def series(out_dir: str | Path, dataset: str | None = None, train_size: int | None = None,
           methods: str | tuple[str, ...] | None = None, device: str = "auto",
           progress: bool = True, seeds: int | None = None,
           **given) -> dict[str, dict[str, int]]:
    """``clsreg realdata series``: the series of ``dataset`` (default diamonds, 10 seeds,
    60 epochs, 3000 training rows; otherwise the table's defaults) trained into ``out_dir``;
    ``methods`` may be a comma-separated string (``--methods``)."""
    methods = sources.chosen_methods(methods, device)
    epochs = given.pop("epochs", None) or SERIES_EPOCHS
    config = sources.make_config(dataset or SERIES_DATASET, epochs=epochs, **given)
    steps = prepare_series(config, train_size or DEFAULT_TRAIN_SIZE)
    return run_series(steps, seeds or SERIES_SEEDS, out_dir, device, progress, methods)
