"""Theory figures: the gap over y for the four samplings, the captured fraction against the
number of classes for both binnings, the predictions' dependence on σ, and (given a
results store) predicted against measured benefit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.theory import captured_fraction, gap
from analysis.vocabulary import DEFAULT_SIGMA_FRACTION, SAMPLINGS
from paper_figures.style import SAMPLING_COLORS, plt, save_figure
from simulate.data import data_seed
from simulate.theory_link import effective_sigma, target_model

CLASS_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
SETTING_MARKERS = {"clean": "o", "noisy": "s", "ood": "x"}


def plot_gap_profiles(path: Path, function_index: int = 0, seed_index: int = 0) -> list[Path]:
    """Δ(t, y) over y at the mid-range t, and Δ(t, t) at each sample's own target."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=False)
    for sampling in SAMPLINGS:
        model = target_model(function_index, "clean", sampling, data_seed(seed_index))
        density = model.density()
        sigma = effective_sigma(model, DEFAULT_SIGMA_FRACTION)
        y = np.linspace(model.low, model.high, 801)
        middle = 0.5 * (model.low + model.high)
        left.plot(y, gap(density, middle, y, sigma), color=SAMPLING_COLORS[sampling],
                  label=sampling)
        right.plot(y, gap(density, y, y, sigma), color=SAMPLING_COLORS[sampling],
                   label=sampling)
    left.set(xlabel="target y", ylabel="gap Δ(t, y) [nats]",
             title=f"Δ over y at t = mid-range (function {function_index})")
    right.set(xlabel="clean target t", ylabel="gap Δ(t, t) [nats]",
              title="Δ at each sample's own target")
    for axis in (left, right):
        axis.axhline(0.0, color="0.6", lw=0.8)
        axis.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_captured_fraction(path: Path, function_index: int = 0, seed_index: int = 0
                           ) -> list[Path]:
    """``captured_fraction`` against C for uniform-width and equal-frequency classes."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for axis, binning in zip(axes, ("uniform", "equal"), strict=True):
        for sampling in ("mild", "moderate", "severe"):
            model = target_model(function_index, "clean", sampling, data_seed(seed_index))
            density = model.density()
            sigma = effective_sigma(model, DEFAULT_SIGMA_FRACTION)
            values = [captured_fraction(density, sigma, c, binning) for c in CLASS_GRID]
            axis.plot(CLASS_GRID, values, marker="o", color=SAMPLING_COLORS[sampling],
                      label=sampling)
        axis.set(xscale="log", xlabel="number of classes C", title=f"{binning} binning",
                 ylim=(-0.02, 1.02))
        axis.legend(frameon=False, fontsize=8)
    axes[0].set_ylabel("captured fraction of E|Δ|")
    figure.tight_layout()
    return save_figure(figure, path)


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
    left.set(xscale="log", yscale="log", xlabel="σ / target range",
             ylabel="excess_mse / σ²", title="imbalance cost of the best plain regressor")
    right.set(xscale="log", xlabel="σ / target range", ylabel="captured fraction",
              title=f"captured fraction, C = {int(frame['num_classes'].iloc[0])} uniform")
    left.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


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


def write_all(out_dir: Path, store_dir: Path | None = None) -> list[Path]:
    """All theory figures into ``out_dir``; the comparison only when a store is given.

    The store is read first, so a bad store fails before any folder or figure is made.
    """
    from analysis.files import ensure_dir
    from simulate.theory_check import join_cells, measured_pairs
    from simulate.theory_link import predictions_for_pairs, sigma_sensitivity

    pairs = measured_pairs(store_dir) if store_dir is not None else None
    out_dir = ensure_dir(out_dir)
    written = plot_gap_profiles(out_dir / "theory_gap_profiles")
    written += plot_captured_fraction(out_dir / "theory_captured_fraction")
    written += plot_sigma_sensitivity(sigma_sensitivity(functions=(0, 1, 2)),
                                      out_dir / "theory_sigma_sensitivity")
    if pairs is not None:
        cells = join_cells(pairs, predictions_for_pairs(pairs))
        written += plot_predicted_vs_measured(cells, out_dir / "theory_predicted_vs_measured")
    return written
