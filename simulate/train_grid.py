"""``clsreg simulate run`` as one call: the grid a preset and a config name, trained by the
chosen executor into a store, and the line that says what was trained.

Kept apart from :mod:`simulate.sweep` (the loop) and :mod:`simulate.executors` (the
executors), which this module only wires together.
"""

from __future__ import annotations

import time
from pathlib import Path

from clsreg.simulate import sweep
from clsreg.simulate.executors import make_executor
from clsreg.simulate.grid import load_grids


def describe_sweep(summary: sweep.SweepSummary, seconds: float, out_dir: Path) -> str:
    """One line: models trained of the grid's, on which device, what was stored or diverged,
    the wall time and the store."""
    return (f"trained {summary.trained} of {summary.total} models on {summary.device} "
            f"({summary.skipped} already stored, {summary.diverged} diverged) in "
            f"{seconds:.0f} s -> {Path(out_dir) / 'results.sqlite'}")


def train_grid(out_dir: Path, preset: str | None = None, config_file: Path | None = None,
               methods: str | None = None, protocol: str | None = None, device: str = "auto",
               dtype: str = "float32", population_size: int | None = None,
               executor: str = "local", address: str | None = None) -> str:
    """Train every run of the grid (or suite) that ``preset`` and ``config_file`` describe,
    with ``methods`` and ``protocol`` overriding theirs, into ``out_dir``; skips what is
    stored. Returns :func:`describe_sweep`'s line."""
    grid = load_grids(preset, config_file, methods, protocol)
    start = time.perf_counter()
    summary = sweep.run_sweep(grid, out_dir, device=device, dtype=dtype,
                              population_size=population_size,
                              executor=make_executor(executor, address=address))
    return describe_sweep(summary, time.perf_counter() - start, out_dir)
