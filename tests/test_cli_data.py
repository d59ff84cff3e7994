"""The foundation commands from the outside: outputs, summary line and bad input."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from clsreg.cli import cli
from clsreg.simulate.data import DATA_SEEDS, make_dataset


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_simulate_data_writes_the_three_splits_and_the_figure(tmp_path):
    out = tmp_path / "d"
    result = run("simulate", "data", "--setting", "clean", "--sampling", "severe",
                 "--function", "0", "--seed", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["data.png", "test.csv", "train.csv",
                                                     "val.csv"]
    assert "train 20000, val 20000, test 20000" in result.output
    ratio = float(result.output.split("imbalance ratio (64 bins) ")[1].split()[0])
    assert 200 <= ratio <= 450
    expected = make_dataset(0, "clean", "severe", DATA_SEEDS[0])
    train = np.loadtxt(out / "train.csv", delimiter=",", skiprows=1)
    assert (out / "train.csv").read_text().startswith("x,y\n")
    np.testing.assert_array_equal(train[:, 0], expected.train.x)  # full precision round trip
    np.testing.assert_allclose(train[:, 1], expected.function(train[:, 0]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("args, code, message", [
    (["--function", "-1"], 2, "--function"),
    (["--sampling", "extreme"], 2, "'extreme' is not one of"),
    (["--seed", "100"], 2, "--seed"),
])
def test_usage_errors_exit_2_and_write_nothing(tmp_path, args, code, message):
    out = tmp_path / "never"
    result = run("simulate", "data", *args, "--out", str(out))
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unwritable_out_is_one_line_and_no_files(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "clsreg", "simulate", "data", "--out",
                             str(blocker / "sub")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: cannot create output folder")
    assert len(result.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "not a folder"


def test_figures_data_writes_png_and_pdf(tmp_path):
    result = run("figures", "data", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["functions.pdf", "functions.png", "samplings.pdf", "samplings.png",
                     "settings.pdf", "settings.png"]


def test_version_and_help_list_real_commands():
    version = subprocess.run(["clsreg", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "clsreg, version" in version.stdout
    listing = run("--help").output
    assert "simulate" in listing and "figures" in listing
