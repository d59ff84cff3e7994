"""The image and video benchmarks end to end on their format-exact fixtures: metrics by hand,
one-epoch runs with reports, resume from a checkpoint, DDP against one process, bad input."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from clsreg.analysis.store import ResultsStore
from clsreg.cli import cli
from clsreg.realdata.evaluate import DEPTH_METRICS, ShotConfig, assign_shots, grouped_metrics
from clsreg.realdata.nyud2 import bin_shot, depth_bin

SCRIPTS = Path(__file__).parent / "scripts"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# ------------------------------------------------------------------ metrics by hand
def test_depth_metrics_per_shot_by_hand():
    # Bins: 1.0 m → 10 (many), 2.0 → 20 (many), 0.75 → 7 (medium), 6.5 → 65 (few).
    target = np.array([1.0, 2.0, 0.75, 6.5])
    prediction = np.array([1.2, 2.0, 1.5, 5.0])
    shots = bin_shot(depth_bin(target))
    assert shots.tolist() == ["many", "many", "medium", "few"]
    table = grouped_metrics(prediction, target, shots, DEPTH_METRICS)
    # many: errors 0.2, 0 → RMSE √(0.04/2); ratios 1.2, 1 → δ1 = 1.
    assert table["many"]["rmse"] == pytest.approx(np.sqrt(0.02))
    assert table["many"]["delta1"] == 1.0
    assert table["many"]["abs_rel"] == pytest.approx((0.2 / 1.0 + 0) / 2)
    # medium: ratio 2 exceeds 1.25, 1.5625 and 1.953: δ1 = δ3 = 0.
    assert table["medium"]["delta1"] == table["medium"]["delta3"] == 0.0
    assert table["medium"]["lg10"] == pytest.approx(np.log10(2.0))
    # few: ratio 1.3 → δ1 fails, δ2 passes.
    assert (table["few"]["delta1"], table["few"]["delta2"]) == (0.0, 1.0)
    assert table["few"]["mae"] == pytest.approx(1.5)
    # overall RMSE over the four: √((0.04 + 0 + 0.5625 + 2.25) / 4).
    assert table["overall"]["rmse"] == pytest.approx(np.sqrt(2.8525 / 4))
    assert table["overall"]["delta1"] == pytest.approx(2 / 4)


def test_age_metrics_per_shot_by_hand():
    edges = np.arange(0, 202, dtype=float)
    train = np.concatenate([np.full(150, 30.0), np.full(50, 50.0), np.full(5, 80.0)])
    test = np.array([30.0, 30.0, 50.0, 80.0, 90.0])
    shots = assign_shots(test, train, edges, ShotConfig())
    assert shots.tolist() == ["many", "many", "medium", "few", "few"]  # 90: no training image
    prediction = test + np.array([2.0, -8.0, 3.0, 1.0, -4.0])
    table = grouped_metrics(prediction, test, shots, ("mae", "mse", "gm"))
    assert table["many"]["mae"] == pytest.approx(5.0)
    assert table["many"]["gm"] == pytest.approx(np.sqrt(2.0 * 8.0))
    assert table["few"]["mse"] == pytest.approx((1 + 16) / 2)
    assert table["few"]["gm"] == pytest.approx(2.0)
    assert table["medium"]["count"] == 1 and table["medium"]["mae"] == 3.0


# ------------------------------------------------------------------ fixtures end to end
RUNS = {  # dataset → extra options of a one-epoch --limit run on its fixture
    "imdb-wiki-dir": ["--limit", 12, "--image-size", 32, "--batch-size", 4],
    "agedb-dir": ["--limit", 12, "--image-size", 32, "--batch-size", 4],
    "nyud2-dir": ["--limit", 4, "--image-size", 32, "--batch-size", 2],
    "breakfast": ["--split", "s1,s3"],
    "fashion-rotation": ["--limit", 24, "--batch-size", 8],
}
METRIC_COUNT = {"nyud2-dir": 7, "breakfast": 2}


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    done = {}
    for dataset, options in RUNS.items():
        data = root / f"data-{dataset}"
        made = invoke("realdata", "make-fixture", "--dataset", dataset, "--out", data)
        assert made.exit_code == 0, made.output
        out = root / f"out-{dataset}"
        args = ["realdata", "run", "--dataset", dataset, "--data-dir", data, "--epochs", 1,
                "--seeds", 2, "--workers", 0, "--out", out, *options]
        first, again = invoke(*args), invoke(*args)
        report = invoke("realdata", "report", out)
        done[dataset] = (data, out, first, again, report)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(RUNS))
def test_one_epoch_fixture_run_gives_a_per_shot_report(fixture_runs, dataset):
    _, out, first, again, report = fixture_runs[dataset]
    assert first.exit_code == 0, first.output
    parts = 2 if dataset == "breakfast" else 1  # two Breakfast splits
    assert f"{4 * parts} runs trained, 0 already stored" in first.output
    assert f"0 runs trained, {4 * parts} already stored" in again.output  # resumed, nothing redone
    assert report.exit_code == 0, report.output
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == parts * 4 * METRIC_COUNT.get(dataset, 3)  # 4 shots × metrics
    overall = summary[summary["shot"] == "overall"]
    assert overall["n_test"].gt(0).all()
    assert overall["p_sample"].between(0, 1).all() and overall["p_seed"].between(0, 1).all()
    assert overall["p_sample_holm"].ge(overall["p_sample"]).all()
    assert (out / "report.md").read_text().count("| overall ") == parts * METRIC_COUNT.get(
        dataset, 3)
    assert not (out / "checkpoints").exists()  # removed once every run is stored
    with ResultsStore(out, create=False) as store:
        records = store.records("realdata", with_arrays=True)
    for record in records:
        arrays = record["arrays"]
        errors = arrays["prediction"] - arrays["target"]
        assert np.isfinite(arrays["prediction"]).all()
        assert record["metrics"]["overall_mae"] == pytest.approx(np.abs(errors).mean())
    if dataset == "breakfast":
        assert "RMSE mean ± std over activities" in report.output


@pytest.mark.slow
def test_nyud2_run_scores_the_balanced_mask(fixture_runs):
    data, out, *_ = fixture_runs["nyud2-dir"]
    mask = np.load(data / "test_balanced_mask.npy")[:4]
    with ResultsStore(out, create=False) as store:
        record = store.records("realdata", with_arrays=True)[0]
    target = record["arrays"]["target"]
    assert target.size == int(mask.sum())
    assert record["arrays"]["shot"].tolist() == bin_shot(depth_bin(target)).tolist()
    assert record["config"]["metrics"] == list(DEPTH_METRICS)


def test_a_run_resumed_from_its_checkpoint_ends_like_an_uninterrupted_one(tmp_path):
    from clsreg.core.loop import train_loop
    from clsreg.realdata.sources import make_config, make_fixture, parts_of

    data = make_fixture("breakfast", tmp_path / "data")
    config = make_config("breakfast", data_dir=data, splits="s1", lr=1e-3)
    task = parts_of(config)[0].tasks[0]
    method = config.method("regcls")

    def train(epochs, checkpoint):
        model = task.build(config.num_classes, 0)
        recipe = replace(config.recipe, epochs=epochs)
        info = train_loop(model, method, task.train, task.val, task.coding, recipe, 0,
                          torch.device("cpu"), checkpoint, progress=False)
        return model.state_dict(), info

    straight, straight_info = train(3, None)
    checkpoint = tmp_path / "run.pt"
    train(1, checkpoint)  # "interrupted" after one epoch
    resumed, resumed_info = train(3, checkpoint)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert resumed_info["steps"] == straight_info["steps"]
    assert resumed_info["best_epoch"] == straight_info["best_epoch"]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    single.mkdir(), ddp.mkdir()
    script = str(SCRIPTS / "ddp_train.py")
    subprocess.run([sys.executable, script, single], check=True, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2", script, ddp], check=True, timeout=300,
                   capture_output=True)
    one = torch.load(single / "rank0.pt")
    ranks = [torch.load(ddp / f"rank{r}.pt") for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    # DDP keeps the replicas identical: every weight equal, bit for bit.
    assert all(torch.equal(ranks[0]["state"][k], ranks[1]["state"][k]) for k in one["state"])
    # The same global batches (DistributedSampler, one permutation): the averaged half-batch
    # gradients equal the full-batch gradient up to float32 summation order (~1e-7 per
    # step); 24 Adam steps stay within 1e-5 relative.
    assert len(ranks[0]["steps"]) == len(one["steps"]) == 24
    np.testing.assert_allclose(ranks[0]["steps"], one["steps"], rtol=1e-5)
    for key, value in one["state"].items():
        np.testing.assert_allclose(ranks[0]["state"][key].numpy(), value.numpy(), atol=1e-5)


# ------------------------------------------------------------------ bad input
def test_benchmark_bad_input_is_one_line(tmp_path):
    missing = invoke("realdata", "run", "--dataset", "nyud2-dir", "--out", tmp_path / "o")
    assert missing.exit_code == 2 and "--data-dir" in missing.output
    data = tmp_path / "imdb"
    invoke("realdata", "make-fixture", "--dataset", "imdb-wiki-dir", "--out", data)
    csv = data / "imdb_wiki.csv"
    csv.write_text(csv.read_text().replace("age,path,split", "age,file,split", 1))
    bad = invoke("realdata", "run", "--dataset", "imdb-wiki-dir", "--data-dir", data,
                 "--out", tmp_path / "o2")
    assert bad.exit_code == 2
    assert bad.output.startswith("Error: ") and "imdb_wiki.csv" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "o2").exists()  # checked before anything is written
    table_only = invoke("realdata", "run", "--dataset", "hotel_rates", "--limit", 3,
                        "--out", tmp_path / "o3")
    assert table_only.exit_code == 2
    assert "--limit does not apply to hotel_rates" in table_only.output


def test_an_unreadable_image_in_training_is_one_line(tmp_path):
    data = tmp_path / "imdb"
    invoke("realdata", "make-fixture", "--dataset", "imdb-wiki-dir", "--out", data)
    rows = pd.read_csv(data / "imdb_wiki.csv")
    first_train = data / rows[rows["split"] == "train"]["path"].iloc[0]
    first_train.write_bytes(b"not a jpeg")
    result = invoke("realdata", "run", "--dataset", "imdb-wiki-dir", "--data-dir", data,
                    "--epochs", 1, "--seeds", 1, "--limit", 4, "--image-size", 16,
                    "--workers", 1, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if "Error: " in line]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].split("Error: ", 1)[1].startswith(f"unreadable image {first_train}")


def test_a_folder_refuses_a_run_with_other_settings(tmp_path):
    data = tmp_path / "bf"
    invoke("realdata", "make-fixture", "--dataset", "breakfast", "--out", data)
    common = ["realdata", "run", "--dataset", "breakfast", "--data-dir", data, "--epochs", 1,
              "--seeds", 1, "--split", "s1", "--workers", 0, "--out", tmp_path / "o"]
    assert invoke(*common).exit_code == 0
    other = invoke(*common, "--lam", 0.5)
    assert other.exit_code == 2 and "different settings (lam)" in other.output
