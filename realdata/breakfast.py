"""The Breakfast video-progress benchmark: per-frame features, target = relative progress.

Format of the study's released code (``video/ute`` in SilviaLauraPintea/reg-cls, features of
Kukleva et al. 2019): a ``features`` folder holding one text file per video, possibly in one
sub-folder per activity, named like ``P03_cam01_P03_cereals.txt``. Each file loads with
``np.loadtxt`` into an ``(n_frames, 64)`` array. The participant is the leading ``P##`` and the
activity is the last ``_``-separated token before ``.txt``. The target of frame ``t`` is
``t / n_frames``.

The four splits hold out participants P03-P15, P16-P28, P29-P41 and P42-P54 for testing. We pick
validation videos by whole *participants* from the training ones, so no person is seen in both
training and model selection (the released code picks a random third of the videos instead).

Every problem with the user's files is raised as :class:`analysis.errors.InputError`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import inside_folder

ACTIVITIES = ("cereals", "coffee", "friedegg", "juice", "milk", "pancake", "salat", "sandwich",
              "scrambledegg", "tea")
SPLITS = {"s1": range(3, 16), "s2": range(16, 29), "s3": range(29, 42), "s4": range(42, 55)}
N_FEATURES = 64
MIN_FRAMES = 2

_NAME = re.compile(r"^P(\d+)_(?:.*_)?([^_]+)\.txt$")


@dataclass(frozen=True)
class Video:
    """One video's per-frame features and where it comes from."""

    name: str
    participant: int
    activity: str
    features: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.features.shape[0])

    @property
    def progress(self) -> np.ndarray:
        """Relative progress ``t / n_frames`` of each frame: the regression target."""
        return frame_progress(self.n_frames)


@dataclass(frozen=True)
class FrameSet:
    """Frames pooled over videos; ``video`` is each frame's index into the loaded list."""

    features: np.ndarray
    progress: np.ndarray
    video: np.ndarray

    def __len__(self) -> int:
        return int(self.progress.shape[0])


def frame_progress(n_frames: int) -> np.ndarray:
    """``t / n`` for ``t = 0..n-1`` (computed in float64, stored as float32)."""
    return (np.arange(n_frames) / n_frames).astype(np.float32)


def parse_name(path: Path) -> tuple[int, str]:
    """The participant number and activity named by a feature file, or an InputError."""
    match = _NAME.match(path.name)
    if match is None:
        raise InputError(f"{path}: the file name does not parse as P##_..._<activity>.txt"
                         " (e.g. P03_cam01_P03_cereals.txt)")
    participant, activity = int(match.group(1)), match.group(2)
    if activity not in ACTIVITIES:
        raise InputError(f"{path}: unknown activity {activity!r}; expected one of "
                         f"{', '.join(ACTIVITIES)}")
    return participant, activity


def read_features(path: Path) -> np.ndarray:
    """A feature file as a finite float32 ``(n_frames, 64)`` array, or an InputError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy warns on an empty file
            raw = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as error:
        raise InputError(f"{path}: not a numeric feature table ({_one_line(error)})") from None
    if raw.size == 0:
        raise InputError(f"{path}: the feature file is empty")
    if raw.shape[1] != N_FEATURES:
        raise InputError(f"{path}: expected {N_FEATURES} feature columns per frame, found an "
                         f"array of shape {raw.shape}")
    bad_rows = np.flatnonzero(~np.isfinite(raw).all(axis=1))
    if bad_rows.size:
        raise InputError(f"{path}: row {bad_rows[0] + 1} holds a NaN or infinite value")
    if raw.shape[0] < MIN_FRAMES:
        raise InputError(f"{path}: a video needs at least {MIN_FRAMES} frames, found "
                         f"{raw.shape[0]}")
    return raw.astype(np.float32)


def load_breakfast(data_dir: str | Path) -> list[Video]:
    """Every video under ``data_dir/features`` (or ``data_dir``), sorted by name."""
    root = feature_folder(data_dir)
    paths = sorted(root.rglob("*.txt"), key=lambda p: (p.stem, str(p)))
    if not paths:
        raise InputError(f"{root}: no Breakfast feature files (*.txt) found")
    videos: list[Video] = []
    for path in paths:
        inside_folder(root, path.relative_to(root), f"{root}")  # no link out of the folder
        if videos and videos[-1].name == path.stem:
            raise InputError(f"{path}: a second feature file for video {path.stem}")
        participant, activity = parse_name(path)
        videos.append(Video(path.stem, participant, activity, read_features(path)))
    return videos


def feature_folder(data_dir: str | Path) -> Path:
    """``data_dir/features`` when present (the released layout), else ``data_dir``."""
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"{root}: Breakfast data folder not found")
    features = root / "features"
    return features if features.is_dir() else root


def breakfast_split(videos: list[Video], split: str, activity: str, val_fraction: float = 0.2,
                    split_seed: int = 0) -> dict[str, FrameSet]:
    """Train/val/test frames of one activity; val holds whole training participants."""
    if split not in SPLITS:
        raise InputError(f"unknown Breakfast split {split!r}; expected one of "
                         f"{', '.join(SPLITS)}")
    if activity not in ACTIVITIES:
        raise InputError(f"unknown Breakfast activity {activity!r}; expected one of "
                         f"{', '.join(ACTIVITIES)}")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    held_out = set(SPLITS[split])
    chosen = [i for i, v in enumerate(videos) if v.activity == activity]
    test = [i for i in chosen if videos[i].participant in held_out]
    rest = [i for i in chosen if videos[i].participant not in held_out]
    if not test or not rest:
        empty = "test" if not test else "train"
        raise InputError(f"Breakfast split {split}, activity {activity}: no {empty} videos")
    val_people = validation_participants(
        sorted({videos[i].participant for i in rest}), val_fraction, split_seed, split, activity)
    train = [i for i in rest if videos[i].participant not in val_people]
    val = [i for i in rest if videos[i].participant in val_people]
    return {"train": pool_frames(videos, train), "val": pool_frames(videos, val),
            "test": pool_frames(videos, test)}


def validation_participants(participants: list[int], val_fraction: float, split_seed: int,
                            split: str, activity: str) -> set[int]:
    """A seeded ~``val_fraction`` of the training participants, leaving at least one."""
    if val_fraction == 0.0:
        return set()
    if len(participants) < 2:
        raise InputError(f"Breakfast split {split}, activity {activity}: only one training "
                         "participant, none left for validation (use val_fraction=0)")
    count = min(max(1, round(val_fraction * len(participants))), len(participants) - 1)
    rng = np.random.default_rng(split_seed)
    return {int(p) for p in rng.choice(np.asarray(participants), size=count, replace=False)}


def pool_frames(videos: list[Video], indices: list[int]) -> FrameSet:
    """Stack the frames of ``videos[indices]`` with their progress and video index."""
    if not indices:
        return FrameSet(np.zeros((0, N_FEATURES), np.float32), np.zeros(0, np.float32),
                        np.zeros(0, np.int64))
    parts = [videos[i] for i in indices]
    owner = [np.full(videos[i].n_frames, i, np.int64) for i in indices]
    return FrameSet(
        np.concatenate([v.features for v in parts]).astype(np.float32, copy=False),
        np.concatenate([v.progress for v in parts]),
        np.concatenate(owner),
    )


def make_breakfast_fixture(out_dir: str | Path,
                           participants: tuple[int, ...] = (3, 4, 16, 17, 29, 30, 42, 43),
                           activities: tuple[str, ...] = ("cereals", "coffee"),
                           frames: tuple[int, int] = (20, 40), seed: int = 0) -> Path:
    """Write a small learnable Breakfast-format data folder; returns it.

    Each (participant, activity) gets one video ``P##_cam01_P##_<activity>.txt`` whose length
    is drawn uniformly from ``frames[0]..frames[1]`` (inclusive). Columns 0-3 are ``s``,
    ``s**2``, ``cos(pi s)`` and ``sin(pi s)`` of the progress ``s = t/n`` plus noise of sd
    0.05; the other 60 columns are standard normal noise.
    """
    rng = np.random.default_rng(seed)
    root = Path(out_dir)
    features = root / "features"
    features.mkdir(parents=True, exist_ok=True)
    for participant in participants:
        for activity in activities:
            n_frames = int(rng.integers(frames[0], frames[1] + 1))
            name = f"P{participant:02d}_cam01_P{participant:02d}_{activity}.txt"
            np.savetxt(features / name, fixture_features(n_frames, rng))
    return root


def fixture_features(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Float32 features whose first four columns are smooth functions of progress."""
    s = np.arange(n_frames) / n_frames
    signal = np.stack([s, s**2, np.cos(np.pi * s), np.sin(np.pi * s)], axis=1)
    noise = rng.normal(0.0, 1.0, size=(n_frames, N_FEATURES))
    noise[:, :4] = signal + 0.05 * noise[:, :4]
    return noise.astype(np.float32)


def _one_line(error: Exception) -> str:
    """numpy's parse error on one line, without its advice to use ``usecols``."""
    return " ".join(str(error).split(";")[0].split())
