"""The controlled imbalance series: one real table, training sets of growing imbalance.

After the balanced validation and test splits are cut out, the remaining training rows
are a pool from which each step of the series draws a training set of the same size with
the 1D recipes of :func:`simulate.data.select_by_target` on the target: *uniform*, then a
*mild*, *moderate* and *severe* window around the pool's median. Features, test split,
model, loss and seeds stay fixed, so the only thing that changes along the series is how
imbalanced the training targets are, and the claim "the gain of reg+cls grows with the
imbalance" is tested on real features.
"""

from __future__ import annotations

from pathlib import Path

from clsreg.analysis.errors import InputError
from clsreg.analysis.vocabulary import DEFAULT_METHODS

from .experiment import ExperimentConfig, Prepared, prepare, run, variant

SERIES_SAMPLINGS = ("uniform", "mild", "moderate", "severe")
DEFAULT_TRAIN_SIZE = 3000


def prepare_series(
    base: ExperimentConfig, train_size: int = DEFAULT_TRAIN_SIZE,
    samplings: tuple[str, ...] = SERIES_SAMPLINGS,
) -> list[Prepared]:
    """Validate and build every step of the series (the table is loaded once)."""
    if not samplings:
        raise InputError("the series needs at least one sampling")
    if train_size < 1:
        raise InputError(f"train size must be >= 1, got {train_size}")
    table = base.source.load()
    return [prepare(variant(base, sampling, train_size), table) for sampling in samplings]


def run_series(
    steps: list[Prepared], seeds: int, out_dir: str | Path, device: str = "auto",
    progress: bool = True, methods: tuple[str, ...] = DEFAULT_METHODS,
) -> dict[str, dict[str, int]]:
    """Train every step (resuming stored runs); trained/skipped counts per sampling."""
    return {step.config.sampling: run(step, seeds, out_dir, device, progress, methods=methods)
            for step in steps}
