"""The per-dataset picture written by ``clsreg simulate data``: f with its splits, and the
training-target histogram with log counts (where imbalance is visible at a glance); and
:func:`write_dataset_folder`, that command's one call (splits as CSV, the picture, a line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clsreg.analysis.binning import imbalance_ratio
from clsreg.analysis.files import ensure_dir
from clsreg.paper_figures.style import SPLIT_COLORS, plt, save_figure
from clsreg.simulate.data import NUM_POINTS, Dataset, data_seed, make_dataset, save_dataset


def plot_dataset(dataset: Dataset, path_without_suffix: Path, formats=("png",)) -> list[Path]:
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6),
                                         gridspec_kw={"width_ratios": [3, 1]})
    grid = np.linspace(-1, 1, 4001)
    left.plot(grid, dataset.function(grid), color="black", lw=0.8, label="f(x)", zorder=3)
    rng = np.random.default_rng(0)
    for name in ("test", "val", "train"):  # training points on top
        split = getattr(dataset, name)
        shown = rng.choice(split.x.size, size=min(2000, split.x.size), replace=False)
        left.scatter(split.x[shown], split.y[shown], s=3, alpha=0.5, color=SPLIT_COLORS[name],
                     label=f"{name} (n={split.x.size})")
    f = dataset.function
    left.set(xlabel="x", ylabel="y", xlim=(-1, 1),
             title=f"{f.a:.4f} sin({f.c}x) + {f.b:.4f} sin({f.d}x) — {dataset.setting}, "
                   f"{dataset.sampling}, seed {dataset.data_seed}")
    left.legend(fontsize=7, loc="upper right", markerscale=3)
    right.hist(dataset.train.y, bins=128, orientation="horizontal", color=SPLIT_COLORS["train"])
    right.set(xscale="log", xlabel="count (log)", ylabel="training target y",
              title="training targets")
    right.set_ylim(left.get_ylim())
    figure.tight_layout()
    return save_figure(figure, path_without_suffix, formats)


def write_dataset_folder(out_dir: Path, function_index: int = 0, setting: str = "clean",
                         sampling: str = "uniform", seed_index: int = 0,
                         num_points: int = NUM_POINTS, protocol: str = "clsreg") -> str:
    """Draw one 1D dataset, write its splits (``train.csv``, ``val.csv``, ``test.csv``) and
    ``data.png`` into ``out_dir`` (made only once the dataset is drawn) and return the line
    with its split sizes and imbalance ratio."""
    dataset = make_dataset(function_index, setting, sampling, data_seed(seed_index), num_points,
                           protocol=protocol)
    ensure_dir(out_dir)
    save_dataset(dataset, out_dir)
    plot_dataset(dataset, Path(out_dir) / "data")
    return (f"{setting}/{sampling} function {function_index} seed {dataset.data_seed}: "
            f"train {dataset.train.x.size}, val {dataset.val.x.size}, "
            f"test {dataset.test.x.size}; imbalance ratio (64 bins) "
            f"{imbalance_ratio(dataset.train.y):.1f} -> {out_dir}")
