"""The gap Δ(t, y) over y for the four samplings of one function (the theory alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clsreg.analysis.theory import gap
from clsreg.analysis.vocabulary import DEFAULT_SIGMA_FRACTION, SAMPLINGS
from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import SAMPLING_COLORS, plt, save_figure
from clsreg.simulate.data import data_seed
from clsreg.simulate.theory_link import effective_sigma, target_model


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


def draw(results: Results, out: Path) -> list[Path]:
    """``theory_gap_profiles.png/.pdf`` (the theory alone: ``results`` is not read)."""
    return plot_gap_profiles(out / "theory_gap_profiles")


if __name__ == "__main__":
    run_alone(draw)
