"""The select split: the train frames whose ids hash below `select_fraction`, checked like any split."""

import pytest
import tensorflow as tf

from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from cityseg.components.shard.config import ShardConfig
from cityseg.components.shard.core import shard_name, write_shards
from cityseg.components.shardcheck import ShardMismatchError, verify_shards
from tests import builders

SETTINGS = {"shards": 2, "height": 32, "width": 64, "workers": 1, "select_fraction": 0.5}


def _shard(root, frames_per_city: int) -> tuple:
    src = builders.write_cityscapes(root / "src", frames_per_city=frames_per_city)
    remap(RemapConfig(cityscapes=src, out=root / "cats", workers=1))
    return root / "shards", write_shards(ShardConfig(src, root / "cats", root / "shards", **SETTINGS))


def _split_of_each_frame(out, manifest) -> dict[str, str]:
    """Frame stem -> the split whose shards hold it, read from the records' file names."""
    spec = {"image/filename": tf.io.FixedLenFeature((), tf.string)}
    found = {}
    for split, info in manifest["splits"].items():
        count = len(info["shards"])
        for index in range(count):
            for record in tf.data.TFRecordDataset(str(out / shard_name(split, index, count))):
                name = tf.io.parse_single_example(record, spec)["image/filename"].numpy().decode()
                found[name.removesuffix("_leftImg8bit.png")] = split
    return found


def test_select_split_holds_the_train_frames_their_ids_draw_and_is_checked(tmp_path):
    out, manifest = _shard(tmp_path, frames_per_city=2)
    assert list(manifest["splits"]) == ["train", "select", "val", "test"]
    assert manifest["select_fraction"] == 0.5
    splits = _split_of_each_frame(out, manifest)
    # aachen_000000_000000 is the one of the four train frames whose id hashes below 0.5.
    assert {stem: split for stem, split in splits.items() if split in ("train", "select")} == {
        "aachen_000000_000000": "select",
        "aachen_000000_000001": "train",
        "bochum_000000_000000": "train",
        "bochum_000000_000001": "train",
    }
    verify_shards(out, manifest)
    (out / "select-00000-of-00001.tfrecord").unlink()
    with pytest.raises(ShardMismatchError, match=r"select-00000-of-00001\.tfrecord: shard listed in"):
        verify_shards(out, manifest)


def test_adding_frames_to_the_source_never_moves_a_frame_between_splits(tmp_path):
    before = _split_of_each_frame(*_shard(tmp_path / "before", frames_per_city=2))
    after = _split_of_each_frame(*_shard(tmp_path / "after", frames_per_city=4))
    assert len(after) == 2 * len(before)
    assert {stem: after[stem] for stem in before} == before
    # The new frames did reach select: the test would pass vacuously with every frame in train.
    assert sorted(stem for stem, split in after.items() if split == "select") == [
        "aachen_000000_000000",
        "aachen_000000_000002",
        "aachen_000000_000003",
    ]


def test_a_share_outside_zero_to_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"select_fraction must be in \[0, 1\), got 1"):
        ShardConfig(tmp_path, tmp_path, tmp_path / "out", select_fraction=1)
