"""Sweeps: grid expansion, bad configs, resume after SIGKILL, determinism, the report."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from clsreg.analysis.errors import ConfigError
from clsreg.analysis.stats import compare_paired
from clsreg.analysis.store import Record, ResultsStore
from clsreg.analysis.vocabulary import SIM_KIND as KIND
from clsreg.cli import cli
from clsreg.simulate.grid import PopulationKind, expand, grid_from_mapping, load_grid, populations
from clsreg.simulate.report import SUMMARY_COLUMNS, paired_cells, report, summarize
from clsreg.simulate.sweep import run_sweep
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
TINY = {"settings": ["clean"], "samplings": ["uniform", "severe"], "functions": [0, 1],
        "seeds": [0], "num_classes": [4], "epochs": 4, "num_points": 1500, "batch_size": 64}


def _rows(directory: Path) -> dict[str, tuple]:
    with ResultsStore(directory, create=False) as store:
        return {r["key"]: (r["config"], r["metrics"], r["seed"], r["version"])
                for r in store.records(KIND)}


def test_paper_grid_trains_reg_once_per_dataset_and_seed():
    runs = expand(load_grid("paper"))
    reg = [r for r in runs if r.config["model"] == "reg"]
    assert len(reg) == 3 * 4 * 10 * 5
    assert len(runs) - len(reg) == 3 * 4 * 10 * 5 * 5
    assert len({r.key for r in runs}) == len(runs)
    clean = [r for r in runs if r.config["setting"] == "ood" and r.config["model"] == "regcls"]
    assert {(r.config["lam"], r.config["lr"]) for r in clean} == {(1e4, 1e-4)}
    assert {(r.config["data_seed"], r.config["model_seed"]) for r in reg} == {
        (2732, 0), (9845, 421), (3264, 8125), (4859, 2481), (9225, 849)}


def test_quick_preset_has_twenty_pairs_per_cell():
    runs = expand(load_grid("quick"))
    cells: dict[tuple, int] = {}
    for run in runs:
        c = run.config
        if c["model"] == "regcls":
            key = (c["setting"], c["sampling"], c["num_classes"])
            cells[key] = cells.get(key, 0) + 1
    assert min(cells.values()) >= 20
    assert {k[1] for k in cells} >= {"uniform", "severe"}


def test_widths_preset_varies_width_and_optimizer_and_reports_them(tmp_path):
    runs = expand(load_grid("widths"))
    assert {tuple(r.config["hidden"]) for r in runs} == {(w, w) for w in (5, 9, 17, 33, 65)}
    sgd = {r.config["lr"] for r in runs if r.config["optimizer"] == "sgd"}
    adam = {r.config["lr"] for r in runs if r.config["optimizer"] == "adam"}
    assert sgd == {1e-3} and adam == {1e-3}
    grid = grid_from_mapping({**TINY, "hidden": [[5, 5], [17, 17]], "optimizers": ["adam", "sgd"],
                              "samplings": ["severe"], "functions": [0, 1, 2], "epochs": 2})
    run_sweep(grid, tmp_path, device="cpu", population_size=8, show_progress=False)
    rows, _ = report(tmp_path, num_resamples=200)
    assert [(r["hidden"], r["optimizer"]) for r in rows] == [
        ("5-5", "adam"), ("5-5", "sgd"), ("17-17", "adam"), ("17-17", "sgd")]
    assert all(r["n_pairs"] == 3 for r in rows)


def test_populations_are_fixed_chunks_of_one_architecture():
    runs = expand(grid_from_mapping(TINY))
    chunks = populations(runs, 3)
    assert sum(len(c) for c in chunks) == len(runs)
    for chunk in chunks:
        assert len({PopulationKind.of(run) for run in chunk}) == 1
        assert len(chunk) <= 3
    assert [r.key for c in populations(runs, 3) for r in c] == [r.key for c in chunks for r in c]


@pytest.mark.parametrize("values, message", [
    ({"num_clases": [4]}, "unknown grid key"),
    ({"num_classes": [1, 4]}, ">= 2"),
    ({"lam": {"clean": -1.0}}, "> 0"),
    ({"lam": {"clean": 0.0}}, "> 0"),
    ({"methods": ["reg", "bogus"]}, "unknown methods entry"),
    ({"functions": []}, "empty"),
    ({"settings": ["dirty"]}, "unknown settings"),
    ({"seeds": [100]}, "seed indices"),
    ({"lr": {"clean": 0.0}}, "> 0"),
    ({"settings": ["clean", "noisy"], "lam": {"clean": 1.0}}, "no value for setting"),
    ({"num_points": 300, "batch_size": 256}, "smaller than one batch"),
])
def test_bad_grid_values_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        grid_from_mapping({**TINY, **values})


@pytest.mark.parametrize("content, extra", [
    ("unknown_key = 3\n", []),
    ("num_classes = [1]\n", []),
    ("[lam]\nclean = -5.0\n", []),
    ("samplings = []\n", []),
    ("num_classes = [4]\n", ["--device", "tpu"]),
    ("num_classes = [4\n", []),
])
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, content, extra):
    config = tmp_path / "grid.toml"
    config.write_text(content)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["simulate", "run", "--preset", "smoke", "--config",
                                      str(config), "--out", str(out), *extra])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert not out.exists()


def test_two_identical_sweeps_give_identical_rows(tmp_path):
    grid = grid_from_mapping(TINY)
    run_sweep(grid, tmp_path / "a", device="cpu", population_size=3, show_progress=False)
    run_sweep(grid, tmp_path / "b", device="cpu", population_size=3, show_progress=False)
    first, second = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert len(first) == len(expand(grid)) == 8
    assert first == second
    # The models learned something and the reg+cls partner is a different model.
    metrics = {key: row[1] for key, row in first.items()}
    reg = [m for k, m in metrics.items() if "/reg/" in k]
    regcls = [m for k, m in metrics.items() if "/regcls/" in k]
    assert all(0.0 <= m["class_top1"] <= 1.0 for m in regcls)
    assert all(m["class_top1"] is None and not m["diverged"] for m in reg)
    assert {m["test_mse"] for m in reg}.isdisjoint({m["test_mse"] for m in regcls})


def test_resume_after_sigkill_gives_the_rows_of_an_uninterrupted_run(tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(
        'settings = ["clean"]\nsamplings = ["uniform", "severe"]\nfunctions = [0, 1, 2]\n'
        'seeds = [0]\nnum_classes = [4]\nepochs = 12\nnum_points = 3000\nbatch_size = 64\n')
    command = [sys.executable, "-m", "clsreg", "simulate", "run", "--config", str(config),
               "--device", "cpu", "--population-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([*command, "--out", str(whole)], check=True, env=env, capture_output=True,
                   timeout=600)
    total = len(_rows(whole))
    assert total == 12

    process = subprocess.Popen([*command, "--out", str(killed)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = killed / "results.sqlite"
    rows_at_kill = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if store.exists():
            with sqlite3.connect(store) as connection:
                try:
                    rows_at_kill = connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    rows_at_kill = 0
            if rows_at_kill >= 2:
                break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < rows_at_kill < total, "the run was not interrupted part-way"
    assert 0 < len(_rows(killed)) < total
    subprocess.run([*command, "--out", str(killed)], check=True, env=env, capture_output=True,
                   timeout=600)
    assert _rows(killed) == _rows(whole)


# ---------------------------------------------------------------------- the report
def _record(model: str, function: int, seed: int, test_mse: float, num_classes: int = 0,
            sampling: str = "severe", diverged: bool = False) -> Record:
    config = {"setting": "clean", "sampling": sampling, "function": function,
              "function_seed": 0, "data_seed": 2732 + seed, "model_seed": seed, "model": model,
              "num_classes": num_classes, "binning": "uniform",
              "lam": 100.0 if model == "regcls" else 0.0, "lr": 1e-3, "optimizer": "adam",
              "weight_decay": 1e-3, "hidden": [6, 15], "epochs": 80, "batch_size": 256,
              "num_points": 60000, "dtype": "float32", "device": "cpu"}
    key = f"{model}/{sampling}/{function}/{seed}/{num_classes}"
    return Record(key=key, kind=KIND, config=config, seed=seed,
                  metrics={"train_mse": test_mse, "val_mse": test_mse, "test_mse": test_mse,
                           "class_top1": None, "diverged": diverged})


def _synthetic_store(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    reg = rng.uniform(0.01, 0.02, 12)
    regcls = reg * rng.uniform(0.6, 0.9, 12)  # reg+cls better on every pair
    records = []
    for i in range(12):
        records.append(_record("reg", i, i % 4, reg[i]))
        records.append(_record("regcls", i, i % 4, regcls[i], num_classes=16))
        records.append(_record("regcls", i, i % 4, reg[i], num_classes=64))  # no change
        records.append(_record("reg", i, i % 4, reg[i], sampling="uniform"))
        records.append(_record("regcls", i, i % 4, reg[i] * 1.1, 16, sampling="uniform",
                               diverged=i == 3))
    records.append(_record("regcls", 99, 0, 5.0, num_classes=16))  # no reg partner
    with ResultsStore(directory) as store:
        store.write(records)
    return reg, regcls


def test_report_pairs_runs_and_computes_the_summary(tmp_path):
    reg, regcls = _synthetic_store(tmp_path)
    rows, path = report(tmp_path, num_resamples=2000)
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == SUMMARY_COLUMNS
    cells = {(r["sampling"], r["num_classes"]): r for r in rows}
    assert list(cells) == [("uniform", 16), ("severe", 16), ("severe", 64)]
    helped = cells[("severe", 16)]
    expected = compare_paired(reg, regcls, num_resamples=2000)
    # The seed is the unit: 12 pairs of 4 seeds (3 functions each) are 4 units.
    assert helped["n_pairs"] == 12 and helped["n_seeds"] == 4
    assert helped["rel_change"] == pytest.approx(regcls.mean() / reg.mean() - 1, rel=1e-12)
    assert helped["rel_change"] == pytest.approx(expected.rel_change)
    seed_reg, seed_cls = (np.array([values[i::4].mean() for i in range(4)])
                          for values in (reg, regcls))
    assert helped["p_seed"] == pytest.approx(stats.ttest_rel(seed_cls, seed_reg).pvalue)
    assert helped["win_rate"] == 1.0
    assert helped["ci_low"] <= helped["rel_change"] <= helped["ci_high"] < 0
    assert helped["pair_ci_low"] <= helped["rel_change"] <= helped["pair_ci_high"] < 0
    # Twelve pairs all one way: exact two-sided Wilcoxon p = 2 / 2^12, the smallest of the
    # three cells' (secondary, per-pair) tests, so Holm over the family multiplies it by 3.
    assert helped["p_pair"] == pytest.approx(2 / 2**12)
    assert helped["p_pair_holm"] == pytest.approx(3 * 2 / 2**12)
    assert helped["family"] == "regcls vs reg"
    assert helped["verdict"] == ("helps" if helped["p_seed_holm"] < 0.05
                                 else f"undecided — needs ≈ {helped['seeds_needed']:.0f} seeds")
    same = cells[("severe", 64)]
    assert same["rel_change"] == 0.0 and same["p_seed"] == 1.0  # no difference at all
    # ... and TOST bounds it: every per-seed difference is exactly 0.
    assert same["p_equiv_holm"] < 0.05 and same["verdict"] == "equivalent within ±5%"
    worse = cells[("uniform", 16)]
    assert worse["n_pairs"] == 11  # the diverged pair is left out
    assert worse["rel_change"] == pytest.approx(0.1)
    assert float(table[0]["rel_change"]) == pytest.approx(0.1, rel=1e-5)


def test_report_cli_and_figure(tmp_path):
    _synthetic_store(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["simulate", "report", str(tmp_path), "--resamples", "500"])
    assert result.exit_code == 0, result.output
    assert "rel_change" in result.output and "severe" in result.output
    assert (tmp_path / "summary.csv").exists()
    result = runner.invoke(cli, ["figures", "simulate", str(tmp_path), "--out",
                                 str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    for suffix in ("png", "pdf"):
        assert (tmp_path / "figs" / f"mse_vs_classes.{suffix}").stat().st_size > 1000


def test_report_on_missing_or_empty_store_is_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "report", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error: no results store")
    ResultsStore(tmp_path / "empty").close()
    result = CliRunner().invoke(cli, ["simulate", "report", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "holds no 1D runs" in result.output


def test_paired_cells_use_only_runs_with_a_partner(tmp_path):
    _synthetic_store(tmp_path)
    with ResultsStore(tmp_path, create=False) as store:
        cells = paired_cells(store.records(KIND))
    # 12 + 12 + 12 pairs with a partner, less the one with a diverged run (one rule for all).
    assert sum(c.baseline.size for c in cells) == 35
    rows = summarize(cells, num_resamples=200)
    assert all(r["p_pair_holm"] >= r["p_pair"] or np.isnan(r["p_pair_holm"]) for r in rows)
    assert all(r["p_seed_holm"] >= r["p_seed"] or np.isnan(r["p_seed_holm"]) for r in rows)


def test_methods_come_from_the_config_unless_given_on_the_command_line(tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text('methods = ["reg", "lds"]\n')
    assert load_grid("smoke", config).methods == ("reg", "lds")
    assert load_grid("smoke", config, "reg,regcls").methods == ("reg", "regcls")
    assert load_grid("smoke").methods == ("reg", "regcls")
