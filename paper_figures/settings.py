"""Where train, val and test x come from in each setting (needs no results)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clsreg.analysis.vocabulary import SETTINGS
from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import SPLIT_COLORS, plt, save_figure
from clsreg.simulate.data import DATA_SEEDS, make_dataset


def plot(out_dir: Path, function_index: int = 0, seed_index: int = 0) -> list[Path]:
    """Where train, val and test x come from in each setting (uniform sampling)."""
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.4), sharey=True)
    grid = np.linspace(-1, 1, 4001)
    rng = np.random.default_rng(0)
    for axis, setting in zip(axes, SETTINGS, strict=True):
        dataset = make_dataset(function_index, setting, "uniform", DATA_SEEDS[seed_index])
        axis.plot(grid, dataset.function(grid), color="black", lw=0.6)
        for name in ("train", "val", "test"):
            split = getattr(dataset, name)
            shown = rng.choice(split.x.size, 1500, replace=False)
            axis.scatter(split.x[shown], split.y[shown], s=2, alpha=0.6,
                         color=SPLIT_COLORS[name], label=name)
            if setting == "ood":
                for low, high in dataset.x_intervals[name]:
                    axis.axvspan(low, high, color=SPLIT_COLORS[name], alpha=0.12)
        axis.set(title=setting, xlabel="x", xlim=(-1, 1))
    axes[0].set_ylabel("y")
    axes[0].legend(markerscale=4, fontsize=8)
    figure.tight_layout()
    return save_figure(figure, out_dir / "settings")


def draw(results: Results, out: Path) -> list[Path]:
    """``settings.png/.pdf`` (the protocol alone: ``results`` is not read)."""
    return plot(out)


if __name__ == "__main__":
    run_alone(draw)
