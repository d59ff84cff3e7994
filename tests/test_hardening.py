"""Bad input, as a new user gives it, to every command: one ``Error:`` line, the right exit
code (2: input or configuration, 1: failure at run time), no traceback, and nothing changed
or left behind where a command only reads or fails before its first result.

Each case names the class of issue "Hardening" it covers (1 corrupt stores … 10 exit codes).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from clsreg.analysis.errors import InputError
from clsreg.cli import cli
from clsreg.simulate.grid import grid_from_mapping
from clsreg.simulate.sweep import run_sweep

TINY = {"settings": ["clean"], "samplings": ["uniform", "severe"], "functions": [0, 1],
        "seeds": [0], "num_classes": [4], "epochs": 2, "num_points": 1500, "batch_size": 64}
# A valid 1D row's config (the entries analysis.rows requires), for rows made by hand.
SIM_CONFIG = {"setting": "clean", "sampling": "severe", "function": 0, "function_seed": 0,
              "data_seed": 2732, "model_seed": 0, "model": "reg", "num_classes": 0,
              "binning": "uniform", "lam": 0.0, "lr": 1e-3, "optimizer": "adam",
              "weight_decay": 1e-3, "hidden": [6, 15], "epochs": 80, "batch_size": 256,
              "num_points": 60000, "dtype": "float32", "device": "cpu"}
TINY_TOML = ('settings = ["clean"]\nsamplings = ["uniform", "severe"]\nfunctions = [0, 1]\n'
             'seeds = [0]\nnum_classes = [4]\nepochs = 2\nnum_points = 1500\nbatch_size = 64\n')


def _table(rows: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, rows)
    return pd.DataFrame({"x": x, "kind": rng.choice(["a", "b"], rows),
                         "y": np.exp(2 * x) + rng.normal(0, 0.1, rows)})


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    """A finished 1D store, a real-data store, and broken or foreign files beside them."""
    root = tmp_path_factory.mktemp("stores")
    run_sweep(grid_from_mapping(TINY), root / "sim", device="cpu", population_size=8,
              show_progress=False)
    csv = root / "table.csv"
    _table().to_csv(csv, index=False)
    result = CliRunner().invoke(cli, ["realdata", "run", "--csv", str(csv), "--target", "y",
                                      "--seeds", "1", "--epochs", "2", "--num-classes", "4",
                                      "--device", "cpu", "--out", str(root / "real")])
    assert result.exit_code == 0, result.output
    good = (root / "sim" / "results.sqlite").read_bytes()
    broken = bytearray(good)
    middle = len(broken) // 2
    broken[middle:middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000,
                                                                     np.uint8).tobytes()
    files = {"corrupt": bytes(broken), "truncated": good[:len(good) // 3],
             "garbage": np.random.default_rng(1).integers(0, 256, 8192, np.uint8).tobytes(),
             "empty": b""}
    paths = {"sim": root / "sim", "real": root / "real", "csv": csv, "root": root}
    for name, content in files.items():
        (root / name).mkdir()
        (root / name / "results.sqlite").write_bytes(content)
        paths[name] = root / name
    (root / "foreign").mkdir()
    with sqlite3.connect(root / "foreign" / "results.sqlite") as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
    paths["foreign"] = root / "foreign"
    return paths


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def check(args: list, code: int, message: str, unchanged: Path | None = None):
    """Run the CLI; assert exit ``code``, one ``Error:`` line containing ``message``, no
    traceback, and (for ``unchanged``) the folder's files byte for byte as before."""
    before = _digest(unchanged) if unchanged is not None else None
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert lines[-1] == errors[0]
    if unchanged is not None:
        assert _digest(unchanged) == before, "a command that failed changed the folder"
    return result


# --------------------------------------------------------------- 1. corrupt stores
@pytest.mark.parametrize("name", ["corrupt", "truncated", "garbage"])
@pytest.mark.parametrize("command", [
    ["simulate", "report", "{store}"],
    ["theory", "check", "{store}"],
    ["figures", "simulate", "{store}", "--out", "{store}/figs"],
    ["realdata", "report", "{store}"],
    ["simulate", "run", "--preset", "smoke", "--device", "cpu", "--out", "{store}"],
])
def test_corrupt_store_is_one_error_from_every_command(stores, name, command):
    store = stores[name]
    args = [a.replace("{store}", str(store)) for a in command]
    check(args, 2, "unreadable or corrupt", unchanged=store)
    assert not (store / "figs").exists()


# --------------------------------------------------------------- 2. reading changes nothing
@pytest.mark.parametrize("name, command, message", [
    ("empty", ["simulate", "report"], "is not a clsreg results store"),
    ("foreign", ["simulate", "report"], "is not a clsreg results store"),
    ("foreign", ["theory", "check"], "is not a clsreg results store"),
    ("foreign", ["realdata", "report"], "is not a clsreg results store"),
    ("empty", ["realdata", "report"], "is not a clsreg results store"),
    ("sim", ["realdata", "report"], "holds no real-data results"),
    ("real", ["simulate", "report"], "holds no 1D runs"),
    ("real", ["theory", "check"], "holds no 'sim1d' rows"),
])
def test_reading_commands_never_change_what_they_read(stores, name, command, message):
    check([*command, stores[name]], 2, message, unchanged=stores[name])


def test_failed_commands_leave_no_folder_or_store(stores, tmp_path):
    out = tmp_path / "figs"
    check(["figures", "simulate", stores["real"], "--out", out], 2, "holds no 1D runs")
    assert not out.exists()
    out = tmp_path / "theory_figs"
    check(["figures", "theory", "--store", stores["foreign"], "--out", out], 2,
          "not a clsreg results store")
    assert not out.exists()
    out = tmp_path / "a" / "b"  # diverges at once: a run-time failure, and nothing is kept
    check(["realdata", "run", "--csv", stores["csv"], "--target", "y", "--seeds", "1",
           "--epochs", "2", "--lr", "1e30", "--device", "cpu", "--out", out], 1,
          "training diverged")
    assert not (tmp_path / "a").exists()
    long = tmp_path / ("x" * 300) / "out"
    check(["simulate", "run", "--preset", "smoke", "--device", "cpu", "--out", long], 2,
          "File name too long")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------- 3. unreadable input files
@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\x02\xff\xfe" * 50, "not UTF-8 text"),
    ("epochs = 2\n".encode("utf-16"), "not UTF-8 text"),
    (b"epochs = [2\n", "not valid TOML"),
])
def test_unreadable_grid_configs(tmp_path, content, message):
    config = tmp_path / "grid.toml"
    config.write_bytes(content)
    check(["simulate", "run", "--config", config, "--out", tmp_path / "out"], 2, message)
    assert not (tmp_path / "out").exists()


def test_config_that_is_missing_or_a_folder(tmp_path):
    check(["simulate", "run", "--config", tmp_path / "none.toml", "--out", tmp_path / "o"], 2,
          "no such config file")
    check(["simulate", "run", "--config", tmp_path, "--out", tmp_path / "o"], 2,
          "is a directory")


@pytest.mark.parametrize("content", [
    np.random.default_rng(3).integers(0, 256, 4096, np.uint8).tobytes(),
    "setting,sampling\nclean,mild\n".encode("utf-16"),
], ids=["random-bytes", "utf-16"])
def test_unreadable_csv_inputs_name_the_file(stores, tmp_path, content):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    check(["theory", "gap", "--samples", bad, "--column", "y"], 2, str(bad))
    check(["theory", "gap", "--features", bad, "--target", "y"], 2, str(bad))
    check(["realdata", "run", "--csv", bad, "--target", "y", "--out", tmp_path / "o"], 2,
          str(bad))
    check(["realdata", "run", "--csv", tmp_path, "--target", "y", "--out", tmp_path / "o"], 2,
          "is a directory")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------- 4. extreme numbers
@pytest.fixture()
def targets(tmp_path) -> Path:
    path = tmp_path / "targets.csv"
    pd.DataFrame({"y": np.random.default_rng(0).exponential(1.0, 500)}).to_csv(path,
                                                                                index=False)
    return path


@pytest.mark.parametrize("extra, message", [
    # A subnormal σ: "outside [...]", or "must be positive" where the process flushes
    # subnormals to zero (a sweep earlier in this test process does).
    (["--sigma", "1e-320"], "sigma"),
    (["--sigma", "1e300"], "outside"),
    (["--sigma", "nan"], "sigma must be positive and finite"),
    (["--sigma", "inf"], "sigma must be positive and finite"),
    (["--sigma", "-1e308"], "sigma must be positive and finite"),
    (["--range", "-1e308", "1e308"], "too wide"),
    (["--range", "nan", "1"], "finite A and B"),
])
def test_extreme_numbers_in_theory_gap(targets, extra, message):
    check(["theory", "gap", "--samples", targets, "--column", "y", *extra], 2, message)


def test_huge_targets_and_too_few_targets(tmp_path):
    path = tmp_path / "t.csv"
    huge = np.random.default_rng(0).uniform(-1.7, 1.7, 200) * 1e308
    huge[:2] = -1.7e308, 1.7e308
    pd.DataFrame({"y": huge}).to_csv(path, index=False)
    check(["theory", "gap", "--samples", path, "--column", "y"], 2, "too wide")
    pd.DataFrame({"y": np.arange(10.0)}).to_csv(path, index=False)
    check(["theory", "gap", "--samples", path, "--column", "y"], 2, "at least 100")


# --------------------------------------------------------------- 5. outputs in the way
def test_outputs_in_the_way_fail_before_anything_is_written(stores, tmp_path):
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / "results.sqlite").write_bytes((stores["sim"] / "results.sqlite").read_bytes())
    (sim / "summary.csv").mkdir()
    check(["simulate", "report", sim], 1, "summary.csv: a folder of that name is in the way",
          unchanged=sim)
    real = tmp_path / "real"
    real.mkdir()
    (real / "results.sqlite").write_bytes((stores["real"] / "results.sqlite").read_bytes())
    (real / "report.md").mkdir()
    check(["realdata", "report", real], 1, "report.md: a folder of that name is in the way",
          unchanged=real)
    assert sorted(p.name for p in real.iterdir()) == ["report.md", "results.sqlite"]
    (real / "report.md").rmdir()
    (real / "errors_per_bin_natural.png").mkdir()
    check(["realdata", "report", real], 1, "errors_per_bin_natural.png", unchanged=real)
    assert not (real / "summary.csv").exists()


# --------------------------------------------------------------- 6. mixed settings
@pytest.mark.parametrize("change, field", [
    ("epochs = 3\n", "epochs 2 stored, 3 asked"),
    ("weight_decay = 0.0\n", "weight_decay"),
    ("[lr]\nclean = 0.01\n", "lr for clean/adam"),
    ("[lam]\nclean = 5.0\n", "lam for clean/regcls"),
])
def test_a_sweep_with_another_recipe_is_refused(stores, tmp_path, change, field):
    config = tmp_path / "grid.toml"
    lines = [line for line in TINY_TOML.splitlines(keepends=True)
             if not line.startswith(change.split()[0])]
    config.write_text("".join(lines) + change)
    check(["simulate", "run", "--config", config, "--device", "cpu", "--out", stores["sim"]],
          2, field, unchanged=stores["sim"])


def test_a_sweep_with_another_dtype_is_refused(stores, tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(TINY_TOML)
    check(["simulate", "run", "--config", config, "--dtype", "float64", "--device", "cpu",
           "--out", stores["sim"]], 2, "dtype float32 stored, float64 asked",
          unchanged=stores["sim"])


def test_simulate_and_realdata_stores_are_not_shared(stores):
    check(["realdata", "run", "--csv", stores["csv"], "--target", "y", "--seeds", "1",
           "--device", "cpu", "--out", stores["sim"]], 2, "holds sim1d results",
          unchanged=stores["sim"])
    check(["simulate", "run", "--preset", "smoke", "--device", "cpu", "--out", stores["real"]],
          2, "holds realdata results", unchanged=stores["real"])


# --------------------------------------------------------------- 8. what real data accepts
def test_real_tables_that_cannot_be_trained_on(tmp_path):
    path = tmp_path / "t.csv"
    _table().assign(y=3.0).to_csv(path, index=False)
    check(["realdata", "run", "--csv", path, "--target", "y", "--out", tmp_path / "o"], 2,
          "is constant")
    _table().assign(y=lambda f: 1e6 + 1e-6 * f["x"]).to_csv(path, index=False)
    check(["realdata", "run", "--csv", path, "--target", "y", "--out", tmp_path / "o"], 2,
          "is constant")
    assert not (tmp_path / "o").exists()


def test_dropped_rows_and_id_columns_are_reported(tmp_path):
    table = _table(1500)
    table.insert(0, "rownames", np.arange(1, 1501))
    table.loc[:9, "y"] = np.nan
    table.loc[10, "y"] = np.inf
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["realdata", "run", "--csv", str(path), "--target", "y",
                                      "--seeds", "1", "--epochs", "1", "--num-classes", "4",
                                      "--device", "cpu", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "Warning: column 'rownames' looks like a row ID" in result.output
    assert "Note: 11 rows without a finite target were left out (1489 used)" in result.output


# --------------------------------------------------------------- 9. interrupts and leftovers
def test_ctrl_c_says_what_is_saved(monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("clsreg.simulate.sweep.run_sweep", interrupted)
    result = CliRunner().invoke(cli, ["simulate", "run", "--preset", "smoke", "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 130
    assert "Interrupted" in result.output and "rerun the same command to resume" in result.output
    assert "Traceback" not in result.output


def test_temp_files_of_a_killed_writer_are_swept_and_outputs_get_the_umask(stores, tmp_path):
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / "results.sqlite").write_bytes((stores["sim"] / "results.sqlite").read_bytes())
    stale, fresh = sim / ".summary.csv.k1ll3d.csv", sim / ".summary.csv.wr1t1ng.csv"
    stale.write_text("half")
    fresh.write_text("in progress")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    result = CliRunner().invoke(cli, ["simulate", "report", str(sim), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and fresh.exists()  # a recent one may belong to a live writer
    umask = os.umask(0o022)
    os.umask(umask)
    assert (sim / "summary.csv").stat().st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------- 10. exit codes everywhere
@pytest.mark.parametrize("args, code, message", [
    (["realdata", "run", "--dataset", "titanic"], 2, "unknown dataset 'titanic'"),
    (["realdata", "run", "--dataset", "hotel_rates", "--lr", "nan"], 2,
     "'nan' is not a finite number"),
    (["realdata", "run", "--dataset", "hotel_rates", "--lam", "inf"], 2,
     "'inf' is not a finite number"),
    (["realdata", "run", "--dataset", "hotel_rates", "--loss", "l3"], 2, "regression loss"),
    (["realdata", "run", "--dataset", "hotel_rates", "--methods", "reg,magic"], 2,
     "unknown method 'magic'"),
    (["realdata", "run", "--dataset", "hotel_rates", "--device", "gpu"], 2, "unknown device"),
    (["realdata", "run", "--csv", "/nonexistent/t.csv", "--target", "y"], 2, "no such file"),
    (["realdata", "run", "--seeds", "0", "--dataset", "hotel_rates"], 2, "--seeds"),
    (["simulate", "run", "--preset", "huge"], 2, "unknown preset 'huge'"),
    (["simulate", "run", "--preset", "smoke", "--methods", ""], 2, "no method given"),
    (["simulate", "run", "--preset", "smoke", "--dtype", "float16"], 2, "float16"),
    (["simulate", "data", "--setting", "dirty"], 2, "dirty"),
    (["theory", "predict", "--sigma-fraction", "nan"], 2, "'nan' is not a finite number"),
    (["realdata", "series", "--lr", "inf"], 2, "'inf' is not a finite number"),
])
def test_usage_and_configuration_errors_exit_2(tmp_path, args, code, message):
    out = tmp_path / "out"
    check([*args, "--out", out], code, message)
    assert not out.exists()


# --------------------------------------------------------------- 7. concurrent runs
def test_two_sweeps_on_one_folder_train_every_model_exactly_once(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    config = tmp_path / "grid.toml"
    config.write_text(TINY_TOML.replace("epochs = 2", "epochs = 150")
                      .replace("num_points = 1500", "num_points = 3000"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "clsreg", "simulate", "run", "--config", str(config),
               "--device", "cpu", "--population-size", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(root)}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 300
    rows = 0
    while rows == 0 and time.monotonic() < deadline:  # the first has started writing
        time.sleep(0.05)
        if (out / "results.sqlite").exists():
            with sqlite3.connect(out / "results.sqlite") as connection:
                try:
                    rows = connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    rows = 0
    assert first.poll() is None, "the first run ended before the second could start"
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert first.poll() is None, "the first run ended while the second started"
    first_out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert "trained 8 of 8 models" in first_out
    # The second run started while the first held the folder: refused, nothing trained.
    assert second.returncode == 1, second.stderr
    assert second.stderr.strip().splitlines()[-1] == (
        f"Error: another clsreg run is writing to {out}; wait for it to finish or use "
        "another --out")
    with sqlite3.connect(out / "results.sqlite") as connection:
        keys = [row[0] for row in connection.execute("SELECT key FROM results")]
    assert len(keys) == len(set(keys)) == 8
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "trained 0 of 8 models" in again.stdout


# --------------------------------------------------------------- 5b. nothing destroyed
def test_an_output_that_is_not_a_regular_file_is_refused_and_kept(tmp_path):
    """An atomic write renames over its target: a pipe (like /dev/null, a device) would be
    replaced by a regular file, so it is refused and left as it was."""
    import stat

    pipe = tmp_path / "bound.csv"
    os.mkfifo(pipe)
    check(["theory", "bound", "--out", pipe], 2, "not a regular file")
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)


def test_a_symlinked_output_is_followed_and_the_link_kept(tmp_path):
    from clsreg.analysis.files import write_text_atomic

    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_make_fixture_refuses_a_folder_that_holds_data(tmp_path):
    data = tmp_path / "imdb"
    data.mkdir()
    (data / "imdb_wiki.csv").write_text("age,path,split\n30,a.jpg,train\n")
    check(["realdata", "make-fixture", "--dataset", "imdb-wiki-dir", "--out", data], 2,
          "is not empty")
    assert (data / "imdb_wiki.csv").read_text() == "age,path,split\n30,a.jpg,train\n"
    assert sorted(p.name for p in data.iterdir()) == ["imdb_wiki.csv"]


def test_a_symlinked_store_is_followed_and_never_deleted(tmp_path):
    from clsreg.analysis.store import Record, ResultsStore

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    link = out / "results.sqlite"
    link.symlink_to(elsewhere / "store.sqlite")  # dangling until a run writes
    with pytest.raises(RuntimeError), ResultsStore(out):
        raise RuntimeError("a run that fails before its first result")
    assert link.is_symlink() and not (elsewhere / "store.sqlite").exists()
    with ResultsStore(out) as store:
        store.write([Record(key="k", kind="sim1d", config=SIM_CONFIG, seed=0,
                            metrics={"train_mse": 1.0, "val_mse": 1.0, "test_mse": 1.0,
                                     "diverged": False})])
    assert link.is_symlink() and (elsewhere / "store.sqlite").stat().st_size > 0
    with ResultsStore(out, create=False) as store:
        assert [r["key"] for r in store.records()] == ["k"]


# --------------------------------------------------------------- 5c. nothing read outside
def test_age_rows_naming_files_outside_the_data_folder_are_refused(tmp_path):
    from clsreg.realdata.agedir import load_age_dataset, make_age_fixture

    data = make_age_fixture(tmp_path / "imdb", "imdb-wiki-dir")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((next(data.rglob("*.jpg"))).read_bytes())  # a readable image outside
    table = data / "imdb_wiki.csv"
    original = table.read_text()
    for row in ("30,../secret.jpg,train", f"30,{secret},train"):
        table.write_text(original + row + "\n")
        with pytest.raises(InputError, match="lies outside the data folder"):
            load_age_dataset(data, "imdb-wiki-dir")
    link = data / "link.jpg"
    link.symlink_to(secret)
    table.write_text(original + "30,link.jpg,train\n")
    check(["realdata", "run", "--dataset", "imdb-wiki-dir", "--data-dir", data,
           "--out", tmp_path / "out"], 2, "link.jpg lies outside the data folder")


def test_nyud2_rows_cannot_climb_out_of_the_data_folder(tmp_path):
    from clsreg.realdata.nyud2 import load_nyud2, make_nyud2_fixture

    data = make_nyud2_fixture(tmp_path / "nyu")
    pairs = data / "nyu2_train.csv"
    rows = pairs.read_text().splitlines()
    rows[0] = "data/../../../etc/passwd," + rows[0].split(",")[1]
    pairs.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="lies outside the data folder"):
        load_nyud2(data)


def test_breakfast_feature_files_linked_out_of_the_folder_are_refused(tmp_path):
    from clsreg.realdata.breakfast import load_breakfast, make_breakfast_fixture

    data = make_breakfast_fixture(tmp_path / "bf")
    outside = tmp_path / "private.txt"
    outside.write_text("first line of a private file\n")
    folder = next(p.parent for p in data.rglob("*.txt"))
    (folder / "P99_cam01_P99_tea.txt").symlink_to(outside)
    with pytest.raises(InputError, match="lies outside the data folder") as refused:
        load_breakfast(data)
    assert "private file" not in str(refused.value)
