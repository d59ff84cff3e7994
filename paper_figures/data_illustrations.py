"""The study's three illustration figures of the 1D protocol: the ten functions, the four
samplings (training-target histograms of one function) and the three settings (x-ranges)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.vocabulary import SAMPLINGS, SETTINGS
from paper_figures.style import SAMPLING_COLORS, SPLIT_COLORS, plt, save_figure
from simulate.data import DATA_SEEDS, make_dataset, sine_functions


def figure_functions(out_dir: Path) -> list[Path]:
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


def figure_samplings(out_dir: Path, function_index: int = 0, seed_index: int = 0) -> list[Path]:
    """Training-target histograms (log counts) of the four samplings for one function."""
    figure, axes = plt.subplots(1, 4, figsize=(14, 3.4), sharey=True)
    for axis, sampling in zip(axes, SAMPLINGS, strict=True):
        dataset = make_dataset(function_index, "clean", sampling, DATA_SEEDS[seed_index])
        axis.hist(dataset.train.y, bins=128, color=SAMPLING_COLORS[sampling])
        axis.set(yscale="log", xlabel="training target y", title=sampling)
    axes[0].set_ylabel("count (log)")
    figure.suptitle(f"Samplings of function {function_index} (clean, data seed "
                    f"{DATA_SEEDS[seed_index]}); the test set is always the uniform one")
    figure.tight_layout()
    return save_figure(figure, out_dir / "samplings")


def figure_settings(out_dir: Path, function_index: int = 0, seed_index: int = 0) -> list[Path]:
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


def write_all(out_dir: Path) -> list[Path]:
    return figure_functions(out_dir) + figure_samplings(out_dir) + figure_settings(out_dir)
