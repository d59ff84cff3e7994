"""Training one population of sweep runs: datasets, members, the engine, the rows.

Kept apart from the loop (:mod:`simulate.sweep`) and the executors so that any executor,
in this process or on another machine, trains a population the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from clsreg.analysis.binning import assign_labels, bin_centres, keep_probabilities, make_edges
from clsreg.analysis.store import Record
from clsreg.analysis.vocabulary import SAMPLINGS, SETTINGS, SIM_KIND
from clsreg.core.methods import Method
from clsreg.simulate.data import Dataset, make_dataset
from clsreg.simulate.grid import DataSpec, Run
from clsreg.simulate.population import (
    Architecture,
    Member,
    Population,
    mean_squared_error,
)


def _build_dataset(spec: DataSpec) -> Dataset:
    return make_dataset(spec.function, spec.setting, spec.sampling, spec.data_seed,
                        spec.num_points, spec.function_seed, spec.protocol)


class DatasetCache:
    """Datasets built once and shared by every method's runs that use them."""

    def __init__(self):
        self._cache: dict[DataSpec, Dataset] = {}

    def get(self, run: Run) -> Dataset:
        spec = run.recipe.data
        if spec not in self._cache:
            self._cache[spec] = _build_dataset(spec)
        return self._cache[spec]

    def prefetch(self, runs: list[Run], workers: int) -> None:
        """Build the datasets of ``runs`` in ``workers`` processes (the same arrays: every
        dataset is a pure function of its spec)."""
        specs = [s for s in dict.fromkeys(run.recipe.data for run in runs)
                 if s not in self._cache]
        if workers < 2 or len(specs) < 2 * workers:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # The workers run NumPy only, so forking is safe even after CUDA was touched; spawn
        # (where fork is missing) needs the caller's main module to be import-safe.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for spec, dataset in zip(specs, pool.map(_build_dataset, specs, chunksize=4),
                                     strict=True):
                self._cache[spec] = dataset


def member_for(run: Run, method: Method, dataset: Dataset) -> tuple[Member, np.ndarray | None]:
    """The population member of ``run`` and the class labels of its test targets."""
    r = run.recipe
    labels = keep = test_labels = weights = centres = None
    if method.head is not None:
        edges = make_edges(dataset.train.y, method.head.num_classes, method.head.binning)
        labels = assign_labels(dataset.train.y, edges)
        if method.predicts_from_classes:
            centres = bin_centres(edges)
        test_labels = assign_labels(dataset.test.y, edges)
        if method.head.binning == "equal":
            keep = keep_probabilities(labels, edges.size - 1)
    if method.weighting is not None:
        weights = method.weighting.weights(dataset.train.y)
    order_seed = (r.model_seed, r.data_seed, r.function_seed, r.function,
                  SETTINGS.index(r.setting), SAMPLINGS.index(r.sampling))
    recipe = r.train
    if r.decay_scaling == "lambda" and method.scales_regression:
        recipe = replace(recipe, weight_decay=recipe.weight_decay * method.lam)
    member = Member(x=dataset.train.x, y=dataset.train.y, lam=method.lam, recipe=recipe,
                    init_seed=r.model_seed,
                    order_seed=order_seed, labels=labels, keep=keep, weights=weights,
                    centres=centres)
    return member, test_labels


def train_population(runs: list[Run], cache: DatasetCache,
                     progress: Callable[[float], None] | None = None) -> list[Record]:
    """Train one population of runs (one architecture, method and loop) and return their rows.

    A run's λ may differ from its neighbours'; the method's other settings are shared.
    """
    first = runs[0].recipe
    methods = [run.method_value() for run in runs]
    architecture = Architecture(first.hidden, runs[0].num_classes)
    datasets = [cache.get(run) for run in runs]
    built = [member_for(run, method, d)
             for run, method, d in zip(runs, methods, datasets, strict=True)]
    population = Population(architecture, [b[0] for b in built], methods[0],
                            dtype=first.dtype, device=first.device)
    result = population.train(progress)
    val_pred, _ = population.predict([d.val.x for d in datasets])
    test_pred, test_top = population.predict([d.test.x for d in datasets], with_classes=True)
    records = []
    for i, (run, dataset) in enumerate(zip(runs, datasets, strict=True)):
        metrics = {
            "train_mse": float(result.train_mse[i]),
            "val_mse": mean_squared_error(val_pred[i], dataset.val.y),
            "test_mse": mean_squared_error(test_pred[i], dataset.test.y),
            "class_top1": (float(np.mean(test_top[i] == built[i][1]))
                           if test_top is not None else None),
            "diverged": bool(result.diverged[i]),
            "train_size": int(dataset.train.x.size),
        }
        if metrics["diverged"]:
            for name in ("train_mse", "val_mse", "test_mse"):
                metrics[name] = metrics[name] if math.isfinite(metrics[name]) else math.nan
        records.append(Record(key=run.key, kind=SIM_KIND, config=run.config,
                              seed=run.recipe.model_seed, metrics=metrics))
    return records
