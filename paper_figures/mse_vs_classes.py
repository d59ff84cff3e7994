"""The 1D study's figure: balanced test MSE vs number of classes, baseline vs method.

One panel per (setting, sampling). Each line is the mean test MSE over the paired runs of a
cell, with a 95% t-interval band for that mean. The reg line does not depend on the class
count (reg is trained once); it is drawn at every class count over the runs paired with that
cell, so a gap between the lines is a paired difference, not one between different run sets.
When the store holds several binnings, widths or optimizers, one figure is written per
combination.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clsreg.analysis.files import ensure_dir
from clsreg.analysis.vocabulary import BASELINE_METHOD
from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import SAMPLING_COLORS, plt, save_figure
from clsreg.simulate.report import Cell, load_records, paired_cells
from scipy import stats

REG_COLOR = "#555555"


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-interval of the mean over the finite values (NaN band for n < 2)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if values.size < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, mean - half, mean + half


def plot_cells(cells: list[Cell], path_without_suffix: Path, title: str = "",
               formats=("png", "pdf")) -> list[Path]:
    settings = list(dict.fromkeys(c.setting for c in cells))
    samplings = list(dict.fromkeys(c.sampling for c in cells))
    figure, axes = plt.subplots(len(settings), len(samplings), squeeze=False,
                                figsize=(3.2 * len(samplings), 2.6 * len(settings)))
    for r, setting in enumerate(settings):
        for k, sampling in enumerate(samplings):
            ax = axes[r][k]
            panel = sorted((c for c in cells if c.setting == setting and c.sampling == sampling),
                           key=lambda c: c.num_classes)
            if not panel:
                ax.set_visible(False)
                continue
            classes = np.array([c.num_classes for c in panel])
            for label, pick, color in ((BASELINE_METHOD, lambda c: c.baseline, REG_COLOR),
                                       (panel[0].method, lambda c: c.candidate,
                                        SAMPLING_COLORS.get(sampling, "#4c72b0"))):
                stats_ = np.array([mean_ci(pick(c)) for c in panel])
                ax.plot(classes, stats_[:, 0], marker="o", ms=3, color=color, label=label,
                        ls="--" if label == BASELINE_METHOD else "-")
                ax.fill_between(classes, stats_[:, 1], stats_[:, 2], color=color, alpha=0.2,
                                lw=0)
            ax.set_xscale("log", base=2)
            ax.set_xticks(classes)
            ax.set_xticklabels([str(c) for c in classes], fontsize=7)
            ax.set_title(f"{setting} / {sampling}  (n={panel[0].baseline.size})", fontsize=9)
            if r == len(settings) - 1:
                ax.set_xlabel("number of classes")
            if k == 0:
                ax.set_ylabel("test MSE (balanced)")
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path_without_suffix, formats)


def write_figures(store_dir: Path, out_dir: Path, formats=("png", "pdf"),
                  stem: str = "mse_vs_classes") -> list[Path]:
    """``mse_vs_classes[...]`` figures from the results store in ``store_dir``.

    The store is read first, so a bad store fails before ``out_dir`` is made.
    """
    cells = paired_cells(load_records(store_dir))
    out_dir = ensure_dir(out_dir)
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.extra, []).append(cell)
    written = []
    for extra, group in groups.items():
        suffix = "".join(f"_{name}-{'-'.join(map(str, v)) if isinstance(v, tuple) else v}"
                         for name, v in extra)
        title = ", ".join(f"{name} {v}" for name, v in extra)
        written += plot_cells(group, Path(out_dir) / f"{stem}{suffix}", title, formats)
    return written


def draw(results: Results, out: Path) -> list[Path]:
    """``mse_vs_classes[...]``: the protocol's grid; ``..._wd0`` for the weight-decay-0
    control when the folder has it."""
    written = write_figures(results.need_sim(), out)
    if results.control is not None:
        written += write_figures(results.control, out, stem="mse_vs_classes_wd0")
    return written


if __name__ == "__main__":
    run_alone(draw)
