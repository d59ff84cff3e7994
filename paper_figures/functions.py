"""The ten functions of the 1D study, one panel each (needs no results)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import plt, save_figure
from clsreg.simulate.data import sine_functions


def plot(out_dir: Path) -> list[Path]:
    """The ten functions of the study, one panel each."""
    figure, axes = plt.subplots(2, 5, figsize=(14, 4.6), sharex=True, sharey=True)
    grid = np.linspace(-1, 1, 4001)
    for index, (axis, f) in enumerate(zip(axes.ravel(), sine_functions(10), strict=True)):
        axis.plot(grid, f(grid), lw=0.9, color="black")
        axis.set_title(f"f{index}: A={f.a:.3f}, C={f.c}, D={f.d}", fontsize=8)
    for axis in axes[-1]:
        axis.set_xlabel("x")
    for axis in axes[:, 0]:
        axis.set_ylabel("f(x)")
    figure.suptitle("f(x) = A sin(Cx) + B sin(Dx), B = 1.5 - A, D = C // 3")
    figure.tight_layout()
    return save_figure(figure, out_dir / "functions")


def draw(results: Results, out: Path) -> list[Path]:
    """``functions.png/.pdf`` (the protocol alone: ``results`` is not read)."""
    return plot(out)


if __name__ == "__main__":
    run_alone(draw)
