"""Real data: test error per target bin, baseline and method, training histogram beneath.

The top panel shows where along the target the class loss helps or hurts (MAE per
balanced test bin, averaged over seeds); the bottom panel shows how many training rows
each region had, coloured by shot group, so the error curve can be read against the
imbalance that the theory says drives the gain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clsreg.analysis.binning import assign_labels
from clsreg.analysis.vocabulary import DEFAULT_MARGIN
from clsreg.paper_figures.results import MissingResults, Results, run_alone
from clsreg.paper_figures.style import plt, save_figure
from clsreg.realdata.evaluate import bin_shots

METHOD_COLORS = ("#4c72b0", "#c44e52")  # baseline, method
FORMATS = ("png", "pdf")
SHOT_COLORS = {"many": "#8c8c8c", "medium": "#dd8452", "few": "#c44e52"}


def mae_per_bin(prediction: np.ndarray, target: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """MAE per bin of ``edges`` (NaN for empty bins), averaged over the seeds (rows)."""
    bins = assign_labels(target, edges)
    errors = np.abs(np.atleast_2d(prediction) - target).mean(axis=0)
    sums = np.bincount(bins, weights=errors, minlength=len(edges) - 1)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def plot_error_per_bin(runs, path_without_suffix: Path, formats=FORMATS) -> list[Path]:
    """Write the two-panel figure for one experiment (``realdata.report.ExperimentRuns``)."""
    config, arrays = runs.config, runs.arrays
    split_edges, shot_edges = arrays["split_edges"], arrays["shot_edges"]
    train_counts = arrays["train_counts"]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True,
                                         gridspec_kw={"height_ratios": [2, 1]})
    centers = (split_edges[:-1] + split_edges[1:]) / 2
    for color, (method, prediction) in zip(METHOD_COLORS, runs.prediction.items(),
                                           strict=True):
        top.plot(centers, mae_per_bin(prediction, runs.target, split_edges), "o-",
                 color=color, label=method, markersize=4)
    top.set_ylabel("test MAE per bin")
    top.set_title(f"{config['dataset']} ({config['sampling']}), {len(runs.seeds)} seeds, "
                  f"{config['per_bin']} test rows per bin", fontsize=10)
    top.legend(frameon=False)
    shots = (arrays["bin_shot"] if "bin_shot" in arrays  # NYUD2-DIR's fixed bin lists
             else bin_shots(train_counts, config["shots"]["many"], config["shots"]["few"]))
    widths = np.diff(shot_edges)
    for shot, color in SHOT_COLORS.items():
        keep = (shots == shot) & (train_counts > 0)
        bottom.bar(shot_edges[:-1][keep], train_counts[keep],
                   width=widths[keep], align="edge", color=color, label=f"{shot} shot")
    bottom.set_yscale("log")
    bottom.set_ylabel("train count")
    bottom.set_xlabel(f"{config['dataset']}: {config.get('target_name', 'target')}")
    bottom.legend(frameon=False, fontsize=8, ncol=3)
    figure.tight_layout()
    return save_figure(figure, path_without_suffix, formats)


def write_folder_report(out_dir: str | Path, margin: float = DEFAULT_MARGIN
                        ) -> tuple[str, list[Path]]:
    """``clsreg realdata report``: the report's text, ``summary.csv``, ``report.md`` and the
    error-per-bin figure of each experiment in ``out_dir`` (every output checked first)."""
    from clsreg.realdata.report import build_report, figure_stem, write_report

    out_dir = Path(out_dir)
    text, summary, runs = build_report(out_dir, margin)
    stems = [out_dir / figure_stem(run, runs) for run in runs]
    written = write_report(out_dir, text, summary,
                           [f"{stem}.{fmt}" for stem in stems for fmt in FORMATS])
    for run, stem in zip(runs, stems, strict=True):
        written += plot_error_per_bin(run, stem)
    return text, written


def draw(results: Results, out: Path) -> list[Path]:
    """``realdata_errors_<dataset>_<sampling>[_<method>]`` for every stored real-data run."""
    from clsreg.realdata.report import figure_stem, load_runs

    if not results.real:
        raise MissingResults("no real-data store (run clsreg realdata run)")
    written = []
    for folder in results.real:
        runs = load_runs(folder)
        for run in runs:
            stem = figure_stem(run, runs).replace("errors_per_bin_",
                                                  f"realdata_errors_{run.config['dataset']}_")
            written += plot_error_per_bin(run, out / stem)
    return written


if __name__ == "__main__":
    run_alone(draw)
