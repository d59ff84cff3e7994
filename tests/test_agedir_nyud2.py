"""Image benchmark loaders (IMDB-WIKI-DIR / AgeDB-DIR, NYUD2-DIR) on tiny fixtures."""

import csv
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from clsreg.analysis.errors import InputError
from clsreg.realdata.agedir import (
    AGE_CSV,
    AgeImages,
    load_age_dataset,
    make_age_fixture,
    read_image,
)
from clsreg.realdata.nyud2 import (
    FEW_BINS,
    MANY_BINS,
    MEDIUM_BINS,
    DepthImages,
    bin_shot,
    depth_bin,
    load_nyud2,
    make_nyud2_fixture,
    read_depth,
    scene_split,
    to_mask_frame,
)
from PIL import Image

# ---------------------------------------------------------------- helpers


def solid_png(path: Path, rgb=(255, 0, 0), size=(6, 4)) -> None:
    """A constant-colour PNG (lossless, so decoded values are exact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def age_dir(tmp_path: Path, body: str, header: str = "age,path,split",
            images=("a.png", "b.png", "c.png")) -> Path:
    """A hand-written imdb_wiki.csv with a few solid images."""
    for name in images:
        solid_png(tmp_path / "img" / name)
    (tmp_path / "imdb_wiki.csv").write_text(f"{header}\n{body}", encoding="utf-8")
    return tmp_path


GOOD_BODY = "30,img/a.png,train\n71.5,img/b.png,test\n5,img/c.png,val\n"


@pytest.fixture(scope="module")
def age_fixture(tmp_path_factory) -> Path:
    return make_age_fixture(tmp_path_factory.mktemp("age"), "imdb-wiki-dir")


@pytest.fixture(scope="module")
def nyu_fixture(tmp_path_factory) -> Path:
    return make_nyud2_fixture(tmp_path_factory.mktemp("nyu"))


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


# ---------------------------------------------------------------- age: loading


def test_age_fixture_round_trip(age_fixture):
    splits = load_age_dataset(age_fixture, "imdb-wiki-dir")
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 48, "val": 16, "test": 16}
    with (age_fixture / "imdb_wiki.csv").open(newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["age", "path", "split"]
    for name, split in splits.items():
        assert split.ages.dtype == np.float64
        for path, age, row in zip(split.paths, split.ages, split.rows, strict=True):
            age_text, relative, split_name = written[row - 1]  # line 1 is the header
            assert (float(age_text), split_name) == (age, name)
            assert Path(path).is_absolute() and Path(path).is_file()
            assert path == str((age_fixture / relative).resolve())
    # long-tailed train, evenly spread test
    train = splits["train"].ages
    assert np.mean((train >= 25) & (train <= 40)) > 0.5
    assert 0 < np.sum(train > 70) <= 6
    assert np.ptp(splits["test"].ages) > 80


def test_age_fixture_is_deterministic_and_agedb_uses_its_csv(tmp_path):
    first = make_age_fixture(tmp_path / "a", "agedb-dir", per_split=(5, 2, 3), seed=3)
    second = make_age_fixture(tmp_path / "b", "agedb-dir", per_split=(5, 2, 3), seed=3)
    assert AGE_CSV["agedb-dir"] == "agedb.csv"
    text = (first / "agedb.csv").read_text()
    assert text == (second / "agedb.csv").read_text()
    assert len(text.splitlines()) == 1 + 5 + 2 + 3
    splits = load_age_dataset(first, "agedb-dir")
    assert [len(splits[name]) for name in ("train", "val", "test")] == [5, 2, 3]


def test_hand_written_age_csv(tmp_path):
    splits = load_age_dataset(age_dir(tmp_path, GOOD_BODY), "imdb-wiki-dir")
    assert splits["train"].ages.tolist() == [30.0]
    assert splits["test"].ages.tolist() == [71.5]
    assert splits["val"].ages.tolist() == [5.0]
    assert [splits[n].rows.tolist() for n in ("train", "test", "val")] == [[2], [3], [4]]
    assert splits["test"].paths[0] == str((tmp_path / "img" / "b.png").resolve())


def test_age_split_head(age_fixture):
    train = load_age_dataset(age_fixture, "imdb-wiki-dir")["train"]
    head = train.head(5)
    assert len(head) == 5
    assert head.ages.tolist() == train.ages[:5].tolist()
    assert head.rows.tolist() == train.rows[:5].tolist()


@pytest.mark.parametrize(("header", "body", "needles"), [
    ("age,file,split", GOOD_BODY, ["imdb_wiki.csv", "found age,file,split"]),
    ("age,path,split", "30,img/a.png,train\nnan,img/b.png,test\n", ["line 3", "not a finite"]),
    ("age,path,split", "abc,img/a.png,train\n", ["line 2", "'abc' is not a number"]),
    ("age,path,split", "250,img/a.png,train\n", ["line 2", "age 250 is outside 0..200"]),
    ("age,path,split", "30,img/a.png,train\n40,img/b.png,dev\n", ["line 3", "'dev'"]),
    ("age,path,split", "30,img/a.png,train,x\n", ["line 2", "expected 3 columns", "found 4"]),
    ("age,path,split", "30,img/a.png\n", ["line 2", "found 2"]),
    ("age,path,split", "30,,train\n", ["line 2", "empty image path"]),
    ("age,path,split", "30,img/a.png,train\n40,img/zz.png,test\n",
     ["line 3", "img/zz.png not found"]),
    ("age,path,split", "30,img/a.png,val\n40,img/b.png,test\n", ["no train rows"]),
    ("age,path,split", "30,img/a.png,train\n40,img/b.png,val\n", ["no test rows"]),
])
def test_bad_age_csv_names_file_and_line(tmp_path, header, body, needles):
    folder = age_dir(tmp_path, body, header=header)
    with pytest.raises(InputError) as caught:
        load_age_dataset(folder, "imdb-wiki-dir")
    message = str(caught.value)
    assert "\n" not in message
    assert "imdb_wiki.csv" in message
    for needle in needles:
        assert needle in message


def test_missing_age_folder_csv_or_dataset(tmp_path):
    with pytest.raises(InputError, match="data folder .* not found"):
        load_age_dataset(tmp_path / "nope", "imdb-wiki-dir")
    with pytest.raises(InputError, match="expected DATA_DIR/imdb_wiki.csv with columns "
                                         "age,path,split"):
        load_age_dataset(tmp_path, "imdb-wiki-dir")
    with pytest.raises(InputError, match="unknown age dataset 'utk'"):
        load_age_dataset(tmp_path, "utk")


# ---------------------------------------------------------------- age: images


def test_read_image_resizes_to_square_rgb(tmp_path):
    solid_png(tmp_path / "x.png", rgb=(10, 200, 30), size=(12, 7))
    image = read_image(str(tmp_path / "x.png"), 5)
    assert image.shape == (5, 5, 3) and image.dtype == np.uint8
    assert (image == np.array([10, 200, 30], dtype=np.uint8)).all()


def test_corrupt_jpeg_is_an_input_error(age_fixture, tmp_path):
    good = sorted((age_fixture / "imdb_wiki").glob("*.jpg"))[0].read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=f"unreadable image {broken}"):
        read_image(str(broken), 8)
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="junk.jpg: not an image format"):
        read_image(str(tmp_path / "junk.jpg"), 8)


def test_age_images_item_normalized_and_flipped_only_in_training(tmp_path):
    folder = age_dir(tmp_path, GOOD_BODY)
    test = load_age_dataset(folder, "imdb-wiki-dir")["test"]
    x, y = AgeImages(test, size=4)[0]
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32
    assert y.dtype == torch.float32 and y.shape == () and y.item() == 71.5
    # pure red (255, 0, 0): (1 - 0.485) / 0.229 and (0 - 0.456) / 0.224
    assert torch.allclose(x[0], torch.full((4, 4), 2.2489083))
    assert torch.allclose(x[1], torch.full((4, 4), -2.0357143))
    # a left/right asymmetric image: flips appear only with train=True
    left_red = np.zeros((4, 4, 3), dtype=np.uint8)
    left_red[:, :2, 0] = 255
    Image.fromarray(left_red).save(folder / "img" / "b.png")
    plain = AgeImages(test, size=4)[0][0]
    torch.manual_seed(0)
    trained = [AgeImages(test, size=4, train=True)[0][0] for _ in range(16)]
    flipped = [bool(torch.equal(x, plain.flip(-1))) for x in trained]
    assert any(flipped) and not all(flipped)
    assert all(torch.equal(x, plain) for x, f in zip(trained, flipped, strict=True) if not f)


def test_age_images_pickle(age_fixture):
    data = AgeImages(load_age_dataset(age_fixture, "imdb-wiki-dir")["val"], size=16)
    copy = pickle.loads(pickle.dumps(data))
    assert len(copy) == 16
    assert torch.equal(copy[3][0], data[3][0]) and copy[3][1] == data[3][1]


# ---------------------------------------------------------------- depth: codes, bins, shots


def test_depth_decoding(tmp_path):
    Image.fromarray(np.full((3, 5), 51, dtype=np.uint8)).save(tmp_path / "train.png")
    Image.fromarray(np.full((3, 5), 2345, dtype=np.uint16)).save(tmp_path / "test.png")
    train = read_depth(tmp_path / "train.png", test=False)
    test = read_depth(tmp_path / "test.png", test=True)
    assert train.shape == test.shape == (3, 5)
    assert train.dtype == test.dtype == np.float32
    assert np.allclose(train, 2.0) and np.allclose(test, 2.345)


def test_wrong_bit_depth_or_unreadable_depth(tmp_path):
    Image.fromarray(np.full((3, 5), 2345, dtype=np.uint16)).save(tmp_path / "d16.png")
    with pytest.raises(InputError, match="d16.png: expected an 8-bit .* mode I;16"):
        read_depth(tmp_path / "d16.png", test=False)
    Image.fromarray(np.full((3, 5), 51, dtype=np.uint8)).save(tmp_path / "d8.png")
    with pytest.raises(InputError, match="d8.png: expected a 16-bit .* mode L"):
        read_depth(tmp_path / "d8.png", test=True)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="unreadable depth map .*junk.png"):
        read_depth(tmp_path / "junk.png", test=True)


def test_depth_bin_edges():
    assert depth_bin(np.array([0.69, 0.7, 9.99, 12.0])).tolist() == [6, 7, 99, 99]
    # float32 depths bin in float32, like the reference code: 0.7f stays in bin 7
    assert depth_bin(np.array([0.7, 2.345], dtype=np.float32)).tolist() == [7, 23]
    assert depth_bin(0.0).tolist() == 0


def test_shot_lists():
    assert bin_shot(np.array([9, 46, 57, 0, 45, 47, 63, 64])).tolist() == [
        "many", "medium", "few", "few", "many", "many", "medium", "few"]
    many, medium, few = set(MANY_BINS), set(MEDIUM_BINS), set(FEW_BINS)
    assert not (many & medium or many & few or medium & few)
    assert many | medium | few == set(range(100))
    assert (len(many), len(medium), len(few)) == (39, 15, 46)


# ---------------------------------------------------------------- depth: loading


def test_nyud2_fixture_round_trip(nyu_fixture):
    pairs, mask = load_nyud2(nyu_fixture)
    assert {name: len(p) for name, p in pairs.items()} == {"train": 12, "val": 4, "test": 4}
    assert mask.shape == (4, 48, 64) and mask.dtype == np.bool_
    rows = (nyu_fixture / "nyu2_train.csv").read_text().splitlines()
    assert rows[0] == ("data/nyu2_train/living_room_0001_out/1.jpg,"
                       "data/nyu2_train/living_room_0001_out/1.png")
    first = pairs["train"] if "living_room_0001_out" in pairs["train"].scenes else pairs["val"]
    assert first.rgb[0] == str((nyu_fixture / "nyu2_train/living_room_0001_out/1.jpg").resolve())
    assert first.scenes[0] == "living_room_0001_out"
    for part in pairs.values():
        for path in (*part.rgb, *part.depth):
            assert Path(path).is_absolute() and Path(path).is_file()
    assert set(pairs["test"].scenes) == {"nyu2_test"}
    assert pairs["test"].test and not pairs["train"].test and not pairs["val"].test
    assert len(pairs["train"].head(3)) == 3 and pairs["train"].head(3).rgb[2] == pairs[
        "train"].rgb[2]


def test_validation_split_is_whole_training_scenes(nyu_fixture):
    pairs, _ = load_nyud2(nyu_fixture, val_fraction=0.2, split_seed=5)
    assert len(set(pairs["val"].scenes)) == 1  # ceil(0.2 * 4 scenes)
    assert not set(pairs["val"].scenes) & set(pairs["train"].scenes)
    assert len(set(pairs["train"].scenes)) == 3
    again, _ = load_nyud2(nyu_fixture, val_fraction=0.2, split_seed=5)
    assert again["val"].rgb.tolist() == pairs["val"].rgb.tolist()


def test_scene_split_counts_and_seed():
    scenes = np.repeat([f"s{k}" for k in range(10)], 3)
    train, val = scene_split(scenes, 0.3, 0)
    assert len(set(scenes[val])) == 3  # 0.3 * 10 = 3 scenes, not ceil(3.0000000000000004)
    assert len(train) + len(val) == 30 and not set(scenes[train]) & set(scenes[val])
    assert scene_split(scenes, 0.3, 0)[1].tolist() == val.tolist()
    other = {tuple(sorted(set(scenes[scene_split(scenes, 0.3, s)[1]]))) for s in range(6)}
    assert len(other) > 1
    assert len(set(scenes[scene_split(scenes, 0.01, 0)[1]])) == 1  # at least one
    assert len(set(scenes[scene_split(scenes, 0.99, 0)[0]])) == 1  # leaves one for train
    with pytest.raises(InputError, match="at least 2"):
        scene_split(np.array(["a", "a"]), 0.2, 0)
    with pytest.raises(InputError, match="val_fraction"):
        scene_split(scenes, 1.0, 0)


def edit_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_nyud2_three_columns(nyu_fixture, tmp_path):
    folder = copy_of(nyu_fixture, tmp_path)
    edit_line(folder / "nyu2_test.csv", 2,
              "data/nyu2_test/00001_colors.png,data/nyu2_test/00001_depth.png,x")
    with pytest.raises(InputError, match=r"^nyu2_test.csv line 2: expected 2 columns .*found 3$"):
        load_nyud2(folder)


def test_nyud2_missing_file(nyu_fixture, tmp_path):
    folder = copy_of(nyu_fixture, tmp_path)
    (folder / "nyu2_train/bedroom_0002_out/3.png").unlink()
    with pytest.raises(InputError) as caught:
        load_nyud2(folder)
    assert str(caught.value).startswith(
        "nyu2_train.csv line 7: data/nyu2_train/bedroom_0002_out/3.png not found")


def test_nyud2_mask_problems(nyu_fixture, tmp_path):
    folder = copy_of(nyu_fixture, tmp_path)
    mask_path = folder / "test_balanced_mask.npy"
    mask = np.load(mask_path)
    np.save(mask_path, mask[:3])
    with pytest.raises(InputError, match="mask has 3 images but nyu2_test.csv lists 4"):
        load_nyud2(folder)
    np.save(mask_path, mask[:, :40])
    with pytest.raises(InputError, match="mask frames are 40x64; expected .* 48x64"):
        load_nyud2(folder)
    np.save(mask_path, mask.astype(np.uint8) * 2)
    with pytest.raises(InputError, match="values other than 0 and 1"):
        load_nyud2(folder)
    np.save(mask_path, mask.astype(np.uint8))  # the released mask is uint8 0/1
    assert np.array_equal(load_nyud2(folder)[1], mask)
    mask_path.unlink()
    with pytest.raises(InputError, match="test_balanced_mask.npy not found"):
        load_nyud2(folder)
    (folder / "nyu2_test.csv").unlink()
    with pytest.raises(InputError, match="nyu2_test.csv not found"):
        load_nyud2(folder)
    with pytest.raises(InputError, match="data folder .* not found"):
        load_nyud2(tmp_path / "nope")


def test_fixture_mask_is_balanced(nyu_fixture):
    pairs, mask = load_nyud2(nyu_fixture)
    data = DepthImages(pairs["test"])
    bins = depth_bin(np.stack([data.full_depth(i) for i in range(len(data))]))
    counts = np.bincount(bins[mask], minlength=100)
    used = counts[counts > 0]
    assert used.size >= 30 and (used == used[0]).all()
    assert counts[:7].sum() == 0
    # every bin left out of the mask has fewer pixels than the mask takes per bin
    all_counts = np.bincount(bins.ravel(), minlength=100)
    assert (all_counts[7:][counts[7:] == 0] < used[0]).all()


def test_fixture_depths_are_long_tailed_and_rgb_tracks_depth(nyu_fixture):
    pairs, _ = load_nyud2(nyu_fixture)
    data = DepthImages(pairs["train"])
    depth = np.stack([data.full_depth(i) for i in range(len(data))])
    assert 0.69 < depth.min() < 1.0 and 3.5 < depth.max() < 6.1
    assert np.mean((depth >= 1) & (depth <= 4)) > 0.6
    red = np.stack([np.asarray(Image.open(p))[..., 0] for p in pairs["train"].rgb])
    assert np.corrcoef(red.ravel(), depth.ravel())[0, 1] < -0.8


def test_depth_images_shapes_and_joint_flip(nyu_fixture):
    pairs, _ = load_nyud2(nyu_fixture)
    test = DepthImages(pairs["test"], size=(24, 32))
    x, y = test[1]
    assert x.shape == (3, 24, 32) and x.dtype == torch.float32
    assert y.shape == (12, 16) and y.dtype == torch.float32
    assert test.full_depth(1).shape == (48, 64)
    plain_x, plain_y = DepthImages(pairs["train"], size=(24, 32))[0]
    torch.manual_seed(1)
    train = DepthImages(pairs["train"], size=(24, 32), train=True)
    outcomes = set()
    for _ in range(12):
        x, y = train[0]
        if torch.equal(x, plain_x):
            assert torch.equal(y, plain_y)
            outcomes.add("plain")
        else:
            assert torch.equal(x, plain_x.flip(-1)) and torch.equal(y, plain_y.flip(-1))
            outcomes.add("flipped")
    assert outcomes == {"plain", "flipped"}
    assert torch.equal(pickle.loads(pickle.dumps(test))[1][1], test[1][1])


def test_to_mask_frame_matches_reference_crop():
    native = np.arange(480 * 640, dtype=np.float32).reshape(480, 640)
    framed = to_mask_frame(native, (228, 304))
    # scale 480x640 -> 240x320 by nearest (source pixel 2k+1), crop rows 6.., columns 8..
    assert framed.shape == (228, 304)
    assert framed[0, 0] == native[13, 17] and framed[227, 303] == native[467, 623]
    assert np.array_equal(to_mask_frame(native[:48, :64], (48, 64)), native[:48, :64])
