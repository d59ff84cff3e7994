"""IMDB-WIKI-DIR and AgeDB-DIR: age from a face image (Yang et al., ICML 2021).

Both share one format: a csv with header ``age,path,split`` (split in train/val/test) and
images whose ``path`` is relative to the data folder. The loader checks every row and every
image's existence before anything trains, so bad data stops with one
:class:`analysis.errors.InputError` line that names the file and line, not a traceback
hours into a run. :func:`make_age_fixture` writes a tiny dataset in the same format for
tests, because the real images cannot be downloaded on these machines.
"""

from __future__ import annotations

import csv
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import inside_folder
from PIL import Image, UnidentifiedImageError

AGE_CSV = {"imdb-wiki-dir": "imdb_wiki.csv", "agedb-dir": "agedb.csv"}
AGE_RANGE = (0, 200)
AGE_HEADER = ("age", "path", "split")
SPLITS = ("train", "val", "test")
# The folder a fixture's images go to, named like the real datasets' image folders.
FIXTURE_FOLDER = {"imdb-wiki-dir": "imdb_wiki", "agedb-dir": "agedb"}

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# What PIL raises for a file that is not a decodable image (truncated, garbage, bomb).
PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error,
              Image.DecompressionBombError)


@dataclass(frozen=True)
class AgeSplit:
    """One split: absolute image paths, ages and the csv line of each (for messages)."""

    paths: np.ndarray
    ages: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.ages.size)

    def head(self, n: int) -> AgeSplit:
        """The first ``n`` items, for quick runs (``--limit``)."""
        return AgeSplit(self.paths[:n], self.ages[:n], self.rows[:n])


# ---------------------------------------------------------------- loading


def age_csv_path(data_dir: str | Path, dataset: str) -> Path:
    """The split file of ``dataset`` in ``data_dir``, or one InputError naming what is wrong."""
    if dataset not in AGE_CSV:
        raise InputError(f"unknown age dataset {dataset!r}; choose one of {', '.join(AGE_CSV)}")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise InputError(f"data folder {folder} not found (or not a folder)")
    path = folder / AGE_CSV[dataset]
    if not path.is_file():
        raise InputError(f"{path} not found; expected DATA_DIR/{AGE_CSV[dataset]} "
                         f"with columns {','.join(AGE_HEADER)}")
    return path


def read_csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Every non-blank row of ``path`` with its 1-based line number."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader if any(f.strip() for f in row)]
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file") from None
    except csv.Error as error:
        raise InputError(f"{path} is not a readable csv: {error}") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None


def parse_age(text: str, where: str) -> float:
    """A finite age inside AGE_RANGE, or an InputError at ``where`` (file and line)."""
    try:
        age = float(text)
    except ValueError:
        raise InputError(f"{where}: age {text!r} is not a number") from None
    if not math.isfinite(age):
        raise InputError(f"{where}: age {text!r} is not a finite number")
    low, high = AGE_RANGE
    if not low <= age <= high:
        raise InputError(f"{where}: age {age:g} is outside {low}..{high}")
    return age


def parse_age_rows(path: Path, rows: list[tuple[int, list[str]]]) -> list[tuple[int, float,
                                                                              str, str]]:
    """Check each data row; return (line, age, relative path, split) tuples."""
    parsed = []
    for line, row in rows:
        where = f"{path.name} line {line}"
        if len(row) != len(AGE_HEADER):
            raise InputError(f"{where}: expected {len(AGE_HEADER)} columns "
                             f"({','.join(AGE_HEADER)}), found {len(row)}")
        age_text, relative, split = (field.strip() for field in row)
        age = parse_age(age_text, where)
        if split not in SPLITS:
            raise InputError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        if not relative:
            raise InputError(f"{where}: empty image path")
        parsed.append((line, age, relative, split))
    return parsed


def check_images_exist(path: Path, folder: Path, parsed: list[tuple[int, float, str, str]]
                       ) -> None:
    """Stop before training if any referenced image is absent; name the first one."""
    missing = [(line, relative) for line, _, relative, _ in parsed
               if not inside_folder(folder, relative, f"{path.name} line {line}").is_file()]
    if missing:
        line, relative = missing[0]
        more = f" ({len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise InputError(f"{path.name} line {line}: image {relative} not found in {folder}{more}")


def load_age_dataset(data_dir: str | Path, dataset: str) -> dict[str, AgeSplit]:
    """The train/val/test splits of IMDB-WIKI-DIR or AgeDB-DIR, every row and image checked."""
    path = age_csv_path(data_dir, dataset)
    folder = path.parent.resolve()
    rows = read_csv_rows(path)
    if not rows:
        raise InputError(f"{path} is empty; expected a header {','.join(AGE_HEADER)}")
    header = tuple(field.strip() for field in rows[0][1])
    if header != AGE_HEADER:
        raise InputError(f"{path}: header must be exactly {','.join(AGE_HEADER)}, "
                         f"found {','.join(header)}")
    parsed = parse_age_rows(path, rows[1:])
    check_images_exist(path, folder, parsed)
    splits = {}
    for name in SPLITS:
        chosen = [item for item in parsed if item[3] == name]
        splits[name] = AgeSplit(
            paths=np.array([str(folder / item[2]) for item in chosen], dtype=str),
            ages=np.array([item[1] for item in chosen], dtype=np.float64),
            rows=np.array([item[0] for item in chosen], dtype=np.int64))
    for name in ("train", "test"):
        if len(splits[name]) == 0:
            raise InputError(f"{path} has no {name} rows")
    return splits


# ---------------------------------------------------------------- images


def pil_reason(error: BaseException) -> str:
    """A short reason PIL could not decode a file (without repeating the path)."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image format PIL can decode"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def read_rgb(path: str | Path, size_hw: tuple[int, int]) -> np.ndarray:
    """An image as uint8 RGB (H, W, 3), bilinear-resized; InputError if it cannot be decoded."""
    height, width = size_hw
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    except PIL_ERRORS as error:
        raise InputError(f"unreadable image {path}: {pil_reason(error)}") from None
    return np.asarray(rgb, dtype=np.uint8)


def read_image(path: str, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 RGB image, as the age models see it."""
    return read_rgb(path, (size, size))


def to_input_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) → ImageNet-normalized float32 (3, H, W), as a pretrained-style net wants."""
    scaled = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


def coin_flip() -> bool:
    """A fair coin from torch's RNG (seeded per DataLoader worker)."""
    return bool(torch.rand(()) < 0.5)


class AgeImages(torch.utils.data.Dataset):
    """Images of one split as (x, age) tensors; flips at random only when training.

    Holds only the split's arrays and two numbers, so it pickles into worker processes.
    """

    def __init__(self, split: AgeSplit, size: int = 224, train: bool = False) -> None:
        self.split = split
        self.size = size
        self.train = train

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_input_tensor(read_image(str(self.split.paths[index]), self.size))
        if self.train and coin_flip():
            x = x.flip(-1)
        return x, torch.tensor(self.split.ages[index], dtype=torch.float32)


# ---------------------------------------------------------------- fixture


def fixture_ages(rng: np.random.Generator, per_split: tuple[int, int, int]
                 ) -> dict[str, np.ndarray]:
    """Integer ages: long-tailed train (mostly 25-40, few above 70), even val/test."""
    n_train, n_val, n_test = per_split
    bulk = rng.normal(32.0, 4.0, n_train)
    tail = 40.0 + rng.exponential(15.0, n_train)
    train = np.where(rng.random(n_train) < 0.8, bulk, tail)
    return {"train": np.clip(np.round(train), 1, 99),
            "val": np.round(np.linspace(2, 95, n_val)),
            "test": np.round(np.linspace(4, 97, n_test))}


def age_picture(age: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """A noisy picture whose brightness and bar length grow with age (learnable signal)."""
    level = 40.0 + 1.5 * age
    picture = np.full((size, size, 3), level, dtype=np.float64)
    picture[..., 2] = 200.0 - 1.2 * age
    bar = int(round(size * min(age, 100.0) / 100.0))
    top = size // 3
    picture[top:top + max(size // 4, 1), :bar] = 250.0
    picture += rng.normal(0.0, 8.0, picture.shape)
    return np.clip(np.round(picture), 0, 255).astype(np.uint8)


def make_age_fixture(out_dir: str | Path, dataset: str,
                     per_split: tuple[int, int, int] = (48, 16, 16), size: int = 32,
                     seed: int = 0) -> Path:
    """Write a tiny dataset in the exact real format into ``out_dir``; return that folder."""
    if dataset not in AGE_CSV:
        raise InputError(f"unknown age dataset {dataset!r}; choose one of {', '.join(AGE_CSV)}")
    rng = np.random.default_rng(seed)
    folder = Path(out_dir)
    images = folder / FIXTURE_FOLDER[dataset]
    images.mkdir(parents=True, exist_ok=True)
    ages = fixture_ages(rng, per_split)
    rows = [(age, split) for split in SPLITS for age in ages[split]]
    order = rng.permutation(len(rows))
    lines = [",".join(AGE_HEADER)]
    for number, index in enumerate(order):
        age, split = rows[index]
        relative = f"{FIXTURE_FOLDER[dataset]}/{number:05d}.jpg"
        Image.fromarray(age_picture(age, size, rng)).save(folder / relative, quality=95)
        lines.append(f"{int(age)},{relative},{split}")
    (folder / AGE_CSV[dataset]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
