"""Every figure and table of the study, in report order, and the one loop that draws them.

Each entry is a module of :mod:`paper_figures` with one entry point ``draw(results, out)``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from clsreg.paper_figures.results import MissingResults, Results

CATALOG = (
    "functions", "samplings", "settings",
    "theory_gap_profiles", "theory_captured_fraction", "theory_sigma_sensitivity",
    "mse_vs_classes", "weight_decay_control", "fidelity", "methods",
    "theory_predicted_vs_measured",
    "realdata_errors",
    "table_controls", "table_simulate", "table_theory_check", "table_realdata",
)


def draw_all(results: Results, out: Path, names: tuple[str, ...] = CATALOG
             ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Draw every entry it can; return the paths written and (name, reason) of the skipped."""
    written, skipped = [], []
    for name in names:
        module = importlib.import_module(f"clsreg.paper_figures.{name}")
        try:
            written += module.draw(results, out)
        except MissingResults as missing:
            skipped.append((name, str(missing)))
    return written, skipped
