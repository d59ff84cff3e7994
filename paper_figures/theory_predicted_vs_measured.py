"""Predicted excess MSE against the measured baseline − method test MSE, cell by cell."""

from __future__ import annotations

from pathlib import Path

from paper_figures.results import Results, run_alone
from paper_figures.style import plt, save_figure

SETTING_MARKERS = {"clean": "o", "noisy": "s", "ood": "x"}


def plot_predicted_vs_measured(cells: list[dict], path: Path) -> list[Path]:
    """Predicted ``excess_mse`` against the measured ``reg − reg+cls`` test MSE per cell."""
    figure, axis = plt.subplots(figsize=(5, 4))
    for setting, marker in SETTING_MARKERS.items():
        members = [c for c in cells if c["setting"] == setting]
        if members:
            axis.scatter([c["excess_mse"] for c in members],
                         [c["measured_diff"] for c in members], marker=marker, s=14,
                         alpha=0.7, label=setting + (" (theory n/a)" if setting == "ood" else ""))
    axis.axhline(0.0, color="0.6", lw=0.8)
    axis.set(xlabel="predicted excess_mse", ylabel="measured MSE(reg) − MSE(reg+cls)",
             title="theory vs simulation")
    axis.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def draw(results: Results, out: Path) -> list[Path]:
    """``theory_predicted_vs_measured.png/.pdf`` from the 1D store (predictions computed for
    exactly its datasets)."""
    from simulate.theory_check import join_cells, measured_pairs
    from simulate.theory_link import predictions_for_pairs

    pairs = measured_pairs(results.need_sim())
    cells = join_cells(pairs, predictions_for_pairs(pairs))
    return plot_predicted_vs_measured(cells, out / "theory_predicted_vs_measured")


if __name__ == "__main__":
    run_alone(draw)
