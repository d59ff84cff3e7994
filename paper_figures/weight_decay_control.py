"""The control that decides what the 1D gain is: the method's relative change of test MSE
with the protocol's weight decay (1e-3, coupled to λ·MSE + CE) and with weight decay 0 for
both arms, per setting, sampling and class count, with 95% bootstrap CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from clsreg.analysis.vocabulary import SAMPLINGS, SETTINGS
from clsreg.paper_figures.results import MissingResults, Results, run_alone
from clsreg.paper_figures.style import plt, save_figure

CONDITION_COLORS = {"protocol": "#c44e52", "weight decay 0": "#4c72b0"}


def control_rows(results: Results, num_resamples: int = 2000) -> dict[str, list[dict]]:
    """The paired summary rows of the protocol's store and of the control's."""
    from clsreg.simulate.report import load_records, paired_cells, summarize

    if results.control is None:
        raise MissingResults("no weight-decay-0 control store (sim_wd0/; clsreg reproduce "
                             "runs it)")
    return {name: summarize(paired_cells(load_records(folder)), num_resamples)
            for name, folder in (("protocol", results.need_sim()),
                                 ("weight decay 0", results.control))}


def plot(rows: dict[str, list[dict]], path: Path) -> list[Path]:
    settings = [s for s in SETTINGS if any(r["setting"] == s for r in rows["protocol"])]
    figure, axes = plt.subplots(1, len(settings), figsize=(4.6 * len(settings), 3.6),
                                squeeze=False)
    for axis, setting in zip(axes[0], settings, strict=True):
        samplings = [s for s in SAMPLINGS
                     if any(r["setting"] == setting and r["sampling"] == s
                            for r in rows["protocol"])]
        for shift, (name, condition) in zip((-0.15, 0.15), rows.items(), strict=True):
            for k, sampling in enumerate(samplings):
                cells = [r for r in condition
                         if r["setting"] == setting and r["sampling"] == sampling]
                offsets = np.linspace(-0.08, 0.08, len(cells)) if len(cells) > 1 else [0.0]
                for offset, cell in zip(offsets, cells, strict=True):
                    x = k + shift + offset
                    axis.errorbar(x, 100 * cell["rel_change"], fmt="o", ms=4,
                                  yerr=[[100 * (cell["rel_change"] - cell["ci_low"])],
                                        [100 * (cell["ci_high"] - cell["rel_change"])]],
                                  color=CONDITION_COLORS[name],
                                  label=name if (k, offset) == (0, offsets[0]) else None)
        axis.axhline(0.0, color="0.5", lw=0.8)
        axis.set_xticks(range(len(samplings)), samplings)
        axis.set(title=setting, ylabel="change of test MSE vs reg [%]")
        axis.legend(frameon=False, fontsize=8)
    figure.suptitle("reg+cls against reg: protocol (weight decay 1e-3) vs weight decay 0 for "
                    "both; points: class counts", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def draw(results: Results, out: Path) -> list[Path]:
    """``weight_decay_control.png/.pdf``."""
    return plot(control_rows(results), out / "weight_decay_control")


if __name__ == "__main__":
    run_alone(draw)
