"""The Ray executor: a real local Ray runtime (loopback, two worker processes) gives the same
rows as the local executor, and a worker killed mid-sweep costs nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from clsreg.analysis.store import ResultsStore
from clsreg.cli import cli
from clsreg.simulate.executors import LocalExecutor, RayExecutor
from clsreg.simulate.grid import grid_from_mapping
from clsreg.simulate.sweep import run_sweep

ray = pytest.importorskip("ray")


def _rows(folder: Path) -> dict[str, tuple]:
    with ResultsStore(folder, create=False) as store:
        return {r["key"]: (r["config"], r["metrics"]) for r in store.records()}


def test_ray_and_local_give_the_same_summary(tmp_path):
    runner = CliRunner()
    for executor in ("local", "ray"):
        out = tmp_path / executor
        result = runner.invoke(cli, ["simulate", "run", "--preset", "smoke", "--device", "cpu",
                                     "--population-size", "2", "--executor", executor,
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "trained 6 of 6 models" in result.output
        report = runner.invoke(cli, ["simulate", "report", str(out), "--resamples", "200"])
        assert report.exit_code == 0, report.output
    assert not ray.is_initialized()  # the executor shut down the runtime it started
    assert (tmp_path / "ray" / "summary.csv").read_bytes() == (
        tmp_path / "local" / "summary.csv").read_bytes()
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")


def _task_processes() -> list[int]:
    """PIDs of Ray workers now running a population (Ray titles them ``ray::<task>``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if title.startswith(b"ray::train_population_task"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds Ray workers through /proc")
def test_a_killed_worker_is_retried_and_no_row_is_lost_or_duplicated(tmp_path):
    grid = grid_from_mapping({"settings": ["clean"], "samplings": ["uniform", "severe"],
                              "functions": [0, 1], "seeds": [0], "num_classes": [4],
                              "epochs": 60, "num_points": 1500, "batch_size": 64})
    killed: list[int] = []

    def kill_one_worker():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            running = _task_processes()
            if running:
                time.sleep(0.5)  # let it train a little first
                os.kill(running[0], signal.SIGKILL)
                killed.append(running[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    # Four logical CPUs, two per task: two worker processes train at once, each with the
    # thread count of the local run below (so the numbers must be equal).
    executor = RayExecutor(show_progress=False, num_cpus=4, cpus_per_task=torch.get_num_threads())
    summary = run_sweep(grid, tmp_path / "ray", device="cpu", population_size=1,
                        show_progress=False, executor=executor)
    killer.join()
    assert killed, "no Ray worker was found to kill"
    assert summary.trained == 8 and summary.diverged == 0
    # Built in this process, without forking: a fork of a process that has run a Ray driver
    # can die in the child (Ray's threads), which once broke this comparison under load.
    run_sweep(grid, tmp_path / "local", device="cpu", population_size=1, show_progress=False,
              executor=LocalExecutor(show_progress=False, workers=1))
    with ResultsStore(tmp_path / "ray", create=False) as store:
        keys = [r["key"] for r in store.records()]
    assert len(keys) == len(set(keys)) == 8
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")


def test_cuda_on_a_cluster_without_gpus_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "run", "--preset", "smoke", "--device",
                                      "cuda", "--executor", "ray", "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: device 'cuda' was asked for but the Ray cluster has no GPU")
    assert not (tmp_path / "o").exists()
    if ray.is_initialized():
        ray.shutdown()


def test_stopping_early_cancels_the_tasks_and_shuts_the_runtime(tmp_path):
    # Ctrl-C on the driver ends the row generator the same way: outstanding tasks are
    # cancelled and the runtime this executor started is shut down; the store keeps what was
    # written, and a rerun resumes.
    from clsreg.simulate.grid import expand, populations

    grid = grid_from_mapping({"settings": ["clean"], "samplings": ["uniform"], "functions": [0],
                              "seeds": [0], "num_classes": [4, 16, 64], "epochs": 2,
                              "num_points": 1500, "batch_size": 64})
    chunks = populations(expand(grid), 1)
    rows = RayExecutor(show_progress=False).train(chunks)
    first = next(rows)
    assert len(first) == 1 and ray.is_initialized()
    rows.close()
    assert not ray.is_initialized()


def test_an_unknown_device_is_refused_by_the_ray_executor_before_ray_starts(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "run", "--preset", "smoke", "--device",
                                      "cuda:x", "--executor", "ray", "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: unknown device 'cuda:x'; use auto (CUDA when present), cpu, cuda or cuda:N")
    assert not ray.is_initialized() and not (tmp_path / "o").exists()
