"""The synthetic Cityscapes generator: layout, splits, labels against the official scripts, determinism."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import name2label
from cityscapesscripts.preparation.json2labelImg import json2labelImg
from click.testing import CliRunner
from PIL import Image

from cityseg.components import labels, metrics, storage
from cityseg.components.synth import core
from cityseg.components.synth.cli import synth
from cityseg.components.synth.config import CITIES as CITY_NAMES
from cityseg.components.synth.config import MAX_CITIES, MIN_CITIES, SPLITS, SynthConfig
from cityseg.components.synth.render import clip_polygon
from tests import builders

HEIGHT, WIDTH = 64, 128
CITIES, FRAMES = 3, 8
# Every label the scenes are asked to show.
REQUIRED_LABELS = (
    "road", "sidewalk", "parking", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "bicycle",
    "ego vehicle", "out of roi", "static",
)  # fmt: skip


def _config(out, **overrides) -> SynthConfig:
    fields = {"cities": CITIES, "frames_per_city": FRAMES, "height": HEIGHT, "width": WIDTH, "seed": 0}
    return SynthConfig(out=str(out), **{**fields, **overrides})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    """A small generated folder and its summary, shared by the read-only tests."""
    out = tmp_path_factory.mktemp("synth") / "cityscapes"
    return out, core.generate(_config(out))


def _frames(root: Path):
    """(split, city, stem) of every image below root."""
    for path in sorted(root.glob("leftImg8bit/*/*/*_leftImg8bit.png")):
        yield path.parts[-3], path.parts[-2], path.name[: -len("_leftImg8bit.png")]


def _label_ids(root: Path, split: str, city: str, stem: str) -> np.ndarray:
    return cv2.imread(
        str(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_names_follow_cityscapes(dataset):
    root, summary = dataset
    expected = set()
    for split, entry in summary["splits"].items():
        for city in entry["cities"]:
            for seq in range(FRAMES):
                stem = f"{city}_{seq:06d}_000019"
                expected.add(f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png")
                for suffix in ("labelIds.png", "instanceIds.png", "color.png", "polygons.json"):
                    expected.add(f"gtFine/{split}/{city}/{stem}_gtFine_{suffix}")
    assert set(_files(root)) == expected | {".cityseg-synth"}
    assert summary["frames"] == CITIES * FRAMES
    assert summary["splits"] == {
        "train": {"cities": ["aachen"], "frames": FRAMES},
        "val": {"cities": ["frankfurt"], "frames": FRAMES},
        "test": {"cities": ["berlin"], "frames": FRAMES},
    }
    assert sum(summary["category_share"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("count", range(MIN_CITIES, MAX_CITIES + 1))
def test_splits_are_city_disjoint_and_never_empty(count):
    cities = core.split_cities(count)
    names = [city for split in SPLITS for city in cities[split]]
    assert len(names) == len(set(names)) == count
    assert all(len(cities[split]) >= 1 for split in SPLITS)
    assert len(cities["train"]) >= max(len(cities["val"]), len(cities["test"]))
    for split in SPLITS:
        assert set(cities[split]) <= set(CITY_NAMES[split])


def test_split_sizes_match_cityscapes_at_full_size():
    assert {split: len(c) for split, c in core.split_cities(27).items()} == {"train": 18, "val": 3, "test": 6}
    assert {split: len(c) for split, c in core.split_cities(6).items()} == {"train": 4, "val": 1, "test": 1}


def test_images_and_labels_have_the_cityscapes_formats(dataset):
    root, _ = dataset
    for split, city, stem in _frames(root):
        image = Image.open(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
        assert (image.mode, image.size) == ("RGB", (WIDTH, HEIGHT))
        ids = Image.open(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
        assert (ids.mode, ids.size) == ("L", (WIDTH, HEIGHT))
        assert np.asarray(ids).max() < labels.NUM_LABEL_IDS
        document = json.loads((root / "gtFine" / split / city / f"{stem}_gtFine_polygons.json").read_text())
        assert (document["imgHeight"], document["imgWidth"]) == (HEIGHT, WIDTH)
        for obj in document["objects"]:
            assert obj["label"] in name2label
            points = np.asarray(obj["polygon"])
            assert points.dtype.kind == "i" and points.shape[1] == 2 and len(points) >= 3
            assert points.min() >= 0 and points[:, 0].max() < WIDTH and points[:, 1].max() < HEIGHT


def test_official_json2labelimg_renders_our_label_and_colour_images(dataset, tmp_path):
    root, _ = dataset
    for split, city, stem in list(_frames(root))[::4]:
        folder = root / "gtFine" / split / city
        polygons = str(folder / f"{stem}_gtFine_polygons.json")
        json2labelImg(polygons, str(tmp_path / "ids.png"), "ids")
        json2labelImg(polygons, str(tmp_path / "color.png"), "color")
        official_ids = np.asarray(Image.open(tmp_path / "ids.png"))
        np.testing.assert_array_equal(
            np.asarray(Image.open(folder / f"{stem}_gtFine_labelIds.png")), official_ids
        )
        ours = Image.open(folder / f"{stem}_gtFine_color.png")
        assert ours.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(Image.open(tmp_path / "color.png")))


def test_every_category_and_required_label_appears(dataset):
    root, _ = dataset
    seen_labels = set()
    for split in SPLITS:
        ids = np.concatenate(
            [_label_ids(root, s, c, stem).ravel() for s, c, stem in _frames(root) if s == split]
        )
        assert set(labels.category_lut()[np.unique(ids)]) == set(range(labels.NUM_CLASSES)), split
        seen_labels |= set(np.unique(ids).tolist())
    missing = [name for name in REQUIRED_LABELS if name2label[name].id not in seen_labels]
    assert not missing


def test_scenes_keep_the_street_geometry(dataset):
    """Sky above, road below, the ego vehicle at the bottom and the out-of-roi frame at the border."""
    root, _ = dataset
    ids = {name: name2label[name].id for name in ("sky", "road", "ego vehicle", "out of roi")}
    for split, city, stem in _frames(root):
        label_ids = _label_ids(root, split, city, stem)
        rows = {name: np.nonzero(label_ids == i)[0] for name, i in ids.items()}
        # The horizon lies between 36% and 46% of the height.
        assert rows["sky"].max() < HEIGHT / 2, stem
        assert rows["road"].min() > HEIGHT / 3, stem
        assert rows["ego vehicle"].min() > rows["road"].min(), stem
        border = np.concatenate([label_ids[0], label_ids[-1], label_ids[:, 0], label_ids[:, -1]])
        assert set(border) == {ids["out of roi"]}, stem


def test_colour_alone_does_not_separate_the_categories(dataset):
    """A per-colour majority vote learned on train scores far below what a segmentation model must reach."""
    root, _ = dataset
    votes = np.zeros((16**3, labels.NUM_CLASSES), np.int64)
    lut = labels.category_lut()

    def pixels(split):
        for s, city, stem in _frames(root):
            if s == split:
                image = cv2.imread(str(root / "leftImg8bit" / s / city / f"{stem}_leftImg8bit.png"))
                bins = (image // 16).astype(np.int64) @ np.array([256, 16, 1])
                yield bins.ravel(), lut[_label_ids(root, s, city, stem)].ravel()

    for bins, cats in pixels("train"):
        np.add.at(votes, (bins, cats), 1)
    guess = votes.argmax(axis=1)
    cm = sum(metrics.confusion_matrix(cats, guess[bins]) for bins, cats in pixels("val"))
    assert metrics.scores(cm)["mean_dice"] < 0.55


def test_same_seed_same_bytes_and_other_seed_other_images(dataset, tmp_path):
    root, _ = dataset
    again = core.generate(_config(tmp_path / "again", workers=2))
    assert again["frames"] == CITIES * FRAMES
    assert _files(tmp_path / "again") == _files(root)
    core.generate(_config(tmp_path / "other", seed=1, frames_per_city=1))
    image = "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    assert (tmp_path / "other" / image).read_bytes() != (root / image).read_bytes()


def test_replaces_an_earlier_output_but_not_a_foreign_folder(tmp_path):
    out = tmp_path / "data"
    core.generate(_config(out, frames_per_city=2))
    core.generate(_config(out, frames_per_city=1))
    assert len(list(out.glob("leftImg8bit/*/*/*.png"))) == CITIES
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds other files"):
        core.generate(_config(foreign, frames_per_city=1))
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_real_cityscapes_download_is_never_replaced(tmp_path):
    real = builders.write_cityscapes(tmp_path / "cityscapes", frames_per_city=1)
    before = _files(real)
    result = CliRunner().invoke(synth, ["--out", str(real), "--height", "32", "--width", "64"])
    assert result.exit_code == 1
    assert f"Error: {real}: holds other files (gtFine/test/berlin/" in result.output
    assert "is not an earlier `cityseg synth` output" in result.output
    assert _files(real) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cities", 2, "cities=2: must be 3..27; train, val and test each need a city"),
        ("cities", 28, "cities=28"),
        ("frames_per_city", 0, "frames_per_city=0"),
        ("height", 16, "height=16"),
        ("width", 5000, "width=5000"),
        ("seed", -1, "seed=-1"),
        ("workers", 0, "workers=0"),
    ],
)
def test_config_rejects_out_of_range_fields(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        core.generate(_config(tmp_path / "x", **{field: value}))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--cities", "2"],
            "Invalid value for '--cities': 2: train, val and test each need a city of their own",
        ),
        (["--cities", "28"], "there are 27 Cityscapes city names, so at most 27"),
        (["--height", "8"], "Invalid value for '--height'"),
        (["--frames-per-city", "0"], "Invalid value for '--frames-per-city'"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, argv, message):
    result = CliRunner().invoke(synth, ["--out", str(tmp_path / "x"), *argv])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_reports_a_foreign_folder_without_a_traceback(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    result = CliRunner().invoke(synth, ["--out", str(tmp_path), "--height", "32", "--width", "64"])
    assert result.exit_code == 1
    assert "holds other files" in result.output and "Traceback" not in result.output


def test_cli_writes_and_prints_the_summary(tmp_path):
    argv = [
        "--out",
        str(tmp_path / "d"),
        "--cities",
        "4",
        "--frames-per-city",
        "1",
        "--height",
        "32",
        "--width",
        "64",
    ]
    result = CliRunner().invoke(synth, argv)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert {split: entry["frames"] for split, entry in summary["splits"].items()} == {
        "train": 2,
        "val": 1,
        "test": 1,
    }
    assert len(list((tmp_path / "d").glob("gtFine/*/*/*_polygons.json"))) == 4


def test_writes_to_gcs(gcs_emulator):
    bucket = gcs_emulator()
    summary = core.generate(_config(f"{bucket}/synth", frames_per_city=1, height=32, width=64))
    written = list(storage.list_files(f"{bucket}/synth"))
    assert len(written) == 5 * summary["frames"] + 1  # and the .cityseg-synth marker
    assert f"{bucket}/synth/gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_polygons.json" in written


def test_clip_polygon_cuts_at_the_image_border_and_drops_what_is_outside():
    square = np.array([(-5.0, 2.0), (5.0, 2.0), (5.0, 6.0), (-5.0, 6.0)])
    assert clip_polygon(square, width=10, height=10) == [[0, 2], [5, 2], [5, 6], [0, 6]]
    assert clip_polygon(square + np.array([0.0, 20.0]), width=10, height=10) is None
    assert clip_polygon(np.array([(1.2, 1.4), (1.4, 1.2), (1.3, 1.3)]), width=10, height=10) is None
