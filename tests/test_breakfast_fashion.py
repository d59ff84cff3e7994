"""Breakfast video-progress loader/splits and the Fashion-MNIST rotation benchmark."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from clsreg.analysis.errors import InputError
from clsreg.realdata.breakfast import (
    ACTIVITIES,
    SPLITS,
    Video,
    breakfast_split,
    load_breakfast,
    make_breakfast_fixture,
)
from clsreg.realdata.fashion import (
    MAX_ANGLE,
    TEST_IMAGES,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    load_fashion_images,
    long_tailed_angles,
    long_tailed_bin_probabilities,
    make_fashion_fixture,
    read_idx,
    rotate,
    rotation_splits,
    uniform_angles,
)

# ---- Breakfast ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_breakfast_fixture(tmp_path_factory.mktemp("breakfast"))


@pytest.fixture(scope="module")
def videos(fixture_dir: Path) -> list[Video]:
    return load_breakfast(fixture_dir)


def _write(folder: Path, name: str, array: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / name, array)
    return folder / name


def _assert_error_names(match_path: Path, call) -> str:
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert str(match_path) in message and "\n" not in message
    return message


def test_fixture_round_trip(fixture_dir: Path, videos: list[Video]) -> None:
    assert len(videos) == 8 * 2
    assert sorted({v.participant for v in videos}) == [3, 4, 16, 17, 29, 30, 42, 43]
    assert {v.activity for v in videos} == {"cereals", "coffee"}
    assert [v.name for v in videos] == sorted(v.name for v in videos)
    first = videos[0]
    assert first.name == "P03_cam01_P03_cereals"
    written = np.loadtxt(fixture_dir / "features" / f"{first.name}.txt")
    assert first.features.dtype == np.float32 and first.features.shape == written.shape
    np.testing.assert_array_equal(first.features, written.astype(np.float32))
    assert all(20 <= v.n_frames <= 40 and v.features.shape[1] == 64 for v in videos)
    # The first column carries progress (plus noise of sd 0.05): learnable.
    assert np.corrcoef(first.features[:, 0], first.progress)[0, 1] > 0.9


def test_fixture_is_deterministic(tmp_path: Path, fixture_dir: Path) -> None:
    again = make_breakfast_fixture(tmp_path)
    for path in (fixture_dir / "features").iterdir():
        assert (again / "features" / path.name).read_bytes() == path.read_bytes()


def test_known_arrays_round_trip_in_activity_subfolders(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    arrays = {"P05_webcam02_P05_tea": rng.normal(size=(7, 64)).astype(np.float32),
              "P20_cam01_P20_salat": rng.normal(size=(3, 64)).astype(np.float32)}
    for name, array in arrays.items():
        _write(tmp_path / "features" / name.rsplit("_", 1)[1], f"{name}.txt", array)
    loaded = load_breakfast(tmp_path)
    assert [v.name for v in loaded] == sorted(arrays)
    for video in loaded:
        np.testing.assert_array_equal(video.features, arrays[video.name])
    assert (loaded[0].participant, loaded[0].activity) == (5, "tea")
    assert (loaded[1].participant, loaded[1].activity) == (20, "salat")


def test_progress_is_t_over_n(videos: list[Video]) -> None:
    for video in videos:
        n = video.n_frames
        expected = (np.arange(n) / n).astype(np.float32)
        assert video.progress.dtype == np.float32
        np.testing.assert_array_equal(video.progress, expected)
    assert videos[0].progress[0] == 0.0 and videos[0].progress[-1] < 1.0


def test_63_columns_names_file_and_shape(tmp_path: Path) -> None:
    path = _write(tmp_path, "P03_cam01_P03_tea.txt", np.zeros((5, 63)))
    message = _assert_error_names(path, lambda: load_breakfast(tmp_path))
    assert "(5, 63)" in message and "64" in message


def test_nan_row_names_file_and_row(tmp_path: Path) -> None:
    array = np.zeros((6, 64))
    array[2, 10] = np.nan
    path = _write(tmp_path, "P03_cam01_P03_tea.txt", array)
    message = _assert_error_names(path, lambda: load_breakfast(tmp_path))
    assert "row 3" in message and "NaN" in message


def test_ragged_and_text_files_name_file(tmp_path: Path) -> None:
    path = tmp_path / "P03_cam01_P03_tea.txt"
    path.write_text("1 2 3\n1 2\n")
    _assert_error_names(path, lambda: load_breakfast(tmp_path))
    path.write_text("a b c\n")
    _assert_error_names(path, lambda: load_breakfast(tmp_path))


def test_unparseable_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "video03_tea.txt", np.zeros((5, 64)))
    message = _assert_error_names(path, lambda: load_breakfast(tmp_path))
    assert "does not parse" in message


def test_unknown_activity(tmp_path: Path) -> None:
    path = _write(tmp_path, "P03_cam01_P03_waffles.txt", np.zeros((5, 64)))
    message = _assert_error_names(path, lambda: load_breakfast(tmp_path))
    assert "'waffles'" in message


def test_single_frame_video(tmp_path: Path) -> None:
    path = _write(tmp_path, "P03_cam01_P03_tea.txt", np.zeros((1, 64)))
    message = _assert_error_names(path, lambda: load_breakfast(tmp_path))
    assert "at least 2 frames" in message


def test_empty_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    _assert_error_names(tmp_path / "features", lambda: load_breakfast(tmp_path))
    missing = tmp_path / "nowhere"
    _assert_error_names(missing, lambda: load_breakfast(missing))


def test_split_membership(videos: list[Video]) -> None:
    for split, held_out in SPLITS.items():
        parts = breakfast_split(videos, split, "cereals")
        people = {key: {videos[i].participant for i in np.unique(frames.video)}
                  for key, frames in parts.items()}
        assert people["test"] and people["test"] <= set(held_out)
        assert people["train"] and not people["train"] & set(held_out)
        assert len(people["val"]) == 1 and not people["val"] & people["train"]
        assert not people["val"] & set(held_out)
        assert all(videos[i].activity == "cereals" for f in parts.values() for i in f.video)
    s1 = breakfast_split(videos, "s1", "coffee")["test"]
    assert {videos[i].participant for i in s1.video} == {3, 4}


def test_split_frames_match_videos(videos: list[Video]) -> None:
    parts = breakfast_split(videos, "s2", "coffee")
    for frames in parts.values():
        assert frames.features.dtype == np.float32 and frames.features.shape == (len(frames), 64)
        for i in np.unique(frames.video):
            mask = frames.video == i
            np.testing.assert_array_equal(frames.features[mask], videos[i].features)
            np.testing.assert_array_equal(frames.progress[mask], videos[i].progress)
    total = sum(len(f) for f in parts.values())
    assert total == sum(v.n_frames for v in videos if v.activity == "coffee")


def test_split_is_deterministic(videos: list[Video]) -> None:
    first = breakfast_split(videos, "s3", "cereals", split_seed=7)
    second = breakfast_split(videos, "s3", "cereals", split_seed=7)
    for key in first:
        np.testing.assert_array_equal(first[key].video, second[key].video)
        np.testing.assert_array_equal(first[key].features, second[key].features)
    no_val = breakfast_split(videos, "s3", "cereals", val_fraction=0.0)
    assert len(no_val["val"]) == 0 and no_val["val"].features.shape == (0, 64)


def test_split_with_no_test_videos_names_split_and_activity(tmp_path: Path) -> None:
    folder = make_breakfast_fixture(tmp_path, participants=(3, 4), activities=("tea",))
    videos = load_breakfast(folder)
    with pytest.raises(InputError, match="s2.*tea.*no test"):
        breakfast_split(videos, "s2", "tea")
    with pytest.raises(InputError, match="s1.*tea.*no train"):
        breakfast_split(videos, "s1", "tea")
    with pytest.raises(InputError, match="unknown Breakfast split"):
        breakfast_split(videos, "s9", "tea")
    assert "tea" in ACTIVITIES


# ---- Fashion-MNIST: IDX files ---------------------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    """An independent IDX writer: magic 0,0,0x08,ndim then big-endian int32 dims."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_idx_round_trip_plain_and_gzip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    (tmp_path / "images").write_bytes(_idx_bytes(images))
    (tmp_path / "labels.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(tmp_path / "images"), images)
    back = read_idx(tmp_path / "labels.gz")
    assert back.dtype == np.uint8 and back.shape == (5,)
    np.testing.assert_array_equal(back, labels)


def test_idx_errors_name_file(tmp_path: Path) -> None:
    data = _idx_bytes(np.zeros((4, 28, 28), np.uint8))
    truncated = tmp_path / "short.gz"
    truncated.write_bytes(gzip.compress(data[:-100]))
    message = _assert_error_names(truncated, lambda: read_idx(truncated))
    assert f"expected {len(data)} bytes, found {len(data) - 100}" in message
    bad_magic = tmp_path / "magic"
    bad_magic.write_bytes(b"\x01" + data[1:])
    assert "magic" in _assert_error_names(bad_magic, lambda: read_idx(bad_magic))
    bad_type = tmp_path / "type"
    bad_type.write_bytes(data[:2] + b"\x0d" + data[3:])
    assert "0x0d" in _assert_error_names(bad_type, lambda: read_idx(bad_type))
    broken_gzip = tmp_path / "broken.gz"
    broken_gzip.write_bytes(gzip.compress(data)[:-10])
    _assert_error_names(broken_gzip, lambda: read_idx(broken_gzip))


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fashion_fixture(tmp_path_factory.mktemp("fashion"))


def test_fashion_fixture_loads(fashion_dir: Path, tmp_path: Path) -> None:
    train, test = load_fashion_images(fashion_dir)
    assert train.shape == (64, 28, 28) and test.shape == (32, 28, 28)
    assert train.dtype == np.uint8 and train.max() == 255
    assert read_idx(fashion_dir / TRAIN_LABELS).shape == (64,)
    again = make_fashion_fixture(tmp_path)
    for name in (TRAIN_IMAGES, TEST_IMAGES, TRAIN_LABELS):
        assert (again / name).read_bytes() == (fashion_dir / name).read_bytes()


def test_fashion_missing_says_how_to_install(tmp_path: Path) -> None:
    message = _assert_error_names(tmp_path, lambda: load_fashion_images(tmp_path))
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message


# ---- rotation -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)


def test_rotate_zero_is_identity(images: np.ndarray) -> None:
    out = rotate(images, np.zeros(4))
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out, images / 255.0, atol=1e-6)


def test_rotate_90_is_counter_clockwise_rot90(images: np.ndarray) -> None:
    expected = np.rot90(images, k=1, axes=(1, 2)) / 255.0
    np.testing.assert_allclose(rotate(images, np.full(4, 90.0)), expected, atol=1e-6)
    clockwise = np.rot90(images, k=-1, axes=(1, 2)) / 255.0
    np.testing.assert_allclose(rotate(images, np.full(4, -90.0)), clockwise, atol=1e-6)
    # Direction on a picture: a bright pixel at the top-left goes to the bottom-left.
    dot = np.zeros((1, 28, 28), np.uint8)
    dot[0, 0, 0] = 255
    assert rotate(dot, [90.0])[0, 27, 0] == pytest.approx(1.0)


def test_two_quarter_turns_make_a_half_turn(images: np.ndarray) -> None:
    quarter = np.rint(rotate(images, np.full(4, 90.0)) * 255).astype(np.uint8)
    twice = rotate(quarter, np.full(4, 90.0))
    np.testing.assert_allclose(twice, rotate(images, np.full(4, 180.0)), atol=1e-6)
    np.testing.assert_allclose(twice, images[:, ::-1, ::-1] / 255.0, atol=1e-6)


def test_rotate_is_per_image_zero_filled_and_in_range(images: np.ndarray) -> None:
    angles = np.array([0.0, 30.0, 45.0, 137.5])
    batch = rotate(images, angles)
    for i, angle in enumerate(angles):
        np.testing.assert_array_equal(batch[i], rotate(images[i:i + 1], [angle])[0])
    assert batch[2, 0, 0] == 0.0 and batch[2, 27, 27] == 0.0  # corners leave the frame at 45
    assert batch.min() >= 0.0 and batch.max() <= 1.0


# ---- angle laws and splits ------------------------------------------------------------------


def test_long_tailed_histogram_matches_law() -> None:
    n = 200_000
    angles = long_tailed_angles(n, np.random.default_rng(11))
    assert angles.min() >= 0.0 and angles.max() < MAX_ANGLE
    probabilities = long_tailed_bin_probabilities()
    assert probabilities.sum() == pytest.approx(1.0)
    assert probabilities[0] / probabilities[-1] == pytest.approx(100.0, rel=1e-9)
    assert np.all(np.diff(probabilities) < 0)
    counts = np.histogram(angles, bins=18, range=(0.0, MAX_ANGLE))[0]
    # Tolerance: every bin within 5 binomial standard errors of its exact expectation.
    standard_error = np.sqrt(n * probabilities * (1 - probabilities))
    assert np.all(np.abs(counts - n * probabilities) < 5 * standard_error)


def test_uniform_angles_mean() -> None:
    n = 100_000
    angles = uniform_angles(n, np.random.default_rng(12))
    assert angles.min() >= 0.0 and angles.max() < MAX_ANGLE
    standard_error = MAX_ANGLE / np.sqrt(12 * n)
    assert abs(angles.mean() - 90.0) < 4 * standard_error


def test_rotation_splits(fashion_dir: Path) -> None:
    train, test = load_fashion_images(fashion_dir)
    splits = rotation_splits(train, test, n_train=40, n_val=10, n_test=20, seed=1)
    for x, y, n in ((splits.x_train, splits.y_train, 40), (splits.x_val, splits.y_val, 10),
                    (splits.x_test, splits.y_test, 20)):
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.float32
        assert 0.0 <= y.min() and y.max() < MAX_ANGLE
        assert 0.0 <= x.min() and x.max() <= 1.0
    again = rotation_splits(train, test, n_train=40, n_val=10, n_test=20, seed=1)
    np.testing.assert_array_equal(again.x_train, splits.x_train)
    np.testing.assert_array_equal(again.y_test, splits.y_test)
    with pytest.raises(InputError, match="exceeds"):
        rotation_splits(train, test, n_train=60, n_val=10, n_test=20)


def test_a_tail_of_one_is_the_uniform_control():
    from clsreg.realdata.fashion import (
        long_tailed_angles,
        long_tailed_bin_probabilities,
        uniform_angles,
    )

    np.testing.assert_array_equal(long_tailed_bin_probabilities(1.0), np.full(18, 1 / 18))
    drawn = long_tailed_angles(1000, np.random.default_rng(5), tail=1.0)
    np.testing.assert_array_equal(drawn, uniform_angles(1000, np.random.default_rng(5)))
    with pytest.raises(InputError, match=">= 1"):
        long_tailed_angles(10, np.random.default_rng(0), tail=0.5)
