"""NYUD2-DIR: per-pixel depth with a balanced test mask (Yang et al., ICML 2021).

Format (docs: PROTOCOL §3): ``nyu2_train.csv`` / ``nyu2_test.csv`` with no header and two
columns ``rgb_path,depth_path`` whose paths start with ``data/`` (the first component is
dropped and the rest joined to the data folder). Train depth is an 8-bit PNG (metres =
value·10/255), test depth a 16-bit PNG in millimetres. ``test_balanced_mask.npy`` selects an
equal number of test pixels in each 0.1 m bin 7..99.

The validation split is cut from whole training scenes (consecutive frames of one scene are
near-duplicates, so a frame-level split would leak), never from test. Every row, file and
the mask are checked up front; bad data stops with one :class:`InputError` line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import inside_folder
from clsreg.realdata.agedir import (
    PIL_ERRORS,
    coin_flip,
    pil_reason,
    read_csv_rows,
    read_rgb,
    to_input_tensor,
)
from PIL import Image

TRAIN_CSV = "nyu2_train.csv"
TEST_CSV = "nyu2_test.csv"
MASK_FILE = "test_balanced_mask.npy"
N_BINS = 100
BIN_WIDTH = 0.1
TRAIN_DEPTH_SCALE = 10.0 / 255.0  # 8-bit value → metres
TEST_DEPTH_SCALE = 1.0 / 1000.0  # 16-bit millimetres → metres
MASK_FIRST_BIN = 7  # the balanced mask covers bins 7..99 (no test depth below 0.7 m)
# Yang et al. evaluate on depth scaled to a 240-px short side and centre-cropped (228×304);
# their released mask is in that frame, a fixture's mask at the native resolution.
EVAL_SHORT_SIDE = 240
EVAL_CROP = (228, 304)

MANY_BINS = (*range(9, 46), 47, 49)
MEDIUM_BINS = (7, 8, 46, 48, *range(50, 57), 58, 60, 61, 63)
FEW_BINS = tuple(b for b in range(N_BINS) if b not in MANY_BINS and b not in MEDIUM_BINS)

TRAIN_DEPTH_MODES = ("L", "P")
TEST_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I")


def depth_bin(depth: np.ndarray | float) -> np.ndarray:
    """0.1 m bin of each depth, ``min(int(10·d), 99)``, computed in the depth's own precision.

    Multiplying in float32 for float32 depths matches the reference code (0.7 → bin 7).
    """
    values = np.asarray(depth)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    scaled = values * values.dtype.type(1.0 / BIN_WIDTH)
    return np.minimum(scaled.astype(np.int64), N_BINS - 1)


def bin_shot(bins: np.ndarray) -> np.ndarray:
    """'many' / 'medium' / 'few' for each bin, from the fixed NYUD2-DIR bin lists."""
    table = np.full(N_BINS, "few", dtype="<U6")
    table[list(MANY_BINS)] = "many"
    table[list(MEDIUM_BINS)] = "medium"
    return table[np.asarray(bins, dtype=np.int64)]


@dataclass(frozen=True)
class DepthPairs:
    """RGB and depth file pairs (absolute paths), their scene and whether depth is test-coded."""

    rgb: np.ndarray
    depth: np.ndarray
    scenes: np.ndarray
    test: bool

    def __len__(self) -> int:
        return int(self.rgb.size)

    def head(self, n: int) -> DepthPairs:
        """The first ``n`` pairs, for quick runs (``--limit``)."""
        return DepthPairs(self.rgb[:n], self.depth[:n], self.scenes[:n], self.test)

    def take(self, index: np.ndarray) -> DepthPairs:
        """The pairs at ``index`` (a split's rows)."""
        return DepthPairs(self.rgb[index], self.depth[index], self.scenes[index], self.test)


# ---------------------------------------------------------------- loading


def data_path(folder: Path, text: str, where: str) -> Path:
    """``data/a/b.png`` → ``folder/a/b.png`` (the first component names the release folder)."""
    parts = PurePosixPath(text.strip()).parts
    if not parts:
        raise InputError(f"{where}: empty path")
    if len(parts) < 2:
        raise InputError(f"{where}: path {text.strip()!r} should start with data/")
    return inside_folder(folder, PurePosixPath(*parts[1:]), where)


def read_pairs(folder: Path, name: str, test: bool) -> DepthPairs:
    """Check one pair list (2 columns, every file present) and return its pairs."""
    path = folder / name
    if not path.is_file():
        raise InputError(f"{path} not found; expected DATA_DIR/{name} with rows "
                         "rgb_path,depth_path (no header)")
    rgb, depth, scenes = [], [], []
    for line, row in read_csv_rows(path):
        where = f"{name} line {line}"
        if len(row) != 2:
            raise InputError(f"{where}: expected 2 columns (rgb_path,depth_path), "
                             f"found {len(row)}")
        rgb_file, depth_file = (data_path(folder, text, where) for text in row)
        for file, text in ((rgb_file, row[0]), (depth_file, row[1])):
            if not file.is_file():
                raise InputError(f"{where}: {text.strip()} not found (looked for {file})")
        rgb.append(str(rgb_file))
        depth.append(str(depth_file))
        scenes.append(rgb_file.parent.name)
    if not rgb:
        raise InputError(f"{path} has no rows")
    return DepthPairs(np.array(rgb, dtype=str), np.array(depth, dtype=str),
                      np.array(scenes, dtype=str), test)


def scene_split(scenes: np.ndarray, val_fraction: float, split_seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of train and val: whole scenes, the last shuffled ones go to val."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    names = np.unique(scenes)
    if names.size < 2:
        raise InputError(f"{TRAIN_CSV} has {names.size} scene(s); a validation split by scene "
                         "needs at least 2")
    shuffled = np.random.default_rng(split_seed).permutation(names)
    # round() first so that 0.3·10 counts as 3 scenes, not ceil(3.0000000000000004) = 4
    n_val = min(max(math.ceil(round(val_fraction * names.size, 9)), 1), names.size - 1)
    is_val = np.isin(scenes, shuffled[names.size - n_val:])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def image_size_hw(path: str) -> tuple[int, int]:
    """(height, width) of an image from its header only."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except PIL_ERRORS as error:
        raise InputError(f"unreadable image {path}: {pil_reason(error)}") from None
    return height, width


def eval_frame_fits(native_hw: tuple[int, int], mask_hw: tuple[int, int]) -> bool:
    """Whether a mask of ``mask_hw`` is native or Yang et al.'s test frame (see to_mask_frame)."""
    if tuple(mask_hw) == tuple(native_hw):
        return True
    scaled = scaled_short_side(native_hw, EVAL_SHORT_SIDE)
    return tuple(mask_hw) == EVAL_CROP and EVAL_CROP[0] <= scaled[0] and EVAL_CROP[1] <= scaled[1]


def load_mask(folder: Path, n_test: int, native_hw: tuple[int, int]) -> np.ndarray:
    """The balanced test mask as bool (N_test, H, W), or one InputError saying what is off."""
    path = folder / MASK_FILE
    if not path.is_file():
        raise InputError(f"{path} not found; expected the balanced test mask "
                         f"(N_test, H, W) of 0/1 next to {TEST_CSV}")
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"{path} is not a readable .npy array: {error}") from None
    if not isinstance(mask, np.ndarray) or mask.ndim != 3:
        shape = getattr(mask, "shape", "an archive")
        raise InputError(f"{path}: expected a 3-d array (N_test, H, W), found {shape}")
    if mask.shape[0] != n_test:
        raise InputError(f"{path}: mask has {mask.shape[0]} images but {TEST_CSV} "
                         f"lists {n_test}")
    if not eval_frame_fits(native_hw, mask.shape[1:]):
        raise InputError(f"{path}: mask frames are {mask.shape[1]}x{mask.shape[2]}; expected "
                         f"the test depth maps' {native_hw[0]}x{native_hw[1]} or Yang et al.'s "
                         f"{EVAL_CROP[0]}x{EVAL_CROP[1]} test frame")
    if mask.dtype != np.bool_:
        if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
            raise InputError(f"{path}: mask dtype {mask.dtype} is not boolean or 0/1")
        if not ((mask == 0) | (mask == 1)).all():
            raise InputError(f"{path}: mask has values other than 0 and 1")
        mask = mask.astype(bool)
    return mask


def load_nyud2(data_dir: str | Path, val_fraction: float = 0.2, split_seed: int = 0
               ) -> tuple[dict[str, DepthPairs], np.ndarray]:
    """Train/val/test pairs (val = whole training scenes) and the balanced test mask."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise InputError(f"data folder {folder} not found (or not a folder)")
    folder = folder.resolve()
    train_all = read_pairs(folder, TRAIN_CSV, test=False)
    test = read_pairs(folder, TEST_CSV, test=True)
    train_rows, val_rows = scene_split(train_all.scenes, val_fraction, split_seed)
    mask = load_mask(folder, len(test), image_size_hw(str(test.depth[0])))
    pairs = {"train": train_all.take(train_rows), "val": train_all.take(val_rows), "test": test}
    return pairs, mask


# ---------------------------------------------------------------- images


def read_depth(path: str | Path, test: bool) -> np.ndarray:
    """Depth in metres (float32, H×W); the PNG's bit depth must match train (8) or test (16)."""
    expected = TEST_DEPTH_MODES if test else TRAIN_DEPTH_MODES
    try:
        with Image.open(path) as image:
            found = (image.format, image.mode)
            if found[1] == "P":
                image = image.convert("L")
            values = np.asarray(image)
    except PIL_ERRORS as error:
        raise InputError(f"unreadable depth map {path}: {pil_reason(error)}") from None
    if found[0] != "PNG" or found[1] not in expected:
        kind = "a 16-bit (test)" if test else "an 8-bit (train)"
        raise InputError(f"{path}: expected {kind} depth PNG, found a {found[0]} "
                         f"of mode {found[1]}")
    if test:
        return values.astype(np.float32) / np.float32(1000.0)
    return values.astype(np.float32) * np.float32(10.0) / np.float32(255.0)


def resize_nearest(array: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """A 2-d float map resized with nearest neighbour (depth values are never blended)."""
    if tuple(array.shape) == tuple(size_hw):
        return array
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    resized = image.resize((size_hw[1], size_hw[0]), Image.Resampling.NEAREST)
    return np.asarray(resized, dtype=np.float32)


def scaled_short_side(size_hw: tuple[int, int], short: int) -> tuple[int, int]:
    """Size with the short side ``short`` (the reference code's ``Scale``, int-truncated)."""
    height, width = size_hw
    if width < height:
        return int(short * height / width), short
    return short, int(short * width / height)


def to_mask_frame(array: np.ndarray, mask_hw: tuple[int, int]) -> np.ndarray:
    """A native-resolution 2-d map (depth, or a prediction upsampled to it) in the mask's frame.

    Identity when the mask is at native resolution; otherwise Yang et al.'s test frame:
    nearest-scale to a 240-px short side, then centre-crop to ``mask_hw``.
    """
    if tuple(array.shape) == tuple(mask_hw):
        return array
    scaled = resize_nearest(array, scaled_short_side(array.shape, EVAL_SHORT_SIDE))
    top = int(round((scaled.shape[0] - mask_hw[0]) / 2.0))
    left = int(round((scaled.shape[1] - mask_hw[1]) / 2.0))
    return scaled[top:top + mask_hw[0], left:left + mask_hw[1]]


class DepthImages(torch.utils.data.Dataset):
    """Pairs as (x, depth) tensors: x at ``size``, depth at half of it (the decoder's output).

    Holds only the pairs and two settings, so it pickles into DataLoader workers.
    """

    def __init__(self, pairs: DepthPairs, size: tuple[int, int] = (228, 304),
                 train: bool = False) -> None:
        self.pairs = pairs
        self.size = (int(size[0]), int(size[1]))
        self.train = train

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def target_size(self) -> tuple[int, int]:
        """(h, w) of the depth target: half the input resolution."""
        return self.size[0] // 2, self.size[1] // 2

    def full_depth(self, index: int) -> np.ndarray:
        """Depth in metres at the file's native resolution (where the test mask lives)."""
        return read_depth(str(self.pairs.depth[index]), self.pairs.test)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_input_tensor(read_rgb(str(self.pairs.rgb[index]), self.size))
        y = torch.from_numpy(resize_nearest(self.full_depth(index), self.target_size).copy())
        if self.train and coin_flip():
            x, y = x.flip(-1), y.flip(-1)
        return x, y


# ---------------------------------------------------------------- fixture

FIXTURE_SCENES = ("living_room", "bedroom", "kitchen", "office", "bathroom", "dining_room")


def fixture_depth(rng: np.random.Generator, size_hw: tuple[int, int]) -> np.ndarray:
    """A smooth room-like depth ramp, ~0.7 m near the bottom to ~6 m far, mostly 1-4 m."""
    height, width = size_hw
    near = rng.uniform(0.7, 1.0)
    far = rng.uniform(3.5, 6.0)
    rows = 1.0 - np.linspace(0.0, 1.0, height)[:, None]  # 1 at the top (far wall)
    cols = np.linspace(-1.0, 1.0, width)[None, :]
    t = np.clip(rows ** 1.5 + rng.uniform(-0.15, 0.15) * cols, 0.0, 1.0)
    return near * (far / near) ** t


def fixture_rgb(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colours that darken and cool with depth, plus noise, so depth is learnable from RGB."""
    shade = 1.0 - np.log(depth / 0.7) / np.log(10.0 / 0.7)
    picture = np.stack([230 * shade, 60 + 150 * shade, 200 - 120 * shade], axis=-1)
    picture += rng.normal(0.0, 6.0, picture.shape)
    return np.clip(np.round(picture), 0, 255).astype(np.uint8)


def balanced_mask(depths: np.ndarray, rng: np.random.Generator, min_pixels: int = 10
                  ) -> np.ndarray:
    """Equal pixels per bin over bins 7..99 that hold at least ``min_pixels`` (as released)."""
    bins = depth_bin(depths).ravel()
    counts = np.bincount(bins, minlength=N_BINS)
    used = [b for b in range(MASK_FIRST_BIN, N_BINS) if counts[b] >= min_pixels]
    per_bin = min(counts[b] for b in used)
    mask = np.zeros(bins.size, dtype=bool)
    for b in used:
        mask[rng.choice(np.flatnonzero(bins == b), size=per_bin, replace=False)] = True
    return mask.reshape(depths.shape)


def make_nyud2_fixture(out_dir: str | Path, n_train_scenes: int = 4, images_per_scene: int = 4,
                       n_test: int = 4, size: tuple[int, int] = (48, 64), seed: int = 0
                       ) -> Path:
    """Write a tiny NYUD2-DIR in the exact real format into ``out_dir``; return that folder."""
    rng = np.random.default_rng(seed)
    folder = Path(out_dir)
    train_lines = []
    for s in range(n_train_scenes):
        scene = f"{FIXTURE_SCENES[s % len(FIXTURE_SCENES)]}_{s + 1:04d}_out"
        (folder / "nyu2_train" / scene).mkdir(parents=True, exist_ok=True)
        for k in range(images_per_scene):
            relative = f"nyu2_train/{scene}/{k + 1}"
            depth = fixture_depth(rng, size)
            code = np.clip(np.round(depth / TRAIN_DEPTH_SCALE), 0, 255).astype(np.uint8)
            Image.fromarray(code).save(folder / f"{relative}.png")
            Image.fromarray(fixture_rgb(depth, rng)).save(folder / f"{relative}.jpg", quality=95)
            train_lines.append(f"data/{relative}.jpg,data/{relative}.png")
    (folder / "nyu2_test").mkdir(parents=True, exist_ok=True)
    test_lines, test_depths = [], []
    for k in range(n_test):
        stem = f"nyu2_test/{k:05d}"
        depth = fixture_depth(rng, size)
        millimetres = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
        Image.fromarray(millimetres).save(folder / f"{stem}_depth.png")
        Image.fromarray(fixture_rgb(depth, rng)).save(folder / f"{stem}_colors.png")
        test_lines.append(f"data/{stem}_colors.png,data/{stem}_depth.png")
        test_depths.append(read_depth(folder / f"{stem}_depth.png", test=True))
    (folder / TRAIN_CSV).write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    (folder / TEST_CSV).write_text("\n".join(test_lines) + "\n", encoding="utf-8")
    np.save(folder / MASK_FILE, balanced_mask(np.stack(test_depths), rng))
    return folder
