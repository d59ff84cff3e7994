"""The captured fraction of the gap against the number of classes, both binnings."""

from __future__ import annotations

from pathlib import Path

from clsreg.analysis.theory import captured_fraction
from clsreg.analysis.vocabulary import DEFAULT_SIGMA_FRACTION
from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import SAMPLING_COLORS, plt, save_figure
from clsreg.simulate.data import data_seed
from clsreg.simulate.theory_link import effective_sigma, target_model

CLASS_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


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


def draw(results: Results, out: Path) -> list[Path]:
    """``theory_captured_fraction.png/.pdf`` (the theory alone: ``results`` is not read)."""
    return plot_captured_fraction(out / "theory_captured_fraction")


if __name__ == "__main__":
    run_alone(draw)
