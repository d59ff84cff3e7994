"""The methods study at a glance: each method's change of test MSE against reg (left) and
against reg+cls (right), per setting and sampling; * marks a seed-level Holm p < 0.05."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from clsreg.paper_figures.results import MissingResults, Results, run_alone
from clsreg.paper_figures.style import plt, save_figure

LIMIT = 0.3  # colour scale: ±30%


def plot_methods(rows: list[dict], path: Path) -> list[Path]:
    """Heatmaps of ``rel_change`` from :func:`simulate.methods_table.methods_rows`."""
    baselines = [b for b in ("reg", "regcls") if any(r["baseline"] == b for r in rows)]
    cells = list(dict.fromkeys((r["setting"], r["sampling"]) for r in rows))
    figure, axes = plt.subplots(1, len(baselines), squeeze=False,
                                figsize=(1.0 + 0.9 * len(cells) * len(baselines), 3.6))
    for axis, baseline in zip(axes[0], baselines, strict=True):
        chosen = [r for r in rows if r["baseline"] == baseline]
        methods = list(dict.fromkeys(r["method"] for r in chosen))
        grid = np.full((len(methods), len(cells)), np.nan)
        for r in chosen:
            i, j = methods.index(r["method"]), cells.index((r["setting"], r["sampling"]))
            grid[i, j] = r["rel_change"]
            star = "*" if r["p_seed_holm"] < 0.05 else ""
            dark = abs(r["rel_change"]) > 0.6 * LIMIT
            axis.text(j, i, f"{100 * r['rel_change']:+.0f}{star}", ha="center", va="center",
                      fontsize=7, color="white" if dark else "black")
        image = axis.imshow(np.clip(grid, -LIMIT, LIMIT), cmap="RdBu_r", vmin=-LIMIT,
                            vmax=LIMIT, aspect="auto")
        axis.set_xticks(range(len(cells)), [f"{s}\n{m}" for s, m in cells], fontsize=7)
        axis.set_yticks(range(len(methods)), methods, fontsize=8)
        axis.set_title(f"change of test MSE vs {baseline} (%)", fontsize=9)
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="relative change")
    return save_figure(figure, path)


def draw(results: Results, out: Path) -> list[Path]:
    """``methods.png/.pdf`` from the methods store."""
    from clsreg.simulate.methods_table import methods_rows
    from clsreg.simulate.report import load_records

    if results.methods is None:
        raise MissingResults("no methods store (methods/; clsreg simulate run --preset "
                             "methods-quick)")
    rows = [r for r in methods_rows(load_records(results.methods), 2000)
            if math.isfinite(r["rel_change"])]
    return plot_methods(rows, out / "methods")


if __name__ == "__main__":
    run_alone(draw)
