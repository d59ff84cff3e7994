"""Fidelity: the study's own logged results beside ours under the released generator and
under our protocol — reg+cls against reg at C = 64 per setting and sampling, each with its
seed-level 95% CI (the 5 seeds are the unit: every function of a seed reuses its draw)."""

from __future__ import annotations

import csv
from pathlib import Path

from clsreg.analysis.vocabulary import SAMPLINGS, SETTINGS
from clsreg.paper_figures.results import MissingResults, Results, run_alone
from clsreg.paper_figures.style import plt, save_figure

# The study's logged results, per cell, rebuilt by docs/fidelity/study_logs.py.
STUDY_LOGS = Path(__file__).resolve().parents[1] / "docs" / "fidelity" / "study_logs.csv"
SOURCE_COLORS = {"study (its logs)": "0.35", "ours, released generator": "#c44e52",
                 "ours, clsreg protocol": "#4c72b0"}
SHOWN_CLASSES = 64


def study_rows(path: Path = STUDY_LOGS) -> list[dict]:
    """The study's logged cells, with numbers as floats."""
    if not path.is_file():
        raise MissingResults(f"no {path.name} (python docs/fidelity/study_logs.py REG_CLS)")
    with open(path, newline="") as handle:
        return [{k: (v if k in ("setting", "sampling", "verdict", "family") else float(v))
                 for k, v in row.items()}
                for row in csv.DictReader(handle)]


def store_rows(folder: Path, num_resamples: int = 2000) -> list[dict]:
    from clsreg.simulate.report import load_records, paired_cells, summarize

    return summarize(paired_cells(load_records(folder)), num_resamples)


def rows(results: Results, num_resamples: int = 2000) -> dict[str, list[dict]]:
    """Every source the folder has, the study's logs first."""
    out = {"study (its logs)": study_rows()}
    if results.released is not None:
        out["ours, released generator"] = store_rows(results.released, num_resamples)
    if results.sim is not None:
        out["ours, clsreg protocol"] = store_rows(results.sim, num_resamples)
    if len(out) == 1:
        raise MissingResults("no 1D store to set beside the study's logs")
    return out


def plot(sources: dict[str, list[dict]], path: Path) -> list[Path]:
    figure, axes = plt.subplots(1, len(SETTINGS), figsize=(4.6 * len(SETTINGS), 3.8),
                                squeeze=False)
    shifts = dict(zip(sources, (-0.2, 0.0, 0.2), strict=False))
    for axis, setting in zip(axes[0], SETTINGS, strict=True):
        for name, cells in sources.items():
            for k, sampling in enumerate(SAMPLINGS):
                match = [c for c in cells if c["setting"] == setting
                         and c["sampling"] == sampling and c["num_classes"] == SHOWN_CLASSES]
                if not match:
                    continue
                cell = match[0]
                axis.errorbar(k + shifts[name], 100 * cell["rel_change"], fmt="o", ms=4,
                              yerr=[[100 * (cell["rel_change"] - cell["ci_low"])],
                                    [100 * (cell["ci_high"] - cell["rel_change"])]],
                              color=SOURCE_COLORS[name], label=name if k == 0 else None)
        axis.axhline(0.0, color="0.5", lw=0.8)
        axis.set_xticks(range(len(SAMPLINGS)), SAMPLINGS)
        axis.set(title=setting, ylabel="change of test MSE, reg+cls vs reg [%]")
    axes[0][0].legend(frameon=False, fontsize=8)
    figure.suptitle(f"The study's logs vs our reruns, C = {SHOWN_CLASSES}; bars: seed-level "
                    "95% CIs (5 seeds)", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def draw(results: Results, out: Path) -> list[Path]:
    """``fidelity.png/.pdf``."""
    return plot(rows(results), out / "fidelity")


if __name__ == "__main__":
    run_alone(draw)
