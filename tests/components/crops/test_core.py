"""The crops step end to end on a small synthetic object set: splits, counts, records, zips, CLI."""

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cityseg.components import tfrecord
from cityseg.components.crops import schema
from cityseg.components.crops.cli import crops
from cityseg.components.crops.config import CropsConfig
from cityseg.components.crops.core import write_crops
from cityseg.components.synth.config import SynthConfig
from cityseg.components.synth.core import generate


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Three cities of three object frames at 128x256."""
    root = tmp_path_factory.mktemp("crops") / "cityscapes"
    generate(SynthConfig(out=str(root), cities=3, frames_per_city=3, height=128, width=256, objects=True))
    return root


@pytest.fixture(scope="module")
def written(source, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out") / "crops"
    return out, write_crops(CropsConfig(source, out, size=32, min_box=8, min_pixels=20, workers=1))


def _records(folder: Path, split: str) -> list[dict]:
    return [
        schema.decode_crop(record)
        for path in sorted(folder.glob(f"{split}-*.tfrecord"))
        for record in _read(path)
    ]


def _read(path: Path):
    import tensorflow as tf

    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]


def test_crops_keep_the_city_splits_and_the_manifest_counts_what_was_written(written):
    out, manifest = written
    assert list(manifest["splits"]) == ["train", "val", "test"]
    cities = {"train": "aachen", "val": "frankfurt", "test": "berlin"}
    for split, entry in manifest["splits"].items():
        records = _records(out, split)
        assert len(records) == entry["examples"] == sum(entry["shards"])
        assert schema.class_counts([r["label"] for r in records]) == entry["class_counts"]
        assert {r["filename"].split("_")[0] for r in records} == {cities[split]}
        assert all(r["visible"] >= 0.5 for r in records)
    assert manifest["classes"] == list(schema.CLASSES)
    assert sum(manifest["splits"]["train"]["dropped"].values()) > 0


def test_a_crop_is_the_square_around_its_instance_in_its_frame(written, source):
    out, _ = written
    record = max(_records(out, "train"), key=lambda r: r["box"][2] - r["box"][0])
    crop = cv2.imdecode(np.frombuffer(record["png"], np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (32, 32, 3)
    stem = record["filename"]
    ids = cv2.imread(
        str(next(source.glob(f"gtFine/train/*/{stem}_gtFine_instanceIds.png"))), cv2.IMREAD_UNCHANGED
    )
    rows, cols = np.nonzero(ids == record["instance_id"])
    assert record["box"] == [cols.min(), rows.min(), cols.max(), rows.max()]
    assert record["instance_id"] // 1000 in (24, 25, 26, 27, 28, 31, 32, 33)


def test_the_official_zips_give_the_same_crops(written, source, tmp_path):
    _, manifest = written
    zips = tmp_path / "zips"
    zips.mkdir()
    for name, top in (("leftImg8bit_trainvaltest.zip", "leftImg8bit"), ("gtFine_trainvaltest.zip", "gtFine")):
        with zipfile.ZipFile(zips / name, "w") as archive:
            for path in sorted((source / top).rglob("*.*")):
                archive.write(path, path.relative_to(source).as_posix())
    again = write_crops(
        CropsConfig(str(zips), tmp_path / "crops", size=32, min_box=8, min_pixels=20, workers=2)
    )
    assert again["content_hash"] == manifest["content_hash"]
    assert again["splits"] == manifest["splits"]


def test_a_frame_without_its_instance_image_is_named(source, tmp_path):
    broken = tmp_path / "broken"
    for path in source.rglob("*.*"):
        target = broken / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (broken / "gtFine/val/frankfurt/frankfurt_000001_000019_gtFine_instanceIds.png").unlink()
    with pytest.raises(
        ValueError, match=r"image without instanceIds: .*frankfurt_000001_000019_leftImg8bit\.png"
    ):
        write_crops(CropsConfig(broken, tmp_path / "out", workers=1))


def test_shards_are_framed_tfrecords(written):
    out, _ = written
    for path in out.glob("*.tfrecord"):
        assert tfrecord.scan_records(path).records > 0


def test_cli_prints_counts_per_class_and_rejects_bad_options(source, tmp_path):
    result = CliRunner().invoke(
        crops, ["--cityscapes", str(source), "--out", str(tmp_path / "c"), "--size", "16", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("split")).split()
    assert header == ["split", *schema.CLASSES, "dropped"]
    bad = CliRunner().invoke(
        crops, ["--cityscapes", str(source), "--out", str(tmp_path / "d"), "--margin", "5"]
    )
    assert bad.exit_code == 2 and "--margin" in bad.output
    missing = CliRunner().invoke(
        crops, ["--cityscapes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "e")]
    )
    assert missing.exit_code == 1 and "no such folder" in missing.output
