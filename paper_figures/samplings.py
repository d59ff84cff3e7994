"""Training-target histograms of the four samplings of one function (needs no results)."""

from __future__ import annotations

from pathlib import Path

from clsreg.analysis.vocabulary import SAMPLINGS
from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.style import SAMPLING_COLORS, plt, save_figure
from clsreg.simulate.data import DATA_SEEDS, make_dataset


def plot(out_dir: Path, function_index: int = 0, seed_index: int = 0) -> list[Path]:
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


def draw(results: Results, out: Path) -> list[Path]:
    """``samplings.png/.pdf`` (the protocol alone: ``results`` is not read)."""
    return plot(out)


if __name__ == "__main__":
    run_alone(draw)
