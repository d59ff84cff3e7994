"""The image and video benchmarks end to end: data folder → trained methods → stored runs.

One :class:`BenchmarkConfig` names a benchmark and its settings; :func:`run_benchmark` trains
every (seed, method) that the output folder lacks, with the loop of
:mod:`core.loop`, and stores each as a ``realdata`` row holding the per-sample
(per-pixel, per-frame) test predictions, so ``clsreg realdata report`` pairs and tests them
with the same comparison as the tables. A benchmark is:

* **imdb-wiki-dir / agedb-dir** — age from a face image, ResNet-50 with a regression and a
  class head on its pooled features; shots by training count per integer age.
* **nyud2-dir** — depth per pixel, the Hu et al. encoder–decoder with a per-pixel class
  head; evaluated on the balanced test mask, shots the fixed bin lists.
* **breakfast** — video progress from 64-d frame features, one MLP 64→40→20 per activity,
  per held-out-participant split; one stored run holds all activities of a split.
* **fashion-rotation** — Fashion-MNIST images rotated by the target angle (real pixels, a
  constructed label), long-tailed training angles, uniform test angles, a small CNN.

Interrupted runs resume: finished runs are in the store, and the run in progress continues
from its last epoch's checkpoint (``DIR/checkpoints``, removed once its run is stored).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from clsreg.analysis.binning import bin_counts, make_edges
from clsreg.analysis.errors import ConfigError, InputError
from clsreg.analysis.store import Record, ResultsStore, require_kind
from clsreg.analysis.validate import check_choice, check_int, check_number
from clsreg.analysis.vocabulary import BINNINGS, DEFAULT_METHODS, REAL_KIND
from clsreg.core.device import resolve_device
from clsreg.core.loop import (
    Ranks,
    TargetCoding,
    TargetScaler,
    launched_ranks,
    predict_batches,
    process_group,
    rank_device,
    train_loop,
)
from clsreg.core.methods import Method, get_method, method_identity, method_record, parse_methods
from clsreg.core.recipe import TrainRecipe
from torch.utils.data import Dataset, TensorDataset

from .evaluate import DEPTH_METRICS, METRICS, ShotConfig, assign_shots, grouped_metrics
from .experiment import flat_metrics, record_key, torch_threads

BENCHMARKS = ("imdb-wiki-dir", "agedb-dir", "nyud2-dir", "breakfast", "fashion-rotation")
AGE_BENCHMARKS = ("imdb-wiki-dir", "agedb-dir")

# Per-benchmark defaults: the study's settings where PROTOCOL §3 gives them (Breakfast: λ =
# 1e-3, Adam 1e-4, 40 epochs, 100 classes; NYUD2: 10 equalized classes), the DIR recipes
# otherwise (IMDB-WIKI / AgeDB: 90 epochs, batch 256, Adam 1e-3, 224 px; NYUD2: 10 epochs,
# batch 32, Adam 1e-4), and for the Fashion-MNIST rotation what trains 2 methods × 5 seeds
# on a 2-core CPU in under 15 minutes.
DEFAULTS: dict[str, dict] = {
    "imdb-wiki-dir": dict(epochs=90, batch_size=256, lr=1e-3, num_classes=10,
                          binning="equal", lam=1.0, image_size=224),
    "agedb-dir": dict(epochs=90, batch_size=256, lr=1e-3, num_classes=10, binning="equal",
                      lam=1.0, image_size=224),
    "nyud2-dir": dict(epochs=10, batch_size=32, lr=1e-4, num_classes=10, binning="equal",
                      lam=1.0, image_size=228),
    "breakfast": dict(epochs=40, batch_size=256, lr=1e-4, num_classes=100, binning="equal",
                      lam=1e-3, image_size=0),
    "fashion-rotation": dict(epochs=12, batch_size=128, lr=1e-3, num_classes=10,
                             binning="uniform", lam=1.0, image_size=28),
}
# Depth pixels sampled per training image to fit the target scale and the class edges.
DEPTH_PIXELS_PER_IMAGE = 4096
DEPTH_SCALE_IMAGES = 64


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that determines a benchmark run's numbers, except the seeds and methods."""

    dataset: str
    data_dir: str | None = None
    epochs: int = 0
    batch_size: int = 0
    lr: float = 0.0
    num_classes: int = 0
    binning: str = ""
    lam: float = 0.0
    image_size: int = 0
    regression: str = "mse"
    weight_decay: float = 0.0
    optimizer: str = "adam"
    limit: int | None = None
    weights: str | None = None
    splits: tuple[str, ...] = ("s1", "s2", "s3", "s4")
    split_seed: int = 0
    val_fraction: float = 0.2
    fashion_tail: float = 100.0

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, BENCHMARKS)
        check_int("epochs", self.epochs, 1)
        check_int("batch size", self.batch_size, 1)
        check_number("learning rate", self.lr, positive=True)
        check_int("number of classes", self.num_classes, 2)
        check_choice("binning", self.binning, BINNINGS)
        check_number("lambda", self.lam, positive=True)
        check_number("weight decay", self.weight_decay)
        if self.limit is not None:
            check_int("limit", self.limit, 1)
        if self.dataset == "breakfast":
            from .breakfast import SPLITS
            for split in self.splits:
                check_choice("Breakfast split", split, tuple(SPLITS))
        self.method("reg")  # checks the regression loss

    def method(self, name: str) -> Method:
        return get_method(name).configured(num_classes=self.num_classes, binning=self.binning,
                                           lam=self.lam, regression=self.regression)

    @property
    def recipe(self) -> TrainRecipe:
        return TrainRecipe(optimizer=self.optimizer, lr=self.lr,
                           weight_decay=self.weight_decay, epochs=self.epochs,
                           batch_size=self.batch_size)

    def as_dict(self) -> dict:
        """The config as stored; the data folder is where the data was, not what it is."""
        values = json.loads(json.dumps(asdict(self)))
        values.pop("data_dir")
        if self.dataset != "breakfast":
            values.pop("splits")
        if self.dataset != "fashion-rotation":
            values.pop("fashion_tail")
        return values

    def experiment_id(self, part: str = "") -> str:
        text = json.dumps({**self.as_dict(), "part": part}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def benchmark_config(dataset: str, **overrides) -> BenchmarkConfig:
    """A :class:`BenchmarkConfig` with the benchmark's defaults where ``overrides`` give None."""
    check_choice("dataset", dataset, BENCHMARKS)
    given = {k: v for k, v in overrides.items() if v is not None}
    return BenchmarkConfig(dataset=dataset, **{**DEFAULTS[dataset], **given})


@dataclass(frozen=True)
class Part:
    """One stored unit of a benchmark: its data and how to build, score and store its model.

    ``tasks`` lists the models trained per (seed, method): one, or one per Breakfast
    activity; their test predictions are concatenated into one stored run.
    """

    name: str  # "" or a Breakfast split
    tasks: tuple[Task, ...]
    metrics: tuple[str, ...]
    target_name: str
    description: str


@dataclass(frozen=True)
class Task:
    """One model's data: training, validation and test sets and the target coding."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    train_targets: np.ndarray
    coding: TargetCoding
    build: Callable[[int, int], torch.nn.Module]  # (num_classes or 0, seed) → model
    evaluate: Callable[[torch.nn.Module, Method, torch.device, int, int], Evaluation]


@dataclass(frozen=True)
class Evaluation:
    """Test predictions of one model with their targets, shots and per-bin arrays."""

    prediction: np.ndarray
    target: np.ndarray
    shot: np.ndarray
    arrays: dict[str, np.ndarray]


def head(dataset_split, limit: int | None):
    return dataset_split if limit is None else dataset_split.head(limit)


def coding_for(train_targets: np.ndarray, config: BenchmarkConfig,
               standardize: bool = True) -> TargetCoding:
    scaler = (TargetScaler.fit(train_targets, log=False) if standardize
              else TargetScaler(log=False, mean=0.0, std=1.0))
    return TargetCoding(scaler, make_edges(train_targets, config.num_classes, config.binning))


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """In-memory inputs and targets (Fashion, Breakfast) as a float32 dataset."""
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


def age_part(config: BenchmarkConfig) -> Part:
    from .agedir import AGE_RANGE, AgeImages, load_age_dataset
    from .backbones import build_image_model

    splits = {k: head(v, config.limit) for k, v in
              load_age_dataset(config.data_dir, config.dataset).items()}
    train_ages = np.asarray(splits["train"].ages, dtype=np.float64)
    coding = coding_for(train_ages, config)
    edges = np.arange(AGE_RANGE[0], AGE_RANGE[1] + 2, dtype=np.float64)  # integer ages
    test = AgeImages(splits["test"], config.image_size)
    task = Task(
        name="", train=AgeImages(splits["train"], config.image_size, train=True),
        val=AgeImages(splits["val"], config.image_size), test=test, train_targets=train_ages,
        coding=coding,
        build=lambda classes, seed: build_image_model(classes, seed, config.weights),
        evaluate=per_sample_evaluation(test, coding, train_ages, edges, ShotConfig()))
    sizes = "/".join(str(len(splits[s])) for s in ("train", "val", "test"))
    return Part("", (task,), METRICS, "age",
                f"ResNet-50 at {config.image_size} px, {sizes} train/val/test images; shots: "
                "many > 100, few < 20 training images per integer age")


def fashion_part(config: BenchmarkConfig) -> Part:
    from .backbones import build_image_model
    from .fashion import load_fashion_images, rotation_splits

    train_images, test_images = load_fashion_images(config.data_dir)
    sizes = {} if config.limit is None else dict(
        n_train=config.limit, n_val=config.limit, n_test=config.limit)
    data = rotation_splits(train_images, test_images, seed=config.split_seed,
                           tail=config.fashion_tail, **sizes)
    train_angles = np.asarray(data.y_train, dtype=np.float64)
    coding = coding_for(train_angles, config)
    edges = np.linspace(0.0, 180.0, 37)  # 5° bins

    test = tensor_dataset(data.x_test, data.y_test)
    task = Task(
        name="", train=tensor_dataset(data.x_train, data.y_train),
        val=tensor_dataset(data.x_val, data.y_val),
        test=test, train_targets=train_angles, coding=coding,
        build=lambda classes, seed: build_image_model(classes, seed, backbone="small-cnn",
                                                      in_channels=1),
        evaluate=per_sample_evaluation(test, coding, train_angles, edges,
                                       ShotConfig(bins=36, many=100, few=20)))
    angles = ("uniform" if config.fashion_tail == 1 else
              f"long-tailed (head:tail {config.fashion_tail:g}:1)")
    return Part("", (task,), METRICS, "rotation angle (degrees)",
                f"small CNN on Fashion-MNIST rotated by the target angle (real pixels, "
                f"constructed label): {len(data.y_train)} {angles} training angles, "
                f"{len(data.y_val)}/{len(data.y_test)} "
                "uniform val/test angles; shots: many > 100, few < 20 training images per "
                "5° bin")


def depth_part(config: BenchmarkConfig) -> Part:
    from .backbones import build_depth_model
    from .nyud2 import DepthImages, bin_shot, depth_bin, load_nyud2, to_mask_frame

    pairs, mask = load_nyud2(config.data_dir, config.val_fraction, config.split_seed)
    pairs = {k: head(v, config.limit) for k, v in pairs.items()}
    mask = mask[:len(pairs["test"])]
    size = (config.image_size, config.image_size * 4 // 3)
    train = DepthImages(pairs["train"], size, train=True)
    sample = np.concatenate([depth_sample(train, i, np.random.default_rng([config.split_seed, i]))
                             for i in range(min(len(train), DEPTH_SCALE_IMAGES))])
    coding = coding_for(sample, config)
    test = DepthImages(pairs["test"], size)
    edges = np.arange(0.0, 10.01, 0.1)
    fixed_shots = bin_shot(np.arange(100))

    def evaluate(model, method, device, batch_size, workers) -> Evaluation:
        predictions, targets = [], []
        for index, prediction, _ in predict_batches(model, test, method, coding, device,
                                                    batch_size, workers):
            for row, i in enumerate(index):
                # The input was the whole frame resized, so the prediction goes back to the
                # depth file's native size, then into the mask's frame (identity, or the
                # NYUD2-DIR scale-and-crop when the mask is 228 × 304).
                depth = test.full_depth(int(i))
                native = torch.nn.functional.interpolate(
                    prediction[row][None, None].float(), size=depth.shape, mode="bilinear",
                    align_corners=False)[0, 0].double().cpu().numpy()
                keep = mask[i]
                predictions.append(to_mask_frame(native, keep.shape)[keep])
                targets.append(to_mask_frame(depth, keep.shape)[keep].astype(np.float64))
        prediction, target = np.concatenate(predictions), np.concatenate(targets)
        return Evaluation(prediction, target, bin_shot(depth_bin(target)),
                          {"split_edges": edges, "shot_edges": edges, "bin_shot": fixed_shots,
                           "train_counts": bin_counts(sample, edges)})

    task = Task(name="", train=train, val=DepthImages(pairs["val"], size), test=test,
                train_targets=sample, coding=coding,
                build=lambda classes, seed: build_depth_model(classes, seed, config.weights),
                evaluate=evaluate)
    sizes = "/".join(str(len(pairs[s])) for s in ("train", "val", "test"))
    return Part("", (task,), DEPTH_METRICS, "depth (m)",
                f"Hu et al. ResNet-50 encoder–decoder at {size[0]}×{size[1]} px, {sizes} "
                f"train/val/test images ({int(mask.sum())} balanced test pixels), "
                f"{config.num_classes} {config.binning} per-pixel classes; shots: the fixed "
                "NYUD2-DIR bin lists")


def depth_sample(dataset, index: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``DEPTH_PIXELS_PER_IMAGE`` valid training depths of one image, at the target's
    resolution (the depth file alone: no RGB read, no augmentation)."""
    from .nyud2 import resize_nearest

    values = resize_nearest(dataset.full_depth(index), dataset.target_size).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    take = min(values.size, DEPTH_PIXELS_PER_IMAGE)
    return rng.choice(values, take, replace=False).astype(np.float64)


def breakfast_parts(config: BenchmarkConfig) -> list[Part]:
    from .backbones import build_breakfast_model
    from .breakfast import ACTIVITIES, breakfast_split, load_breakfast

    videos = load_breakfast(config.data_dir)
    if config.limit is not None:  # the first N videos of each activity
        kept, seen = [], {}
        for video in videos:
            seen[video.activity] = seen.get(video.activity, 0) + 1
            if seen[video.activity] <= config.limit:
                kept.append(video)
        videos = kept
    present = [a for a in ACTIVITIES if any(v.activity == a for v in videos)]
    edges = np.linspace(0.0, 1.0, 101)
    parts = []
    for split in config.splits:
        tasks = []
        for activity in present:
            frames = breakfast_split(videos, split, activity, config.val_fraction,
                                     config.split_seed)
            progress = frames["train"].progress.astype(np.float64)
            coding = coding_for(progress, config, standardize=False)

            def tensors(s):
                return tensor_dataset(s.features, s.progress)
            test = tensors(frames["test"])
            tasks.append(Task(
                name=activity, train=tensors(frames["train"]), val=tensors(frames["val"]),
                test=test, train_targets=progress, coding=coding,
                build=lambda classes, seed: build_breakfast_model(classes, seed),
                evaluate=per_sample_evaluation(test, coding, progress, edges,
                                               ShotConfig(bins=100, many=100, few=20))))
        parts.append(Part(split, tuple(tasks), ("rmse", "mae"), "relative progress",
                          f"Breakfast split {split} (test participants held out), one MLP "
                          f"64→40→20 per activity ({len(tasks)} activities), raw progress "
                          "target; shots: many > 100, few < 20 training frames per 1% bin"))
    return parts


def benchmark_parts(config: BenchmarkConfig) -> list[Part]:
    """Load and check the data of ``config`` (every error before any training)."""
    if config.dataset in AGE_BENCHMARKS:
        return [age_part(config)]
    if config.dataset == "nyud2-dir":
        return [depth_part(config)]
    if config.dataset == "breakfast":
        return breakfast_parts(config)
    return [fashion_part(config)]


def check_folder(store: ResultsStore, config: BenchmarkConfig) -> None:
    """Refuse to mix one benchmark's runs with other settings in one output folder."""
    mine = config.as_dict()
    for record in store.records(REAL_KIND):
        stored = record["config"]
        if stored.get("dataset") != config.dataset or "benchmark" not in stored:
            raise ConfigError(f"{store.path.parent} holds other real-data results "
                              f"({stored.get('dataset')}); use another --out")
        if stored["benchmark"] != {k: v for k, v in mine.items() if k != "splits"}:
            changed = sorted(k for k in stored["benchmark"]
                             if stored["benchmark"][k] != mine.get(k))
            raise ConfigError(f"{store.path.parent} already holds a {config.dataset} run with "
                              f"different settings ({', '.join(changed)}); use another --out")


def train_run(config: BenchmarkConfig, part: Part, seed: int, name: str, out_dir: Path,
              device: torch.device, workers: int, ranks: Ranks, progress: bool) -> Record:
    """Train one (seed, method) of ``part`` (every activity's model) and build its row."""
    method = config.method(name)
    experiment = config.experiment_id(part.name)
    pieces, best_epochs, val_scores, start = [], [], [], time.perf_counter()
    for number, task in enumerate(part.tasks):
        weights = None
        if method.weighting is not None:
            weights = method.weighting.weights(task.train_targets)
        model = task.build(config.num_classes if method.head is not None else 0, seed)
        checkpoint = (checkpoint_folder(out_dir, experiment, seed, name) /
                      f"{task.name or 'model'}.pt")
        info = train_loop(model, method, task.train, task.val, task.coding, config.recipe, seed,
                          device, checkpoint, weights, ranks, progress, workers=workers,
                          description=f"{config.dataset}{'/' + part.name if part.name else ''}"
                                      f" seed {seed} {name}"
                                      f"{' ' + task.name if task.name else ''}")
        best_epochs.append(info["best_epoch"])
        val_scores.append(info["val_score"])
        evaluation = task.evaluate(model, method, device, config.batch_size, workers)
        pieces.append((number, evaluation))
    prediction = np.concatenate([e.prediction for _, e in pieces])
    target = np.concatenate([e.target for _, e in pieces])
    shot = np.concatenate([e.shot for _, e in pieces])
    arrays = {"prediction": prediction, "target": target, "shot": shot.astype("U6"),
              **pieces[0][1].arrays}
    if len(pieces) > 1:  # Breakfast: which activity each frame belongs to
        arrays["group"] = np.concatenate([np.full(e.target.size, n) for n, e in pieces])
        arrays["train_counts"] = np.sum([e.arrays["train_counts"] for _, e in pieces], axis=0)
    metrics = flat_metrics(grouped_metrics(prediction, target, shot, part.metrics))
    metrics.update(best_epoch=float(np.mean(best_epochs)), val_score=float(np.mean(val_scores)),
                   train_seconds=time.perf_counter() - start)
    tasks = part.tasks
    return Record(
        key=record_key(experiment, seed, name), kind=REAL_KIND,
        config={"benchmark": {k: v for k, v in config.as_dict().items() if k != "splits"},
                "experiment": experiment, **method_record(name), "dataset": config.dataset,
                "sampling": part.name or "natural", "split": part.name,
                "metrics": list(part.metrics), "description": part.description,
                "target_name": part.target_name, "groups": [t.name for t in tasks],
                "n_train": int(sum(len(t.train) for t in tasks)),
                "n_val": int(sum(len(t.val) for t in tasks)),
                "n_test": int(target.size), "per_bin": "balanced",
                "shots": {"many": 100, "few": 20}, "lam": config.lam,
                "classes_used": config.num_classes, "world_size": ranks.world},
        seed=seed, metrics=metrics, arrays=arrays)


def run_benchmark(config: BenchmarkConfig, seeds: int, out_dir: str | Path,
                  methods: tuple[str, ...] = DEFAULT_METHODS, device: str = "auto",
                  workers: int = 0, threads: int | None = None,
                  progress: bool = True) -> dict[str, int]:
    """Train the missing (seed, method) runs of seeds ``0 .. seeds-1`` and store each as it
    finishes; under ``torchrun`` every rank trains and rank 0 alone writes."""
    check_int("number of seeds", seeds, 1)
    methods = parse_methods(methods)
    ranks = launched_ranks()
    torch_device = rank_device(resolve_device(device), ranks)
    parts = benchmark_parts(config)
    out_dir = Path(out_dir)
    trained = skipped = 0
    with process_group(ranks, torch_device), contextlib.ExitStack() as stack, \
            torch_threads(threads or torch.get_num_threads()):
        # Rank 0 creates, checks and alone writes the store; the others only read it.
        store = stack.enter_context(ResultsStore(out_dir)) if ranks.main else None
        if store is not None:
            require_kind(store, REAL_KIND, "real-data results")
            check_folder(store, config)
        if ranks.world > 1:
            torch.distributed.barrier()
        if store is None:
            store = stack.enter_context(ResultsStore(out_dir, create=False))
        done = store.done_keys()
        for part in parts:
            experiment = config.experiment_id(part.name)
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


def remove_checkpoints(out_dir: Path, experiment: str, seed: int, name: str) -> None:
    """A stored run's checkpoints are no longer needed (its predictions are stored)."""
    folder = checkpoint_folder(out_dir, experiment, seed, name)
    shutil.rmtree(folder, ignore_errors=True)
    for empty in (folder.parent, folder.parent.parent):
        with contextlib.suppress(OSError):
            empty.rmdir()


def checkpoint_folder(out_dir: Path, experiment: str, seed: int, name: str) -> Path:
    """Where one (seed, method) run keeps its models' checkpoints until it is stored."""
    return out_dir / "checkpoints" / experiment / f"seed{seed}_{method_identity(name)}"


def with_data_dir(config: BenchmarkConfig, data_dir: str | Path | None) -> BenchmarkConfig:
    if data_dir is not None and not Path(data_dir).is_dir():
        raise InputError(f"data folder {data_dir} does not exist")
    return replace(config, data_dir=None if data_dir is None else str(Path(data_dir)))
