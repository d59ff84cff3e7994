"""The controls suite: its grids, one store, and the controls/search tables checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from clsreg.analysis.errors import ConfigError
from clsreg.cli import cli
from clsreg.simulate.controls import control_rows, controls_report, search_rows
from clsreg.simulate.grid import SUITES, _controls, expand_all, grid_from_mapping, load_grids
from clsreg.simulate.report import load_records
from clsreg.simulate.sweep import run_sweep

TINY = {"settings": ["clean"], "samplings": ["severe"], "functions": [0], "seeds": [0, 1],
        "num_classes": [4], "epochs": 2, "num_points": 1500, "batch_size": 64}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("controls")
    grids = [grid_from_mapping(values) for _, values in
             _controls(TINY, class_counts=[4], lams=(1, 10), lr_factors=(3.0,), epochs=(3,))]
    run_sweep(grids, folder, device="cpu", population_size=16, show_progress=False)
    return folder


def test_suites_expand_once_per_run():
    grids = load_grids("controls-quick")
    runs = expand_all(grids)
    assert len(runs) == len({run.key for run in runs})
    # The no-decay reg is shared by the no-decay control and every search variant.
    assert sum(r.method == "reg" and r.recipe.train.weight_decay == 0.0
               and r.recipe.train.epochs == 80 and r.recipe.train.lr == 1e-3
               for r in runs) == 2 * 5 * 5
    assert {"controls", "controls-quick"} <= set(SUITES)
    with pytest.raises(ConfigError, match="suite"):
        load_grids("controls-quick", methods="reg")


def test_control_rows_match_the_stored_runs(store):
    records = load_records(store)
    rows = {row["control"]: row for row in control_rows(records, num_resamples=200)}
    assert len(rows) == 7
    assert {row["n_pairs"] for row in rows.values()} == {2}  # one pair per seed, no extras

    def mse(model, decay, optimizer="adam", scaling="none"):
        return np.array([r["metrics"]["test_mse"] for r in sorted(
            (r for r in records if r["config"]["model"] == model
             and r["config"]["weight_decay"] == decay and r["config"]["optimizer"] == optimizer
             and r["config"].get("decay_scaling") == scaling and r["config"]["epochs"] == 2
             and r["config"]["lr"] == 1e-3 and r["config"]["lam"] in (0.0, 100.0)),
            key=lambda r: r["config"]["data_seed"])])

    study = rows["study: reg+cls vs reg (coupled L2 1e-3)"]
    assert study["n_pairs"] == 2 and study["n_seeds"] == 2
    assert study["rel_change"] == pytest.approx(
        mse("regcls", 1e-3).mean() / mse("reg", 1e-3).mean() - 1, rel=1e-12)
    no_decay = rows["no decay: reg+cls vs reg"]
    assert no_decay["rel_change"] == pytest.approx(
        mse("regcls", 0.0).mean() / mse("reg", 0.0).mean() - 1, rel=1e-12)
    scaled = rows["equal effective decay: reg+cls (decay ×λ) vs reg"]
    assert scaled["rel_change"] == pytest.approx(
        mse("regcls", 1e-3, scaling="lambda").mean() / mse("reg", 1e-3).mean() - 1, rel=1e-12)
    # Plain reg is untouched by the scaling: the same numbers as the study's reg.
    np.testing.assert_array_equal(mse("reg", 1e-3, scaling="lambda"), mse("reg", 1e-3))
    decay = rows["reg without decay vs reg with 1e-3"]
    assert decay["rel_change"] == pytest.approx(
        mse("reg", 0.0).mean() / mse("reg", 1e-3).mean() - 1, rel=1e-12)
    ce = rows["reg+cls vs λ·MSE alone (coupled L2 1e-3)"]
    assert ce["rel_change"] == pytest.approx(
        mse("regcls", 1e-3).mean() / mse("lamreg", 1e-3).mean() - 1, rel=1e-12)


def test_search_compares_with_the_best_regularized_reg(store):
    records = load_records(store)
    rows = search_rows(records, num_resamples=200)
    best = [r for r in rows if r["versus"] == "best-regularized reg"]
    # λ 1 and 10 × uniform/equal bins, plus the paper λ (no-decay control), lr ×3, 3 epochs.
    assert len(best) == len([r for r in rows if r["versus"] == "reg, no decay"]) == 7
    reg = [r for r in records if r["config"]["model"] == "reg"]
    assert len({(r["config"]["lr"], r["config"]["epochs"], r["config"]["weight_decay"])
                for r in reg}) >= 5  # decays, learning rates and epochs to choose from
    chosen = {}
    for r in reg:
        seed = r["config"]["data_seed"]
        if seed not in chosen or r["metrics"]["val_mse"] < chosen[seed]["metrics"]["val_mse"]:
            chosen[seed] = r
    baseline = np.mean([chosen[s]["metrics"]["test_mse"] for s in sorted(chosen)])
    for row in best:
        assert row["mse_baseline"] == pytest.approx(baseline, rel=1e-12)
        assert row["significant_gain"] == row["verdict"].startswith("helps")
        if row["significant_gain"]:
            assert row["ci_high"] < 0 and row["p_seed_holm"] < 0.05


def test_controls_command_writes_both_tables_and_a_verdict(store):
    result = CliRunner().invoke(cli, ["simulate", "controls", str(store), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    assert "best-regularized reg in" in result.output
    assert (store / "controls.csv").read_text().startswith("control,setting,sampling,")
    assert (store / "search.csv").read_text().startswith("setting,sampling,lam,")


def test_controls_on_a_store_without_them_is_one_clear_line(tmp_path):
    run_sweep(grid_from_mapping({**TINY, "seeds": [0], "methods": ["reg", "lds"]}), tmp_path,
              device="cpu", population_size=8, show_progress=False)
    with pytest.raises(Exception, match="none of the controls"):
        controls_report(tmp_path, num_resamples=200)
