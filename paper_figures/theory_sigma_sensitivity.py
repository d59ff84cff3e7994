"""How the predictions move with σ: relative excess MSE and captured fraction against the
σ fraction (from ``theory/sigma_sensitivity.csv`` of ``clsreg theory predict``)."""

from __future__ import annotations

from pathlib import Path

from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import SAMPLING_COLORS, plt, save_figure


def plot_sigma_sensitivity(rows: list[dict], path: Path) -> list[Path]:
    """Mean predicted ``excess_mse / σ²`` and captured fraction against the σ fraction."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame = frame[frame["binning"] == "uniform"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for (setting, sampling), group in frame.groupby(["setting", "sampling"]):
        means = group.groupby("sigma_fraction")[["relative_excess", "captured_fraction"]].mean()
        style = "-" if setting == "clean" else "--"
        left.plot(means.index, means["relative_excess"], style, marker="o",
                  color=SAMPLING_COLORS[sampling], label=f"{setting} {sampling}")
        right.plot(means.index, means["captured_fraction"], style, marker="o",
                   color=SAMPLING_COLORS[sampling], label=f"{setting} {sampling}")
    fractions = sorted(frame["sigma_fraction"].unique())
    for axis in (left, right):  # one labelled tick per σ fraction, none of log-scale's own
        axis.set_xscale("log")
        axis.set_xticks(fractions, [f"{v:g}" for v in fractions], fontsize=8)
        axis.minorticks_off()
    left.set(yscale="log", xlabel="σ / target range",
             ylabel="excess_mse / σ²", title="imbalance cost of the best plain regressor")
    right.set(xlabel="σ / target range", ylabel="captured fraction",
              title=f"captured fraction, C = {int(frame['num_classes'].iloc[0])} uniform")
    left.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


def draw(results: Results, out: Path) -> list[Path]:
    """``theory_sigma_sensitivity.png/.pdf`` from the stored sensitivity rows."""
    import pandas as pd

    rows = pd.read_csv(results.need_theory_file("sigma_sensitivity.csv")).to_dict("records")
    return plot_sigma_sensitivity(rows, out / "theory_sigma_sensitivity")


if __name__ == "__main__":
    run_alone(draw)
