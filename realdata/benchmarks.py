"""The image and video benchmarks as sources of the real-data pipeline (:mod:`realdata.pipeline`).

Each builder turns a :class:`~realdata.pipeline.RealConfig` into the benchmark's parts:

* **imdb-wiki-dir / agedb-dir** — age from a face image, ResNet-50 with a regression and a
  class head on its pooled features; shots by training count per integer age.
* **nyud2-dir** — depth per pixel, the Hu et al. encoder–decoder with a per-pixel class
  head; evaluated on the balanced test mask, shots the fixed bin lists.
* **breakfast** — video progress from 64-d frame features, one MLP 64→40→20 per activity,
  per held-out-participant split; one stored run holds all activities of a split.
* **fashion-rotation** — Fashion-MNIST images rotated by the target angle (real pixels, a
  constructed label), long-tailed training angles, uniform test angles, a small CNN.

A benchmark's settings keep the layout every stored benchmark experiment id was hashed from
(:func:`settings`); its rows nest them under ``benchmark``.
"""

from __future__ import annotations

import numpy as np
import torch
from clsreg.analysis.binning import bin_counts
from clsreg.analysis.errors import ConfigError
from clsreg.analysis.validate import check_choice, check_int
from clsreg.core.loop import TargetScaler, predict_batches

from .evaluate import DEPTH_METRICS, METRICS, ShotConfig
from .pipeline import (
    Evaluation,
    Part,
    RealConfig,
    Task,
    coding_for,
    per_sample_evaluation,
    tensor_dataset,
)

# Depth pixels sampled per training image to fit the target scale and the class edges.
DEPTH_PIXELS_PER_IMAGE = 4096
DEPTH_SCALE_IMAGES = 64
STORED_SHOTS = {"many": 100, "few": 20}


def settings(config: RealConfig) -> dict:
    """What a benchmark experiment's id hashes (with its part's name): the recipe, the
    class head and the benchmark's options; the data folder is where the data was, not
    what it is, and is left out."""
    o, r = config.options, config.recipe
    values = {"dataset": config.source, "epochs": r.epochs, "batch_size": r.batch_size,
              "lr": r.lr, "num_classes": config.num_classes, "binning": config.binning,
              "lam": config.lam, "image_size": o["image_size"],
              "regression": config.regression, "weight_decay": r.weight_decay,
              "optimizer": r.optimizer, "limit": o["limit"], "weights": o["weights"]}
    if "splits" in o:
        values["splits"] = list(o["splits"])
    values.update(split_seed=o["split_seed"], val_fraction=o["val_fraction"])
    if "angle_tail" in o:
        values["fashion_tail"] = o["angle_tail"]
    return values


def benchmark_part(config: RealConfig, name: str, tasks: tuple[Task, ...],
                   metrics: tuple[str, ...], target_name: str, description: str) -> Part:
    """A benchmark's stored experiment: one, or one per Breakfast split ``name``."""
    values = settings(config)
    folder = {k: v for k, v in values.items() if k != "splits"}
    return Part(
        dataset=config.source, settings={**values, "part": name}, folder=folder,
        stored={"benchmark": folder, "sampling": name or "natural", "split": name,
                "metrics": list(metrics), "description": description,
                "groups": [t.name for t in tasks], "per_bin": "balanced",
                "shots": STORED_SHOTS, "lam": config.lam},
        tasks=tasks, metrics=metrics, target_name=target_name,
        label=f"{config.source}{'/' + name if name else ''}")


def data_dir(config: RealConfig) -> str:
    """The benchmark's data folder (a clear error without one)."""
    folder = config.options["data_dir"]
    if folder is None:
        raise ConfigError(f"--dataset {config.source} needs --data-dir (see --help for the "
                          "layout; clsreg realdata make-fixture writes a tiny one)")
    return str(folder)


def head(dataset_split, limit: int | None):
    return dataset_split if limit is None else dataset_split.head(limit)


def age_parts(config: RealConfig) -> list[Part]:
    """IMDB-WIKI-DIR or AgeDB-DIR: one ResNet-50 on the face images."""
    from .agedir import AGE_RANGE, AgeImages, load_age_dataset
    from .backbones import build_image_model

    o = config.options
    splits = {k: head(v, o["limit"]) for k, v in
              load_age_dataset(data_dir(config), config.source).items()}
    train_ages = np.asarray(splits["train"].ages, dtype=np.float64)
    coding = coding_for(train_ages, config)
    edges = np.arange(AGE_RANGE[0], AGE_RANGE[1] + 2, dtype=np.float64)  # integer ages
    test = AgeImages(splits["test"], o["image_size"])
    task = Task(
        name="", train=AgeImages(splits["train"], o["image_size"], train=True),
        val=AgeImages(splits["val"], o["image_size"]), test=test, train_targets=train_ages,
        coding=coding, head_classes=config.num_classes,
        build=lambda classes, seed: build_image_model(classes, seed, o["weights"]),
        evaluate=per_sample_evaluation(test, coding, train_ages, edges, ShotConfig()))
    sizes = "/".join(str(len(splits[s])) for s in ("train", "val", "test"))
    return [benchmark_part(config, "", (task,), METRICS, "age",
                           f"ResNet-50 at {o['image_size']} px, {sizes} train/val/test images; "
                           "shots: many > 100, few < 20 training images per integer age")]


def fashion_parts(config: RealConfig) -> list[Part]:
    """Fashion-MNIST rotated by the target angle: one small CNN."""
    from .backbones import build_image_model
    from .fashion import load_fashion_images, rotation_splits

    o = config.options
    train_images, test_images = load_fashion_images(o["data_dir"])
    sizes = {} if o["limit"] is None else dict(n_train=o["limit"], n_val=o["limit"],
                                                 n_test=o["limit"])
    data = rotation_splits(train_images, test_images, seed=o["split_seed"],
                           tail=o["angle_tail"], **sizes)
    train_angles = np.asarray(data.y_train, dtype=np.float64)
    coding = coding_for(train_angles, config)
    edges = np.linspace(0.0, 180.0, 37)  # 5° bins
    test = tensor_dataset(data.x_test, data.y_test)
    task = Task(
        name="", train=tensor_dataset(data.x_train, data.y_train),
        val=tensor_dataset(data.x_val, data.y_val),
        test=test, train_targets=train_angles, coding=coding, head_classes=config.num_classes,
        build=lambda classes, seed: build_image_model(classes, seed, backbone="small-cnn",
                                                      in_channels=1),
        evaluate=per_sample_evaluation(test, coding, train_angles, edges,
                                       ShotConfig(bins=36, many=100, few=20)))
    angles = ("uniform" if o["angle_tail"] == 1 else
              f"long-tailed (head:tail {o['angle_tail']:g}:1)")
    return [benchmark_part(config, "", (task,), METRICS, "rotation angle (degrees)",
                           "small CNN on Fashion-MNIST rotated by the target angle (real "
                           f"pixels, constructed label): {len(data.y_train)} {angles} training "
                           f"angles, {len(data.y_val)}/{len(data.y_test)} uniform val/test "
                           "angles; shots: many > 100, few < 20 training images per 5° bin")]


def depth_parts(config: RealConfig) -> list[Part]:
    """NYUD2-DIR: one encoder–decoder predicting depth per pixel."""
    from .backbones import build_depth_model
    from .nyud2 import DepthImages, bin_shot, depth_bin, load_nyud2, to_mask_frame

    o = config.options
    pairs, mask = load_nyud2(data_dir(config), o["val_fraction"], o["split_seed"])
    pairs = {k: head(v, o["limit"]) for k, v in pairs.items()}
    mask = mask[:len(pairs["test"])]
    size = (o["image_size"], o["image_size"] * 4 // 3)
    train = DepthImages(pairs["train"], size, train=True)
    sample = np.concatenate([depth_sample(train, i, np.random.default_rng([o["split_seed"], i]))
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
                train_targets=sample, coding=coding, head_classes=config.num_classes,
                build=lambda classes, seed: build_depth_model(classes, seed, o["weights"]),
                evaluate=evaluate)
    sizes = "/".join(str(len(pairs[s])) for s in ("train", "val", "test"))
    return [benchmark_part(config, "", (task,), DEPTH_METRICS, "depth (m)",
                           f"Hu et al. ResNet-50 encoder–decoder at {size[0]}×{size[1]} px, "
                           f"{sizes} train/val/test images ({int(mask.sum())} balanced test "
                           f"pixels), {config.num_classes} {config.binning} per-pixel classes; "
                           "shots: the fixed NYUD2-DIR bin lists")]


def depth_sample(dataset, index: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``DEPTH_PIXELS_PER_IMAGE`` valid training depths of one image, at the target's
    resolution (the depth file alone: no RGB read, no augmentation)."""
    from .nyud2 import resize_nearest

    values = resize_nearest(dataset.full_depth(index), dataset.target_size).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    take = min(values.size, DEPTH_PIXELS_PER_IMAGE)
    return rng.choice(values, take, replace=False).astype(np.float64)


def breakfast_parts(config: RealConfig) -> list[Part]:
    """Breakfast: per split, one progress MLP per activity (raw progress target)."""
    from .backbones import build_breakfast_model
    from .breakfast import ACTIVITIES, SPLITS, breakfast_split, load_breakfast

    o = config.options
    for split in o["splits"]:
        check_choice("Breakfast split", split, tuple(SPLITS))
    videos = load_breakfast(data_dir(config))
    if o["limit"] is not None:  # the first N videos of each activity
        check_int("limit", o["limit"], 1)
        kept, seen = [], {}
        for video in videos:
            seen[video.activity] = seen.get(video.activity, 0) + 1
            if seen[video.activity] <= o["limit"]:
                kept.append(video)
        videos = kept
    present = [a for a in ACTIVITIES if any(v.activity == a for v in videos)]
    edges = np.linspace(0.0, 1.0, 101)
    identity = TargetScaler(log=False, mean=0.0, std=1.0)
    parts = []
    for split in o["splits"]:
        tasks = []
        for activity in present:
            frames = breakfast_split(videos, split, activity, o["val_fraction"], o["split_seed"])
            progress = frames["train"].progress.astype(np.float64)
            coding = coding_for(progress, config, identity)

            def tensors(s):
                return tensor_dataset(s.features, s.progress)
            test = tensors(frames["test"])
            tasks.append(Task(
                name=activity, train=tensors(frames["train"]), val=tensors(frames["val"]),
                test=test, train_targets=progress, coding=coding,
                head_classes=config.num_classes,
                build=lambda classes, seed: build_breakfast_model(classes, seed),
                evaluate=per_sample_evaluation(test, coding, progress, edges,
                                               ShotConfig(bins=100, many=100, few=20))))
        parts.append(benchmark_part(
            config, split, tuple(tasks), ("rmse", "mae"), "relative progress",
            f"Breakfast split {split} (test participants held out), one MLP 64→40→20 per "
            f"activity ({len(tasks)} activities), raw progress target; shots: many > 100, "
            "few < 20 training frames per 1% bin"))
    return parts
