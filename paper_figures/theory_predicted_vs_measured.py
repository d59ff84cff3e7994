"""Predicted against measured, cell by cell: reg's excess MSE under imbalance, and the
reg − reg+cls gain (log-log where both are positive; the rank correlation is in the title)."""

from __future__ import annotations

from pathlib import Path

from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import plt, save_figure

SETTING_MARKERS = {"clean": "o", "noisy": "s", "ood": "x"}
LABELS = {"excess": ("predicted excess_mse", "measured MSE(reg, imbalanced) − MSE(reg, uniform)"),
          "gain": ("predicted benefit (captured × excess_mse)",
                   "measured MSE(reg) − MSE(reg+cls)")}


def plot_predicted_vs_measured(checks: list, path: Path) -> list[Path]:
    """One panel per :class:`simulate.theory_link.TheoryCheck`."""
    from clsreg.simulate.theory_link import DEFAULT_PREDICTOR, POOLED

    figure, axes = plt.subplots(1, len(checks), figsize=(5 * len(checks), 4), squeeze=False)
    for axis, check in zip(axes[0], checks, strict=True):
        predictor = DEFAULT_PREDICTOR[check.target]
        for setting, marker in SETTING_MARKERS.items():
            members = [c for c in check.cells if c["setting"] == setting]
            if members:
                axis.scatter([c[predictor] for c in members], [c["measured"] for c in members],
                             marker=marker, s=14, alpha=0.7,
                             label=setting + (" (theory n/a)" if setting == "ood" else ""))
        axis.axhline(0.0, color="0.6", lw=0.8)
        axis.set_xscale("symlog", linthresh=1e-3)
        axis.set_xlim(left=0.0)  # predictions are never negative
        axis.set_yscale("symlog", linthresh=1e-2)
        pooled = [r for r in check.rows if r.group == POOLED]
        title = check.target
        if pooled:
            r = pooled[0]
            title += (f": {POOLED} ρ = {r.spearman:.2f} [{r.spearman_low:.2f}, "
                      f"{r.spearman_high:.2f}], ceiling {r.ceiling:.2f}")
        xlabel, ylabel = LABELS[check.target]
        axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
        axis.title.set_fontsize(9)
        axis.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def draw(results: Results, out: Path) -> list[Path]:
    """``theory_predicted_vs_measured.png/.pdf`` from the 1D store."""
    from clsreg.paper_figures.table_theory_check import checks

    return plot_predicted_vs_measured(checks(results), out / "theory_predicted_vs_measured")


if __name__ == "__main__":
    run_alone(draw)
