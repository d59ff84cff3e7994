"""Executors: where the populations of a sweep are trained.

The sweep's loop hands an executor the pending populations and writes each finished one to
the store as the executor yields it, so the store stays the single writer whichever executor
trains. An executor only has to turn populations into their rows; a distributed one (one
population per remote task, rows yielded as tasks finish) plugs in here without touching the
loop. ``local`` trains in this process, one population after another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Protocol

from analysis.validate import check_choice
from simulate.grid import Run
from simulate.store import Record
from simulate.training import DatasetCache, train_population


class Executor(Protocol):
    """Trains populations of runs and yields each one's rows as it finishes."""

    name: str

    def train(self, populations: Sequence[list[Run]]) -> Iterator[list[Record]]: ...


class LocalExecutor:
    """In-process, one population at a time, with a progress bar over models."""

    name = "local"

    def __init__(self, show_progress: bool = True, workers: int | None = None):
        self.show_progress = show_progress
        self.workers = (os.cpu_count() or 1) if workers is None else workers

    def train(self, populations: Sequence[list[Run]]) -> Iterator[list[Record]]:
        cache = DatasetCache()
        cache.prefetch([run for chunk in populations for run in chunk], self.workers)
        bar = _progress_bar(sum(len(chunk) for chunk in populations), self.show_progress)
        try:
            for chunk in populations:
                yield train_population(chunk, cache, bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()


EXECUTORS = {"local": LocalExecutor}


def make_executor(name: str, show_progress: bool = True) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`)."""
    return EXECUTORS[check_choice("executor", name, EXECUTORS)](show_progress=show_progress)


def _progress_bar(total: int, show: bool):
    if not show or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="model", desc="training", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.0f}/{total} models "
                           "[{elapsed}<{remaining}, {rate_fmt}]")
