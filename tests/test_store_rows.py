"""Damaged or edited store rows and checkpoints (issue 27 item 4): every reading command
gives one ``Error:`` line naming the store and the row's key (exit 2), never a traceback and
never an average over a NaN; rows stored NaN on purpose (a diverged 1D run, an empty
real-data shot group) still read; a checkpoint of wrong content names the file (exit 2).
"""

from __future__ import annotations

import glob
import io
import json
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from clsreg.analysis.rows import ERROR_METRICS, FRACTION_METRICS, SHOT_GROUPS, SIM_CONFIG
from clsreg.analysis.store import Record, ResultsStore
from clsreg.cli import cli

REPO = Path(__file__).resolve().parent.parent


def sim_config(function: int, seed: int, model: str, sampling: str) -> dict:
    return {"setting": "clean", "sampling": sampling, "function": function,
            "function_seed": 0, "data_seed": 2732 + seed, "model_seed": seed, "model": model,
            "num_classes": 16 if model == "regcls" else 0, "binning": "uniform",
            "lam": 100.0 if model == "regcls" else 0.0, "lr": 1e-3, "optimizer": "adam",
            "weight_decay": 1e-3, "hidden": [6, 15], "epochs": 80, "batch_size": 256,
            "num_points": 60000, "dtype": "float32", "device": "cpu"}


def make_sim_store(folder: Path) -> None:
    """reg and reg+cls on 6 functions × 2 samplings × 2 seeds; one reg+cls run diverged
    (NaN metrics, as the population trainer stores it)."""
    rng = np.random.default_rng(0)
    records = []
    for sampling in ("uniform", "severe"):
        for function in range(6):
            for seed in range(2):
                for model in ("reg", "regcls"):
                    mse = float(rng.uniform(0.01, 0.02))
                    diverged = (sampling, function, seed, model) == ("severe", 2, 1, "regcls")
                    value = math.nan if diverged else mse
                    records.append(Record(
                        key=f"{sampling}/f{function}/s{seed}/{model}", kind="sim1d",
                        config=sim_config(function, seed, model, sampling), seed=seed,
                        metrics={"train_mse": value, "val_mse": value, "test_mse": value,
                                 "class_top1": None if model == "reg" else 0.5,
                                 "diverged": diverged, "train_size": 1000}))
    with ResultsStore(folder) as store:
        store.write(records)


def make_stores(root: Path, seeds: int, data_seed: int) -> tuple[Path, Path]:
    """A small 1D store and a small real-data store (a 2-epoch run on a synthetic CSV)."""
    make_sim_store(root / "sim")
    rng = np.random.default_rng(data_seed)
    x = rng.uniform(0, 1, 1200)
    csv = root / "table.csv"
    pd.DataFrame({"x": x, "y": np.exp(2 * x) + rng.normal(0, 0.1, 1200)}).to_csv(csv,
                                                                                index=False)
    result = CliRunner().invoke(cli, ["realdata", "run", "--csv", str(csv), "--target", "y",
                                      "--seeds", str(seeds), "--epochs", "2", "--num-classes",
                                      "4", "--device", "cpu", "--out", str(root / "real")])
    assert result.exit_code == 0, result.output
    return root / "sim", root / "real"


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    sim, real = make_stores(tmp_path_factory.mktemp("rows"), seeds=1, data_seed=0)
    return {"sim": sim, "real": real}


def run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    if result.exit_code not in (0,):
        assert isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def check_refused(args: list, store: Path, key: str, message: str) -> None:
    """Exit 2, one ``Error:`` line (the last) naming the store file, the key and the
    problem."""
    code, output = run(*args)
    lines = output.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert code == 2, output
    assert len(errors) == 1 and lines[-1] == errors[0], output
    assert str(store / "results.sqlite") in errors[0] and repr(key) in errors[0], output
    assert message in errors[0], output


def first_key(folder: Path, where: str = "1") -> str:
    with sqlite3.connect(folder / "results.sqlite") as connection:
        return connection.execute(f"SELECT key FROM results WHERE {where} ORDER BY rowid "
                                  "LIMIT 1").fetchone()[0]


def damage(source: Path, target: Path, key: str, **columns) -> Path:
    """A copy of the store in ``source`` with ``columns`` of row ``key`` replaced; a
    callable value maps the stored value (JSON columns parsed) to the new one."""
    target.mkdir()
    shutil.copyfile(source / "results.sqlite", target / "results.sqlite")
    with sqlite3.connect(target / "results.sqlite") as connection:
        for column, value in columns.items():
            if callable(value):
                stored = connection.execute(f"SELECT {column} FROM results WHERE key = ?",
                                            (key,)).fetchone()[0]
                value = value(json.loads(stored))
                value = json.dumps(value, allow_nan=True)
            connection.execute(f"UPDATE results SET {column} = ? WHERE key = ?", (value, key))
    return target


def with_entry(name, value):
    return lambda stored: {**stored, name: value}


def without(name):
    return lambda stored: {k: v for k, v in stored.items() if k != name}


# ------------------------------------------------------------------ the committed stores
def test_every_committed_store_passes_the_row_contract():
    """The rules accept everything the package has written (NaN of empty shot groups and of
    diverged runs included), so they refuse only damage."""
    paths = sorted(glob.glob(str(REPO / "results" / "**" / "results.sqlite"), recursive=True))
    assert len(paths) >= 5
    for path in paths:
        with ResultsStore(Path(path).parent, create=False) as store:
            assert store.records(with_arrays=True)


def test_the_contract_names_what_the_writers_store(stores):
    from clsreg.realdata.evaluate import DEPTH_METRICS, METRICS, SHOTS
    from clsreg.simulate.grid import Run

    assert set(METRICS + DEPTH_METRICS) <= set(ERROR_METRICS + FRACTION_METRICS)
    assert tuple(SHOTS) == SHOT_GROUPS
    with ResultsStore(stores["sim"], create=False) as store:
        config = store.records()[0]["config"]
    assert set(SIM_CONFIG) <= set(Run.from_config(config).config)


def test_intact_stores_read_and_a_diverged_run_is_counted_not_refused(stores, tmp_path):
    code, output = run("simulate", "report", stores["sim"])
    assert code == 0, output
    summary = pd.read_csv(stores["sim"] / "summary.csv")
    severe = summary[summary["sampling"] == "severe"]
    assert severe["n_pairs"].tolist() == [11]  # 12 seeds × functions, one pair diverged
    code, output = run("realdata", "report", stores["real"])
    assert code == 0, output


# ------------------------------------------------------------------ 1D rows
SIM_DAMAGE = [
    ("metrics", "{not json", "not valid JSON"),
    ("config", '{"setting": ', "not valid JSON"),
    ("metrics", '"0.5"', "not a JSON object"),
    ("metrics", with_entry("test_mse", "0.5"), "'test_mse' is '0.5', not a number"),
    ("metrics", with_entry("test_mse", math.nan), "'test_mse' is nan, not a positive"),
    ("metrics", with_entry("val_mse", math.inf), "'val_mse' is inf, not a positive"),
    ("metrics", with_entry("test_mse", -0.01), "'test_mse' is -0.01, not a positive"),
    ("metrics", with_entry("test_mse", 0.0), "'test_mse' is 0.0, not a positive"),
    ("metrics", without("test_mse"), "no 'test_mse'"),
    ("metrics", with_entry("diverged", "no"), "'diverged' is 'no'"),
    ("metrics", with_entry("class_top1", 1.5), "'class_top1' is 1.5"),
    ("config", without("model"), "config has no 'model'"),
    ("config", with_entry("hidden", "6,15"), "'hidden' is '6,15', not a list of integers"),
    ("config", with_entry("num_classes", None), "'num_classes' is None, not an integer"),
    ("kind", "sim2d", "kind 'sim2d' is none of"),
    ("kind", "realdata", "it holds realdata results beside sim1d rows"),
]


@pytest.mark.parametrize("column, value, message", SIM_DAMAGE)
def test_a_damaged_1d_row_is_named_by_simulate_report(stores, tmp_path, column, value,
                                                      message):
    key = first_key(stores["sim"], "key LIKE 'severe/%'")
    folder = damage(stores["sim"], tmp_path / "store", key, **{column: value})
    check_refused(["simulate", "report", folder], folder, key, message)
    assert not (folder / "summary.csv").exists()


@pytest.mark.parametrize("command", [
    ["simulate", "report", "{store}"],
    ["simulate", "methods", "{store}"],
    ["simulate", "controls", "{store}"],
    ["theory", "check", "{store}"],
    ["figures", "simulate", "{store}", "--out", "{store}/figs"],
    ["figures", "all", "{store}", "--out", "{store}/figs"],
])
def test_a_nan_metric_is_refused_by_every_reading_command(stores, tmp_path, command):
    key = first_key(stores["sim"], "key LIKE 'severe/f0/s0/reg'")
    folder = damage(stores["sim"], tmp_path / "store", key,
                    metrics=with_entry("test_mse", math.nan))
    args = [a.replace("{store}", str(folder)) for a in command]
    check_refused(args, folder, key, "'test_mse' is nan")
    if command[:2] == ["figures", "simulate"]:
        assert not (folder / "figs").exists()


def test_a_diverged_run_may_store_nan_but_not_negative_errors(stores, tmp_path):
    key = "severe/f2/s1/regcls"
    folder = damage(stores["sim"], tmp_path / "store", key,
                    metrics=with_entry("test_mse", -1.0))
    check_refused(["simulate", "report", folder], folder, key, "'test_mse' is -1.0")


# ------------------------------------------------------------------ real-data rows
def _repack(**changes):
    def change(blob: bytes) -> bytes:
        with np.load(io.BytesIO(blob)) as archive:
            arrays = {name: archive[name] for name in archive.files}
        arrays.update(changes)
        arrays = {k: v for k, v in arrays.items() if v is not None}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()
    return change


def _arrays(folder: Path, key: str, change) -> None:
    with sqlite3.connect(folder / "results.sqlite") as connection:
        blob = connection.execute("SELECT arrays FROM results WHERE key = ?",
                                  (key,)).fetchone()[0]
        connection.execute("UPDATE results SET arrays = ? WHERE key = ?", (change(blob), key))


REAL_DAMAGE = [
    ("metrics", with_entry("overall_mse", math.nan), "'overall_mse' is nan"),
    ("metrics", with_entry("overall_mae", -2.0), "'overall_mae' is -2.0"),
    ("metrics", with_entry("few_mse", math.inf), "'few_mse' is inf"),
    ("metrics", with_entry("overall_count", 0), "no positive 'overall_count'"),
    ("metrics", with_entry("val_score", math.nan), "'val_score' is nan"),
    ("metrics", "[1, 2]", "metrics are list, not a JSON object"),
    ("config", without("experiment"), "config has no 'experiment'"),
    ("config", with_entry("n_test", "all"), "'n_test' is 'all'"),
    ("arrays", None, "its arrays have no 'prediction'"),
    ("arrays", b"PK\x03\x04 truncated", "its arrays do not decode"),
    ("arrays", _repack(prediction=np.arange(3.0)), "'prediction' array has shape (3,)"),
    ("arrays", _repack(target=None), "its arrays have no 'target'"),
    ("arrays", _repack(prediction=np.full(1, np.nan)), "array has shape"),
    ("kind", "sim1d", "it holds sim1d results beside realdata rows"),
]


@pytest.mark.parametrize("column, value, message", REAL_DAMAGE)
def test_a_damaged_real_row_is_named_by_realdata_report(stores, tmp_path, column, value,
                                                        message):
    key = first_key(stores["real"], "key LIKE '%regcls%'")
    if column == "arrays" and callable(value):
        folder = damage(stores["real"], tmp_path / "store", key)
        _arrays(folder, key, value)
    else:
        folder = damage(stores["real"], tmp_path / "store", key, **{column: value})
    check_refused(["realdata", "report", folder], folder, key, message)


def test_non_finite_predictions_are_refused(stores, tmp_path):
    key = first_key(stores["real"], "key LIKE '%regcls%'")
    folder = damage(stores["real"], tmp_path / "store", key)

    def nan_first(blob: bytes) -> bytes:
        with np.load(io.BytesIO(blob)) as archive:
            prediction = archive["prediction"].copy()
        prediction[0] = np.nan
        return _repack(prediction=prediction)(blob)

    _arrays(folder, key, nan_first)
    check_refused(["realdata", "report", folder], folder, key,
                  "'prediction' array is not all finite numbers")


def test_an_empty_shot_group_stores_nan_and_still_reads(stores, tmp_path):
    key = first_key(stores["real"])
    empty = {"few_count": 0, "few_mse": math.nan, "few_mae": math.nan, "few_gm": math.nan}
    folder = damage(stores["real"], tmp_path / "store", key,
                    metrics=lambda stored: {**stored, **empty})
    with ResultsStore(folder, create=False) as store:
        assert math.isnan(next(r for r in store.records() if r["key"] == key)
                          ["metrics"]["few_mse"])
    damage(folder, tmp_path / "bad", key, metrics=with_entry("few_mse", 0.5))
    with pytest.raises(ValueError, match="'few_mse' is 0.5 for a group without test"):
        ResultsStore(tmp_path / "bad", create=False).records()


# ------------------------------------------------------------------ checkpoints
def _checkpoint_run(tmp_path: Path):
    from dataclasses import replace

    from clsreg.core.loop import TargetCoding, TargetScaler, train_loop
    from clsreg.core.methods import get_method
    from clsreg.core.recipe import TrainRecipe
    from torch.utils.data import TensorDataset

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, generator=generator)
    y = x.sum(dim=1)
    data = TensorDataset(x, y)
    coding = TargetCoding(TargetScaler.fit(y.numpy(), log=False),
                          np.linspace(0.0, 3.0, 5))
    method = get_method("reg")

    class Net(torch.nn.Module):
        def __init__(self, width=8):
            super().__init__()
            self.body = torch.nn.Linear(3, width)
            self.out = torch.nn.Linear(width, 1)

        def forward(self, inputs):
            return self.out(torch.relu(self.body(inputs))).squeeze(-1), None

    recipe = TrainRecipe(epochs=2, batch_size=16)

    def train(checkpoint, width=8, epochs=2):
        torch.manual_seed(0)
        return train_loop(Net(width), method, data, data, coding,
                          replace(recipe, epochs=epochs), 0, torch.device("cpu"),
                          checkpoint, progress=False)
    return train


@pytest.mark.parametrize("case, message", [
    ("a dict", "it is not a clsreg training checkpoint"),
    ("other model", "its weights are not those of this run's model"),
    ("epoch past the run", "its epoch 5 (best 0) is not one of this run's 2"),
    ("steps as text", "its loss curve or best score is not numbers"),
    ("best weights missing", "its best weights are not those"),
    ("optimizer of another model", "its state does not load"),
])
def test_a_checkpoint_of_wrong_content_is_one_error_naming_it(tmp_path, case, message):
    from clsreg.analysis.errors import InputError

    train = _checkpoint_run(tmp_path)
    checkpoint = tmp_path / "run.pt"
    train(checkpoint, epochs=1)  # a real checkpoint after epoch 0
    state = torch.load(checkpoint, weights_only=True)
    if case == "a dict":
        state = {"weights": torch.zeros(3)}
    elif case == "other model":
        other = tmp_path / "other.pt"
        train(other, width=4, epochs=1)
        state["model"] = torch.load(other, weights_only=True)["model"]
    elif case == "epoch past the run":
        state["epoch"] = 5
    elif case == "steps as text":
        state["steps"] = ["0.5"]
    elif case == "best weights missing":
        state["best_model"] = None
    else:
        other = tmp_path / "other.pt"
        train(other, width=4, epochs=1)
        state["optimizer"] = torch.load(other, weights_only=True)["optimizer"]
        state["optimizer"]["param_groups"][0]["params"] = [0, 1]
    torch.save(state, checkpoint)
    with pytest.raises(InputError) as caught:
        train(checkpoint)
    assert str(checkpoint) in str(caught.value) and message in str(caught.value)
    assert "delete it to restart that run" in str(caught.value)


def test_a_good_checkpoint_still_resumes_to_the_uninterrupted_result(tmp_path):
    train = _checkpoint_run(tmp_path)
    straight = train(None)
    checkpoint = tmp_path / "run.pt"
    train(checkpoint, epochs=1)
    resumed = train(checkpoint)
    assert resumed["steps"] == straight["steps"]
    assert resumed["best_epoch"] == straight["best_epoch"]
