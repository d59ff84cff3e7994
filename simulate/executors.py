"""Executors: where the populations of a sweep are trained.

The sweep's loop hands an executor the pending populations and writes each finished one to
the store as the executor yields it, so the store stays the single writer whichever executor
trains. An executor turns populations into their rows and says which device a run's
``--device`` means where it trains.

* ``local`` trains in this process, one population after another.
* ``ray`` makes each population a Ray task (as many CPUs as this process trains with, plus
  one GPU when the runs are on CUDA) on a local Ray runtime or an existing cluster
  (``--address``) and yields rows as tasks finish. A task whose worker dies is retried by
  Ray; a population is a pure function of its runs, so a retry gives the same rows. Ctrl-C
  cancels the outstanding tasks; a rerun resumes from the store. Needs the ``[ray]`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Protocol

import torch
from clsreg.analysis.errors import ConfigError, InputError
from clsreg.analysis.store import Record
from clsreg.analysis.validate import check_choice
from clsreg.analysis.vocabulary import EXECUTORS as EXECUTOR_NAMES
from clsreg.core.device import check_device_name, resolve_device
from clsreg.simulate.grid import Run
from clsreg.simulate.population import flush_subnormals
from clsreg.simulate.training import DatasetCache, train_population

# Retries of a population whose worker died (Ray's own retry of a failed task).
RAY_TASK_RETRIES = 3


class Executor(Protocol):
    """Trains populations of runs and yields each one's rows as it finishes."""

    name: str

    def device(self, name: str) -> torch.device:
        """The device ``name`` (auto, cpu, cuda, cuda:N) means where this executor trains."""
        ...

    def train(self, populations: Sequence[list[Run]]) -> Iterator[list[Record]]: ...


class LocalExecutor:
    """In-process, one population at a time, with a progress bar over models."""

    name = "local"

    def __init__(self, show_progress: bool = True, workers: int | None = None):
        self.show_progress = show_progress
        self.workers = (os.cpu_count() or 1) if workers is None else workers

    def device(self, name: str) -> torch.device:
        return resolve_device(name)

    def train(self, populations: Sequence[list[Run]]) -> Iterator[list[Record]]:
        cache = DatasetCache()
        cache.prefetch([run for chunk in populations for run in chunk], self.workers)
        bar = _progress_bar(sum(len(chunk) for chunk in populations), self.show_progress)
        try:
            for chunk in populations:
                yield train_population(chunk, cache, bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()


def train_population_task(runs: list[Run], threads: int) -> list[Record]:
    """One population on a Ray worker: its own datasets, the sweep's float settings."""
    flush_subnormals()
    torch.set_num_threads(threads)
    return train_population(runs, DatasetCache())


class RayExecutor:
    """Each population a Ray task; rows come back to this process, the only writer."""

    name = "ray"

    def __init__(self, address: str | None = None, show_progress: bool = True,
                 cpus_per_task: int | None = None, num_cpus: int | None = None):
        self.address = address
        self.show_progress = show_progress
        # A population's float32 numbers depend on its thread count (the BLAS splits the
        # batch reductions by thread): tasks get this process's count by default, so a Ray
        # run's rows equal a local run's on the same kind of machine.
        self.cpus_per_task = cpus_per_task or torch.get_num_threads()
        self.num_cpus = num_cpus
        self._started_here = False

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise InputError("the ray executor needs Ray: pip install 'clsreg[ray]'") from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None
                         else None, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise InputError(f"cannot reach the Ray cluster at {self.address}: "
                                 f"{' '.join(str(error).split())[:200]}") from None
            self._started_here = True
        return ray

    def device(self, name: str) -> torch.device:
        """CUDA is what the cluster has, not what this machine has: ``auto`` is CUDA when the
        cluster offers GPUs, and ``cuda``/``cuda:N`` are refused when it offers none."""
        name = check_device_name(name)
        gpus = self._ray().cluster_resources().get("GPU", 0)
        if name == "auto":
            return torch.device("cuda" if gpus else "cpu")
        if name.startswith("cuda") and not gpus:
            raise ConfigError(f"device {name!r} was asked for but the Ray cluster has no GPU")
        return resolve_device("cpu") if name == "cpu" else torch.device(name)

    def train(self, populations: Sequence[list[Run]]) -> Iterator[list[Record]]:
        ray = self._ray()
        task = ray.remote(train_population_task)
        pending = {}
        for chunk in populations:
            gpu = chunk[0].recipe.device.startswith("cuda")
            options = {"num_cpus": self.cpus_per_task, "num_gpus": 1 if gpu else 0,
                       "max_retries": RAY_TASK_RETRIES}
            pending[task.options(**options).remote(chunk, self.cpus_per_task)] = chunk
        bar = _progress_bar(sum(len(chunk) for chunk in populations), self.show_progress)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                chunk = pending.pop(done[0])
                records = ray.get(done[0])
                if bar is not None:
                    bar.update(len(chunk))
                yield records
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if bar is not None:
                bar.close()
            if self._started_here:
                ray.shutdown()
                self._started_here = False


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}
assert tuple(EXECUTORS) == EXECUTOR_NAMES


def make_executor(name: str, show_progress: bool = True, address: str | None = None
                  ) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`); ``address`` is Ray's."""
    check_choice("executor", name, EXECUTORS)
    if name == "ray":
        return RayExecutor(address=address, show_progress=show_progress)
    if address is not None:
        raise ConfigError("--address applies to the ray executor only")
    return LocalExecutor(show_progress=show_progress)


def _progress_bar(total: int, show: bool):
    if not show or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="model", desc="training", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.0f}/{total} models "
                           "[{elapsed}<{remaining}, {rate_fmt}]")
