"""Every figure and table of the study, in report order, and the one loop that draws them.

Each entry is a module of :mod:`paper_figures` with one entry point ``draw(results, out)``.
:func:`draw_into`, :func:`draw_folder` and :func:`draw_theory` are what the ``clsreg
figures`` commands call: they return the paths written and the entries skipped, with why.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from clsreg.analysis.errors import InputError
from clsreg.analysis.files import ensure_dir
from clsreg.paper_figures.results import MissingResults, Results

Drawn = tuple[list[Path], list[tuple[str, str]]]  # paths written, (name, reason) skipped

CATALOG = (
    "functions", "samplings", "settings",
    "theory_gap_profiles", "theory_captured_fraction", "theory_sigma_sensitivity",
    "mse_vs_classes", "weight_decay_control", "fidelity", "methods",
    "theory_predicted_vs_measured",
    "realdata_errors",
    "table_controls", "table_simulate", "table_theory_check", "table_realdata",
)


def draw_all(results: Results, out: Path, names: tuple[str, ...] = CATALOG) -> Drawn:
    """Draw every entry it can; return the paths written and (name, reason) of the skipped."""
    written, skipped = [], []
    for name in names:
        module = importlib.import_module(f"clsreg.paper_figures.{name}")
        try:
            written += module.draw(results, out)
        except MissingResults as missing:
            skipped.append((name, str(missing)))
    return written, skipped


def draw_into(out_dir: Path, names: tuple[str, ...] = CATALOG, results: Results | None = None
              ) -> Drawn:
    """Draw ``names`` from ``results`` (default: none stored) into ``out_dir``, made here.

    Raises the first :class:`MissingResults` when every entry was skipped: a command that
    drew nothing failed.
    """
    written, skipped = draw_all(results or Results(), ensure_dir(out_dir), tuple(names))
    if skipped and not written:
        raise MissingResults(skipped[0][1])
    return written, skipped


def draw_folder(results_dir: Path, out_dir: Path) -> Drawn:
    """Every catalog entry from a results folder (see :meth:`Results.discover`)."""
    if not Path(results_dir).is_dir():
        raise InputError(f"no such results folder: {results_dir}")
    return draw_into(out_dir, CATALOG, Results.discover(results_dir))


THEORY = ("theory_gap_profiles", "theory_captured_fraction")


def draw_theory(out_dir: Path, store_dir: Path | None = None) -> Drawn:
    """The theory figures, computed afresh: gap profiles, captured fraction and σ
    sensitivity (functions 0-2); with a 1D store, also predicted against measured (the
    store is read first, so a bad one fails before any figure is drawn)."""
    from clsreg.paper_figures.theory_sigma_sensitivity import plot_sigma_sensitivity
    from clsreg.simulate.theory_link import sigma_sensitivity, store_pairs

    names, results = THEORY, Results()
    if store_dir is not None:
        store_pairs(store_dir)
        names, results = (*THEORY, "theory_predicted_vs_measured"), Results(sim=Path(store_dir))
    written, skipped = draw_into(out_dir, names, results)
    written += plot_sigma_sensitivity(sigma_sensitivity(functions=(0, 1, 2)),
                                      ensure_dir(out_dir) / "theory_sigma_sensitivity")
    return written, skipped
