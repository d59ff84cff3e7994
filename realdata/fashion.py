"""Semi-synthetic Fashion-MNIST rotation benchmark: real pixels, a constructed label.

The images are the 70,000 real 28x28 Fashion-MNIST images (Debian package
``dataset-fashion-mnist``, four IDX files). The *target is constructed*: each image is rotated
by an angle ``a`` in degrees, ``0 <= a < 180``, and the model regresses ``a`` from the rotated
pixels. The clothing class is not used.

Angle laws (the imbalance is ours, not the data's):

* training: a truncated exponential on ``[0, 180)``,
  ``f(a) = lam * exp(-lam * a) / (1 - exp(-180 * lam))`` with ``lam = ln(tail) / 170``, so over
  18 bins of 10 degrees the first bin ``[0, 10)`` holds exactly ``tail`` times the mass of the
  last bin ``[170, 180)`` (default ``tail = 100``: about 23.9% vs 0.24% of the draws);
* validation and test: uniform on ``[0, 180)``.

Rotation convention: a positive angle turns the image counter-clockwise *as displayed* (row 0
at the top), about the image centre, with bilinear interpolation and zero fill; 90 degrees
equals ``np.rot90(image)``. Angles in ``[0, 180)`` keep the target unambiguous for asymmetric
garments without wrapping, while symmetric ones (a T-shirt at 0 vs 180) make some of it hard.

Every problem with the user's files is raised as :class:`analysis.errors.InputError`.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from clsreg.analysis.errors import InputError

DEFAULT_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IMAGE_SIZE = 28

MAX_ANGLE = 180.0
N_ANGLE_BINS = 18
DEFAULT_TAIL = 100.0
# Sized so a small CNN trains a few methods x 5 seeds in minutes on a 2-core CPU.
N_TRAIN = 6000
N_VAL = 1000
N_TEST = 2000

_UINT8 = 0x08
_ROTATE_CHUNK = 4096


@dataclass(frozen=True)
class RotationSplits:
    """Rotated images ``(N, 1, 28, 28)`` float32 in [0, 1] and their angles in degrees."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# ---- IDX files ------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file of unsigned bytes (plain or ``.gz``) as a uint8 array of its shape."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != _UINT8:
        raise InputError(f"{path}: IDX type code 0x{data[2]:02x} is not supported "
                         "(only 0x08, unsigned bytes)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated IDX header: expected {header} bytes, found "
                         f"{len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    expected = header + math.prod(shape)
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "oversized"
        raise InputError(f"{path}: {kind} IDX file of shape {shape}: expected {expected} bytes, "
                         f"found {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file, gzipped (reproducibly) when the name ends in .gz."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UINT8, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    data = header + array.tobytes()
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as stream:
            stream.write(data)
        data = buffer.getvalue()
    path.write_bytes(data)
    return path


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(f"{path}: cannot read ({' '.join(str(error).split())})") from None


def load_fashion_images(data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST training and test images, uint8 ``(N, 28, 28)`` each."""
    folder = Path(DEFAULT_FASHION_DIR if data_dir is None else data_dir)
    paths = [_find_idx(folder, name) for name in (TRAIN_IMAGES, TEST_IMAGES)]
    images = tuple(read_idx(path) for path in paths)
    for path, array in zip(paths, images, strict=True):
        if array.ndim != 3 or array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or not len(array):
            raise InputError(f"{path}: expected images of shape (N, {IMAGE_SIZE}, "
                             f"{IMAGE_SIZE}), found {array.shape}")
    return images[0], images[1]


def _find_idx(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, or its un-gzipped twin."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise InputError(f"Fashion-MNIST not found in {folder} (no {name}); install it with "
                     "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or pass "
                     "--data-dir with the four IDX files")


# ---- angles ---------------------------------------------------------------------------------


def tail_rate(tail: float = DEFAULT_TAIL) -> float:
    """Decay per degree making bin [0, 10) ``tail`` times as likely as bin [170, 180)
    (0 for ``tail = 1``: uniform training angles, the balanced control)."""
    if not tail >= 1.0:
        raise InputError(f"the head:tail ratio of the angle law must be >= 1, got {tail}")
    bin_width = MAX_ANGLE / N_ANGLE_BINS
    return math.log(tail) / (MAX_ANGLE - bin_width)


def long_tailed_angles(n: int, rng: np.random.Generator,
                       tail: float = DEFAULT_TAIL) -> np.ndarray:
    """``n`` training angles from the truncated exponential in the module docstring."""
    lam = tail_rate(tail)
    if lam == 0.0:
        return uniform_angles(n, rng)
    u = rng.random(n)
    angles = -np.log1p(-u * -math.expm1(-lam * MAX_ANGLE)) / lam
    return np.minimum(angles, np.nextafter(MAX_ANGLE, 0.0)).astype(np.float32)


def long_tailed_bin_probabilities(tail: float = DEFAULT_TAIL,
                                  bins: int = N_ANGLE_BINS) -> np.ndarray:
    """Exact mass of each of ``bins`` equal angle bins under the long-tailed law."""
    lam = tail_rate(tail)
    if lam == 0.0:
        return np.full(bins, 1.0 / bins)
    edges = np.linspace(0.0, MAX_ANGLE, bins + 1)
    cdf = -np.expm1(-lam * edges) / -math.expm1(-lam * MAX_ANGLE)
    return np.diff(cdf)


def uniform_angles(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` validation/test angles, uniform on [0, 180)."""
    angles = rng.random(n) * MAX_ANGLE
    return np.minimum(angles, np.nextafter(MAX_ANGLE, 0.0)).astype(np.float32)


# ---- rotation -------------------------------------------------------------------------------


def rotate(images: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Rotate each image counter-clockwise (as displayed) by its angle; float32 in [0, 1].

    Bilinear interpolation about the image centre with zero fill, in float64 on the CPU, so
    the result is deterministic and multiples of 90 degrees are exact pixel permutations.
    """
    images = np.asarray(images)
    angles = np.broadcast_to(np.asarray(angles_deg, dtype=np.float64), images.shape[:1])
    if images.ndim != 3:
        raise InputError(f"rotate expects images of shape (N, H, W), got {images.shape}")
    out = np.empty(images.shape, dtype=np.float32)
    for start in range(0, len(images), _ROTATE_CHUNK):
        stop = start + _ROTATE_CHUNK
        out[start:stop] = _rotate_chunk(images[start:stop], angles[start:stop])
    return out


def _rotate_chunk(images: np.ndarray, angles: np.ndarray) -> np.ndarray:
    pixels = torch.from_numpy(images.astype(np.float64) / 255.0).unsqueeze(1)
    radians = torch.from_numpy(np.deg2rad(angles))
    cos, sin, zero = torch.cos(radians), torch.sin(radians), torch.zeros_like(radians)
    # affine_grid maps output (x = column, y = row) to the input point it samples.
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    rotated = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    return rotated.squeeze(1).clamp_(0.0, 1.0).numpy().astype(np.float32)


# ---- splits ---------------------------------------------------------------------------------


def rotation_splits(train_images: np.ndarray, test_images: np.ndarray, n_train: int = N_TRAIN,
                    n_val: int = N_VAL, n_test: int = N_TEST, seed: int = 0,
                    tail: float = DEFAULT_TAIL) -> RotationSplits:
    """Long-tailed training angles; uniform val (held-out training images) and test angles."""
    if n_train < 1 or n_val < 0 or n_test < 1:
        raise InputError(f"need n_train >= 1, n_val >= 0, n_test >= 1; got {n_train}, "
                         f"{n_val}, {n_test}")
    if n_train + n_val > len(train_images):
        raise InputError(f"n_train + n_val = {n_train + n_val} exceeds the "
                         f"{len(train_images)} training images")
    if n_test > len(test_images):
        raise InputError(f"n_test = {n_test} exceeds the {len(test_images)} test images")
    # Independent streams: changing one split's size leaves the others' draws unchanged.
    pick, train_rng, val_rng, test_rng = (np.random.default_rng(s)
                                          for s in np.random.SeedSequence(seed).spawn(4))
    order = pick.permutation(len(train_images))
    test_index = np.sort(pick.permutation(len(test_images))[:n_test])
    train_index, val_index = np.sort(order[:n_train]), np.sort(order[n_train:n_train + n_val])
    y_train = long_tailed_angles(n_train, train_rng, tail)
    y_val, y_test = uniform_angles(n_val, val_rng), uniform_angles(n_test, test_rng)
    return RotationSplits(
        _rotated(train_images[train_index], y_train), y_train,
        _rotated(train_images[val_index], y_val), y_val,
        _rotated(test_images[test_index], y_test), y_test,
    )


def _rotated(images: np.ndarray, angles: np.ndarray) -> np.ndarray:
    return rotate(images, angles)[:, None]


# ---- fixture --------------------------------------------------------------------------------


def make_fashion_fixture(out_dir: str | Path, n_train: int = 64, n_test: int = 32,
                         seed: int = 0) -> Path:
    """Write the four gzipped IDX files with small synthetic images; returns the folder.

    Each image is an off-centre bright bar on a dark background (so rotation shows), with a
    random label 0-9. Byte-for-byte deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for images_name, labels_name, n in ((TRAIN_IMAGES, TRAIN_LABELS, n_train),
                                        (TEST_IMAGES, TEST_LABELS, n_test)):
        write_idx(folder / images_name, _bar_images(n, rng))
        write_idx(folder / labels_name, rng.integers(0, 10, size=n, dtype=np.uint8))
    return folder


def _bar_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """Noisy 28x28 uint8 images with an asymmetric bright bar."""
    images = rng.integers(0, 40, size=(n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for image in images:
        top, left = rng.integers(4, 10), rng.integers(6, 12)
        image[top:top + 14, left:left + 5] = rng.integers(150, 256)
        image[top:top + 4, left:left + 12] = 255
    return images
