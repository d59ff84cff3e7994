"""The library calls behind the thin commands: the text they return and when they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from clsreg.analysis.errors import InputError
from clsreg.analysis.vocabulary import EXECUTORS
from clsreg.paper_figures.catalog import draw_folder, draw_into
from clsreg.paper_figures.reproduce import done_line
from clsreg.paper_figures.results import MissingResults, Results
from clsreg.simulate import executors
from clsreg.simulate.methods_table import registry_text
from clsreg.simulate.sweep import SweepSummary
from clsreg.simulate.train_grid import describe_sweep


def test_registry_text_lists_every_method_then_the_losses_and_the_baseline():
    from clsreg.core.methods import METHODS

    lines = registry_text().splitlines()
    assert lines[0].split()[:2] == ["method", "objective"]
    listed = [line.split()[0] for line in lines[2:2 + len(METHODS)]]
    assert listed == list(METHODS)
    assert lines[-2:] == ["", "regression losses (--loss): mse, l1, huber; baseline: reg"]


def test_describe_sweep_says_what_was_trained_and_where():
    summary = SweepSummary(total=10, trained=7, skipped=3, diverged=1, device="cpu")
    assert describe_sweep(summary, 12.6, Path("runs/q")) == (
        "trained 7 of 10 models on cpu (3 already stored, 1 diverged) in 13 s -> "
        "runs/q/results.sqlite")


def test_done_line_sums_the_stages():
    provenance = {"wall_seconds": {"theory": 1.2, "sim": 40.4, "report": 3.0}}
    assert done_line(provenance, "runs/r") == (
        "done in 45 s -> runs/r/report.html (and report.md)")


def test_drawing_nothing_is_an_error_with_the_first_reason(tmp_path):
    with pytest.raises(MissingResults, match="no 1D simulation store"):
        draw_into(tmp_path / "figs", ("mse_vs_classes", "methods"), Results())


def test_draw_folder_refuses_a_missing_folder_before_making_the_output(tmp_path):
    with pytest.raises(InputError, match="no such results folder"):
        draw_folder(tmp_path / "nowhere", tmp_path / "figs")
    assert not (tmp_path / "figs").exists()


def test_the_executor_names_are_the_registry_s():
    assert tuple(executors.EXECUTORS) == EXECUTORS == ("local", "ray")
