import dataclasses
import hashlib
import json

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import storage
from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from cityseg.components.shard.config import ShardConfig
from cityseg.components.shard.core import write_shards
from tests import builders

RAW_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/filename": tf.io.FixedLenFeature((), tf.string),
    "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/segmentation/class/format": tf.io.FixedLenFeature((), tf.string),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A Cityscapes source and its category masks."""
    root = tmp_path_factory.mktemp("data")
    src = builders.write_cityscapes(root / "cityscapes")
    remap(RemapConfig(cityscapes=src, out=root / "categories", workers=1))
    return src, root / "categories"


@pytest.fixture(scope="module")
def shards(data, tmp_path_factory):
    src, categories = data
    out = tmp_path_factory.mktemp("shards") / "full"
    manifest = write_shards(ShardConfig(src, categories, out, shards=3, height=32, width=64, workers=1))
    return out, manifest


def read_examples(out, split, count):
    """Every example of a split, parsed with the raw Model Garden / DeepLab keys."""
    examples = []
    for index in range(count):
        for record in tf.data.TFRecordDataset(str(out / f"{split}-{index:05d}-of-{count:05d}.tfrecord")):
            examples.append((index, tf.io.parse_single_example(record, RAW_SPEC)))
    return examples


def test_round_trip_counts_pixels_and_manifest(data, shards):
    src, categories = data
    out, manifest = shards
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert set(manifest) == {
        "height", "width", "num_classes", "categories", "splits", "source", "select_fraction",
        "label_table_version", "content_hash",
    }  # fmt: skip
    assert (manifest["height"], manifest["width"], manifest["num_classes"]) == (32, 64, 8)
    assert manifest["categories"][0] == "void" and len(manifest["categories"]) == 8
    assert manifest["source"] == str(src) and manifest["label_table_version"] == "cityscapesscripts==2.3.0"
    assert list(manifest["splits"]) == ["train", "val", "test"]
    # Fewer frames than shards: one shard per frame.
    assert {s: i["shards"] for s, i in manifest["splits"].items()} == {
        "train": [2, 1, 1],
        "val": [1, 1],
        "test": [1, 1],
    }
    for split, cities in builders.SPLIT_CITIES.items():
        info = manifest["splits"][split]
        examples = read_examples(out, split, len(info["shards"]))
        assert info["examples"] == len(examples) == 2 * len(cities)
        assert [sum(1 for i, _ in examples if i == n) for n in range(len(info["shards"]))] == info["shards"]
        pixels = np.zeros(8, np.int64)
        names = set()
        for _, example in examples:
            name = example["image/filename"].numpy().decode()
            city, _, frame = name.removesuffix("_leftImg8bit.png").split("_")
            names.add(name)
            assert (
                example["image/format"].numpy()
                == example["image/segmentation/class/format"].numpy()
                == b"png"
            )
            assert (example["image/height"].numpy(), example["image/width"].numpy()) == (32, 64)
            image = tf.io.decode_png(example["image/encoded"]).numpy()
            mask = tf.io.decode_png(example["image/segmentation/class/encoded"]).numpy()[..., 0]
            expected_image = cv2.imread(str(builders.image_path(src, split, city, int(frame))))[..., ::-1]
            stem = builders.stem(city, int(frame))
            expected_mask = cv2.imread(str(categories / split / city / f"{stem}_gtFine_categoryIds.png"), -1)
            np.testing.assert_array_equal(image, expected_image)
            np.testing.assert_array_equal(mask, expected_mask)
            pixels += np.bincount(mask.ravel(), minlength=8)
        assert len(names) == info["examples"]
        assert info["category_pixels"] == pixels.tolist()
    content = "".join(
        f"{path.name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n"
        for path in sorted(out.glob("*.tfrecord"))
    )
    assert manifest["content_hash"] == hashlib.sha256(content.encode()).hexdigest()


def test_resizes_images_by_area_and_masks_by_nearest(data, tmp_path):
    src, categories = data
    write_shards(ShardConfig(src, categories, tmp_path / "small", shards=1, height=16, width=24, workers=1))
    (_, example), *_ = read_examples(tmp_path / "small", "val", 1)
    city, _, frame = example["image/filename"].numpy().decode().removesuffix("_leftImg8bit.png").split("_")
    source_image = cv2.imread(str(builders.image_path(src, "val", city, int(frame))))
    stem = builders.stem(city, int(frame))
    source_mask = cv2.imread(str(categories / "val" / city / f"{stem}_gtFine_categoryIds.png"), -1)
    image = tf.io.decode_png(example["image/encoded"]).numpy()
    mask = tf.io.decode_png(example["image/segmentation/class/encoded"]).numpy()[..., 0]
    np.testing.assert_array_equal(
        image, cv2.resize(source_image, (24, 16), interpolation=cv2.INTER_AREA)[..., ::-1]
    )
    np.testing.assert_array_equal(
        mask, cv2.resize(source_mask, (24, 16), interpolation=cv2.INTER_NEAREST_EXACT)
    )


def test_parallel_writers_give_byte_identical_output(data, shards, tmp_path):
    src, categories = data
    out, manifest = shards
    again = write_shards(
        ShardConfig(src, categories, tmp_path / "again", shards=3, height=32, width=64, workers=2)
    )
    assert again == manifest
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(p.name for p in (tmp_path / "again").iterdir())
    assert {"manifest.json", "dataset_info.json", "features.json"} <= set(files)
    for name in files:
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_tfds_builder_from_directory_loads_the_splits(shards):
    out, manifest = shards
    builder = tfds.builder_from_directory(str(out))
    assert {name: split.num_examples for name, split in builder.info.splits.items()} == {
        split: info["examples"] for split, info in manifest["splits"].items()
    }
    (raw_index, raw), *_ = read_examples(out, "val", 2)
    loaded = next(iter(builder.as_dataset(split="val", shuffle_files=False)))
    assert loaded["image"]["filename"].numpy() == raw["image/filename"].numpy()
    np.testing.assert_array_equal(
        loaded["image"]["encoded"].numpy(), tf.io.decode_png(raw["image/encoded"]).numpy()
    )
    np.testing.assert_array_equal(
        loaded["image"]["segmentation"]["class"]["encoded"].numpy(),
        tf.io.decode_png(raw["image/segmentation/class/encoded"]).numpy(),
    )
    assert raw_index == 0


def test_gcs_source_categories_and_output(data, shards, gcs_emulator):
    src, categories = data
    _, manifest = shards
    bucket = gcs_emulator()
    storage.copy_tree(builders.zip_cityscapes(src, src.parent / "zips"), f"{bucket}/zips")
    storage.copy_tree(categories, f"{bucket}/categories")
    written = write_shards(
        ShardConfig(
            f"{bucket}/zips",
            f"{bucket}/categories",
            f"{bucket}/shards",
            shards=3,
            height=32,
            width=64,
            workers=1,
        )
    )
    assert written["content_hash"] == manifest["content_hash"]
    assert written["splits"] == manifest["splits"]
    assert json.loads(storage.read_text(f"{bucket}/shards/manifest.json")) == written


def _unlink_first_mask(src, categories):
    path = categories / "train" / "aachen" / f"{builders.stem('aachen', 0)}_gtFine_categoryIds.png"
    path.unlink()
    return builders.image_path(src, "train", "aachen", 0), "image without category mask"


def _unlink_first_image(src, categories):
    builders.image_path(src, "test", "berlin", 1).unlink()
    return categories / "test" / "berlin" / f"{builders.stem('berlin', 1)}_gtFine_categoryIds.png", (
        "category mask without image"
    )


def _corrupt_image(src, categories):
    path = builders.image_path(src, "val", "frankfurt", 0)
    path.write_bytes(path.read_bytes()[:60])
    return path, "corrupt PNG"


def _mask_id_out_of_range(src, categories):
    path = categories / "val" / "frankfurt" / f"{builders.stem('frankfurt', 1)}_gtFine_categoryIds.png"
    builders.write_png(path, np.full((32, 64), 9, np.uint8))
    return path, "category ids must be 0..7, found [9]"


def _mask_of_other_size(src, categories):
    path = categories / "train" / "bochum" / f"{builders.stem('bochum', 1)}_gtFine_categoryIds.png"
    builders.write_png(path, np.zeros((16, 64), np.uint8))
    return path, "mask is 64x16 but its image"


@pytest.mark.parametrize(
    "make_bad",
    [_unlink_first_mask, _unlink_first_image, _corrupt_image, _mask_id_out_of_range, _mask_of_other_size],
)
def test_bad_input_names_the_file_and_writes_nothing(tmp_path, make_bad):
    src = builders.write_cityscapes(tmp_path / "src")
    remap(RemapConfig(cityscapes=src, out=tmp_path / "cats", workers=1))
    bad_file, message = make_bad(src, tmp_path / "cats")
    with pytest.raises(ValueError) as caught:
        write_shards(
            ShardConfig(src, tmp_path / "cats", tmp_path / "out", shards=2, height=32, width=64, workers=1)
        )
    assert message in str(caught.value) and str(bad_file) in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cats", "src"]


def test_missing_categories_folder_and_bad_settings_are_refused(data, tmp_path):
    src, _ = data
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope'}: no such folder"):
        write_shards(ShardConfig(src, tmp_path / "nope", tmp_path / "out", workers=1))
    with pytest.raises(ValueError, match="shards must be at least 1, got 0"):
        ShardConfig(src, tmp_path, tmp_path / "out", shards=0)
    assert not (tmp_path / "out").exists()


def test_cli_writes_shards_and_reports_per_split(data, tmp_path):
    src, categories = data
    args = ["shard", "--cityscapes", str(src), "--categories", str(categories), "--out", str(tmp_path / "s")]
    result = CliRunner().invoke(
        main, [*args, "--shards", "2", "--height", "16", "--width", "32", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "train: 4 examples in 2 shards" in result.output and "val: 2 examples in 2 shards" in result.output
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["height"] == 16
    bad = CliRunner().invoke(
        main, ["shard", "--cityscapes", str(src), "--categories", str(tmp_path / "x"), "--out", "o"]
    )
    assert bad.exit_code == 1 and bad.output.strip() == f"Error: {tmp_path / 'x'}: no such folder"


def test_synthetic_cityscapes_end_to_end(tmp_path):
    from cityseg.components.dataset import make_dataset
    from cityseg.components.synth.config import SynthConfig
    from cityseg.components.synth.core import generate

    synth = generate(SynthConfig(str(tmp_path / "synth"), cities=3, frames_per_city=2, height=64, width=128))
    summary = remap(RemapConfig(cityscapes=tmp_path / "synth", out=tmp_path / "cats", workers=1))
    shards = ShardConfig(tmp_path / "synth", tmp_path / "cats", tmp_path / "shards", 2, 64, 128, 1)
    manifest = write_shards(shards)
    assert summary["frames"] == {split: info["frames"] for split, info in synth["splits"].items()}
    for split, info in manifest["splits"].items():
        assert info["examples"] == synth["splits"][split]["frames"]
        # Shards at the source size: the stored masks are the remapped masks, pixel for pixel.
        assert info["category_pixels"] == summary["category_pixels"][split]
        masks = np.concatenate([m.numpy() for _, m in make_dataset(tmp_path / "shards", split, 4)])
        assert np.bincount(masks.ravel(), minlength=8).tolist() == info["category_pixels"]


SOURCES_AS_OUTPUT = {"categories": "it is the source", "cityscapes/s": "it lies inside", ".": "it holds"}


@pytest.mark.parametrize("out", list(SOURCES_AS_OUTPUT))
def test_cli_never_writes_over_or_around_its_sources(tmp_path, out):
    src = builders.write_cityscapes(tmp_path / "cityscapes", frames_per_city=1)
    remap(RemapConfig(cityscapes=src, out=tmp_path / "categories", workers=1))
    before = {path: storage.read_bytes(path) for path in storage.list_files(tmp_path)}
    args = ["shard", "--cityscapes", str(src), "--categories", str(tmp_path / "categories")]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / out), "--workers", "1"])
    assert result.exit_code == 1 and f"{tmp_path / out}: cannot be the output of" in result.output
    assert f"`cityseg shard`: {SOURCES_AS_OUTPUT[out]}" in result.output
    assert {path: storage.read_bytes(path) for path in storage.list_files(tmp_path)} == before


def test_rerun_replaces_its_own_output_but_not_a_remap_output(data, tmp_path):
    remap(RemapConfig(cityscapes=data[0], out=tmp_path / "masks", workers=1))
    config = ShardConfig(*data, tmp_path / "shards", shards=2, height=32, width=64, workers=1)
    write_shards(config)
    write_shards(dataclasses.replace(config, shards=1))
    assert sorted(p.name for p in (tmp_path / "shards").glob("train-*")) == ["train-00000-of-00001.tfrecord"]
    with pytest.raises(ValueError, match="is not an earlier `cityseg shard` output"):
        write_shards(dataclasses.replace(config, out=tmp_path / "masks"))
    assert len(list((tmp_path / "masks").rglob("*.png"))) == 8
