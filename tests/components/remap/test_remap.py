import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import storage
from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from tests import builders


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return builders.write_cityscapes(tmp_path_factory.mktemp("cityscapes"))


def read_outputs(out) -> dict[str, bytes]:
    return {path[len(str(out)) :]: storage.read_bytes(path) for path in storage.list_files(out)}


def test_every_label_id_becomes_its_cityscapesscripts_category(source, tmp_path):
    summary = remap(RemapConfig(cityscapes=source, out=tmp_path / "cats", workers=1))
    expected_lut = np.array([id2label[i].categoryId for i in range(34)], dtype=np.uint8)
    seen_ids = set()
    pixels = np.zeros(8, np.int64)
    for split, cities in builders.SPLIT_CITIES.items():
        for city in cities:
            for frame in range(2):
                ids = cv2.imread(str(builders.label_path(source, split, city, frame)), cv2.IMREAD_UNCHANGED)
                name = f"{split}/{city}/{builders.stem(city, frame)}_gtFine_categoryIds.png"
                categories = cv2.imread(str(tmp_path / "cats" / name), cv2.IMREAD_UNCHANGED)
                assert categories.dtype == np.uint8 and categories.shape == ids.shape
                np.testing.assert_array_equal(categories, expected_lut[ids])
                seen_ids |= set(np.unique(ids).tolist())
                pixels += np.bincount(categories.ravel(), minlength=8)
    assert seen_ids == set(range(34))
    assert summary["frames"] == {"test": 2, "train": 4, "val": 2}
    assert np.sum([summary["category_pixels"][s] for s in ("train", "val", "test")], axis=0).tolist() == (
        pixels.tolist()
    )
    assert summary["pixel_share"]["void"] == pytest.approx(pixels[0] / pixels.sum())
    assert sum(summary["pixel_share"].values()) == pytest.approx(1.0)


def test_zips_and_worker_processes_give_the_same_bytes(source, tmp_path):
    remap(RemapConfig(cityscapes=source, out=tmp_path / "folder", workers=1))
    zips = builders.zip_cityscapes(source, tmp_path / "zips")
    remap(RemapConfig(cityscapes=zips, out=tmp_path / "zipped", workers=2))
    expected = read_outputs(tmp_path / "folder")
    assert len([name for name in expected if name.endswith(".png")]) == 8
    assert read_outputs(tmp_path / "zipped") == expected


@pytest.mark.parametrize("layout", ["folder", "zips"])
def test_gcs_source_and_output(source, tmp_path, gcs_emulator, layout):
    bucket = gcs_emulator()
    local = source if layout == "folder" else builders.zip_cityscapes(source, tmp_path / "zips")
    storage.copy_tree(local, f"{bucket}/cityscapes")
    summary = remap(RemapConfig(cityscapes=f"{bucket}/cityscapes", out=f"{bucket}/cats", workers=1))
    remap(RemapConfig(cityscapes=source, out=tmp_path / "local", workers=1))
    assert summary["frames"] == {"test": 2, "train": 4, "val": 2}
    assert read_outputs(f"{bucket}/cats") == read_outputs(tmp_path / "local")


def first_label(root):
    return builders.label_path(root, "train", "aachen", 0)


def label_with_id_34(root):
    builders.write_png(first_label(root), np.full((32, 64), 34, np.uint8))
    return first_label(root)


def rgb_label(root):
    builders.write_png(first_label(root), np.zeros((32, 64, 3), np.uint8))
    return first_label(root)


def label_16_bit(root):
    builders.write_png(first_label(root), np.zeros((32, 64), np.uint16))
    return first_label(root)


def truncated_label(root):
    data = first_label(root).read_bytes()
    first_label(root).write_bytes(data[: len(data) // 2])
    return first_label(root)


def gif_named_png(root):
    first_label(root).write_bytes(b"GIF89a" + first_label(root).read_bytes())
    return first_label(root)


def image_without_label(root):
    builders.label_path(root, "val", "frankfurt", 1).unlink()
    return builders.image_path(root, "val", "frankfurt", 1)


def label_without_image(root):
    builders.image_path(root, "test", "berlin", 0).unlink()
    return builders.label_path(root, "test", "berlin", 0)


BAD_INPUTS = {
    "id outside 0..33": (label_with_id_34, "label ids must be 0..33, found 34"),
    "RGB label": (rgb_label, "expected a single-channel 8-bit id image, got 3 channels"),
    "16-bit label": (label_16_bit, "expected a single-channel 8-bit id image, got 16-bit"),
    "truncated PNG": (truncated_label, "corrupt PNG, it does not decode"),
    "not a PNG": (gif_named_png, "not a PNG file"),
    "image without label": (image_without_label, "image without label: "),
    "label without image": (label_without_image, "label without image: "),
}


def assert_refused(tmp_path, case, workers):
    root = builders.write_cityscapes(tmp_path / "src")
    make_bad, message = BAD_INPUTS[case]
    bad_file = make_bad(root)
    with pytest.raises(ValueError) as caught:
        remap(RemapConfig(cityscapes=root, out=tmp_path / "out", workers=workers))
    assert message in str(caught.value) and str(bad_file) in str(caught.value)
    assert caught.value.__cause__ is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_the_file_and_writes_nothing(tmp_path, case):
    assert_refused(tmp_path, case, workers=1)


def test_errors_in_worker_processes_surface_as_the_same_clear_error(tmp_path):
    assert_refused(tmp_path, "id outside 0..33", workers=2)


def missing_folder(tmp):
    return tmp / "nowhere"


def empty_folder(tmp):
    (tmp / "empty").mkdir()
    return tmp / "empty"


def folder_with_one_zip(tmp):
    (tmp / "onezip").mkdir()
    (tmp / "onezip" / "gtFine_trainvaltest.zip").write_bytes(b"")
    return tmp / "onezip"


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (missing_folder, "no such folder"),
        (empty_folder, "no Cityscapes frames found"),
        (folder_with_one_zip, "holds gtFine_trainvaltest.zip but not leftImg8bit_trainvaltest.zip"),
    ],
    ids=["missing", "empty", "one zip"],
)
def test_missing_or_empty_source_is_refused(tmp_path, make_source, message):
    src = make_source(tmp_path)
    with pytest.raises(ValueError, match=message) as caught:
        remap(RemapConfig(cityscapes=src, out=tmp_path / "out", workers=1))
    assert str(src) in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_rerun_replaces_the_output_and_a_failed_run_keeps_it(tmp_path):
    root = builders.write_cityscapes(tmp_path / "src")
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    remap(RemapConfig(cityscapes=root, out=out, workers=1))
    assert not (out / "stale").exists() and len(list(out.rglob("*.png"))) == 8
    before = read_outputs(out)
    builders.write_png(first_label(root), np.full((32, 64), 200, np.uint8))
    with pytest.raises(ValueError, match="found 200"):
        remap(RemapConfig(cityscapes=root, out=out, workers=1))
    assert read_outputs(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_cli_prints_the_summary_and_clean_errors(source, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main, ["remap", "--cityscapes", str(source), "--out", str(tmp_path / "c"), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "8 frames" in result.output and "test: 2  train: 4  val: 2" in result.output
    assert "vehicle" in result.output
    result = runner.invoke(
        main, ["remap", "--cityscapes", str(tmp_path / "none"), "--out", str(tmp_path / "d")]
    )
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'none'}: no such folder"


def snapshot(root) -> dict[str, str]:
    """Every file below a local folder or gs:// prefix -> sha256 of its bytes."""
    return {path: hashlib.sha256(storage.read_bytes(path)).hexdigest() for path in storage.list_files(root)}


REFUSED_OUTPUTS = {
    "the source": ("data/cityscapes", "cannot be the output of `cityseg remap`: it is the source"),
    "inside the source": (
        "data/cityscapes/gtFine",
        "cannot be the output of `cityseg remap`: it lies inside",
    ),
    "the source's parent": ("data", "cannot be the output of `cityseg remap`: it holds the source"),
    "a folder of user files": (
        "data/keep",
        "holds other files (notes.txt, photos/a.png) and is not an earlier `cityseg remap` output",
    ),
}


def _data_with_user_files(root: str, scratch: Path) -> str:
    """`root/data/cityscapes` (a source) beside `root/data/keep` (a user's files); returns the source."""
    local = builders.write_cityscapes(scratch / "cityscapes", frames_per_city=1)
    storage.copy_tree(local, storage.join(root, "data", "cityscapes"))
    storage.write_text(storage.join(root, "data", "keep", "notes.txt"), "mine")
    storage.write_bytes(storage.join(root, "data", "keep", "photos", "a.png"), b"\x89PNG mine")
    return storage.join(root, "data", "cityscapes")


@pytest.mark.parametrize("where", ["local", "gcs"])
@pytest.mark.parametrize("case", list(REFUSED_OUTPUTS))
def test_an_output_that_would_destroy_data_is_refused_and_nothing_changes(
    tmp_path_factory, request, where, case
):
    tmp_path = tmp_path_factory.mktemp("root")
    root = str(tmp_path) if where == "local" else request.getfixturevalue("gcs_emulator")()
    src = _data_with_user_files(root, tmp_path_factory.mktemp("scratch"))
    relative, message = REFUSED_OUTPUTS[case]
    out = storage.join(root, relative)
    before = snapshot(root)
    result = CliRunner().invoke(main, ["remap", "--cityscapes", src, "--out", out, "--workers", "1"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {out}: ") and message in result.output
    assert snapshot(root) == before
    if where == "local":
        assert sorted(p.name for p in tmp_path.rglob(".*")) == []  # no staging folders left


def test_gcs_rerun_replaces_the_previous_output_and_deletes_only_its_stale_objects(tmp_path, gcs_emulator):
    bucket = gcs_emulator()
    src = _data_with_user_files(bucket, tmp_path)
    args = ["remap", "--cityscapes", src, "--out", f"{bucket}/data/categories", "--workers", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    gone = f"{src}/gtFine/val/frankfurt/frankfurt_000000_000000_gtFine_labelIds.png"
    storage.delete(gone)
    storage.delete(gone.replace("gtFine", "leftImg8bit").replace("_leftImg8bit_labelIds", "_leftImg8bit"))
    others = {path: digest for path, digest in snapshot(bucket).items() if "/categories/" not in path}
    rerun = CliRunner().invoke(main, args)
    assert rerun.exit_code == 0, rerun.output
    assert sorted(storage.list_files(f"{bucket}/data/categories")) == [
        f"{bucket}/data/categories/.cityseg-remap",
        f"{bucket}/data/categories/test/berlin/berlin_000000_000000_gtFine_categoryIds.png",
        f"{bucket}/data/categories/train/aachen/aachen_000000_000000_gtFine_categoryIds.png",
        f"{bucket}/data/categories/train/bochum/bochum_000000_000000_gtFine_categoryIds.png",
    ]
    assert {path: digest for path, digest in snapshot(bucket).items() if "/categories/" not in path} == others
