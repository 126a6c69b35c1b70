"""A shard folder is checked against its manifest: counts, whole files and the content hash."""

import json

import pytest
import tensorflow as tf

from cityseg.components import storage, tfrecord
from cityseg.components.shard.core import content_hash
from cityseg.components.shardcheck import ShardMismatchError, verify_shards
from tests import builders


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A shard folder written by `cityseg shard`: two shards per split."""
    return builders.write_shard_folder(tmp_path_factory.mktemp("shardcheck"), shards=2)


@pytest.fixture
def shards(written, tmp_path):
    copy = tmp_path / "shards"
    storage.copy_tree(written, copy)
    return copy


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_the_shard_step_output_passes_and_its_hash_is_recomputed(shards):
    manifest = _manifest(shards)
    verify_shards(shards, manifest)
    digests = {path.name: tfrecord.scan_records(path).sha256 for path in shards.glob("*.tfrecord")}
    assert content_hash(digests) == manifest["content_hash"]


def test_an_overstated_split_names_the_split_both_counts_and_the_files(shards):
    manifest = _manifest(shards)
    counts = manifest["splits"]["train"]["shards"]
    manifest["splits"]["train"]["examples"] = 100 * sum(counts)
    held = ", ".join(f"train-0000{i}-of-00002.tfrecord: {count}" for i, count in enumerate(counts))
    message = (
        f"{shards / 'manifest.json'}: split 'train' lists {100 * sum(counts)} examples, but its shard "
        f"files hold {sum(counts)} ({held})"
    )
    with pytest.raises(ShardMismatchError) as error:
        verify_shards(shards, manifest)
    assert str(error.value) == message


def test_a_shard_count_that_differs_from_its_file_names_the_file(shards):
    manifest = _manifest(shards)
    manifest["splits"]["val"]["shards"][1] += 3
    manifest["splits"]["val"]["examples"] += 3
    path = shards / "val-00001-of-00002.tfrecord"
    with pytest.raises(
        ShardMismatchError, match=f"^{path}: .* lists 4 examples for this shard, the file holds 1$"
    ):
        verify_shards(shards, manifest)


def test_a_missing_or_truncated_shard_is_named(shards):
    path = shards / "test-00000-of-00002.tfrecord"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(tfrecord.DamagedRecordError, match=f"^{path}: record 1 at byte 0: truncated"):
        verify_shards(shards, _manifest(shards))
    path.unlink()
    with pytest.raises(ShardMismatchError, match=f"^{path}: shard listed in .*manifest.json is missing"):
        verify_shards(shards, _manifest(shards))


def test_a_replaced_shard_with_the_same_count_fails_the_content_hash(shards):
    path = shards / "train-00000-of-00002.tfrecord"
    records = [record.numpy() for record in tf.data.TFRecordDataset(str(path))]
    tfrecord.write_records(path, records[::-1])
    with pytest.raises(ShardMismatchError, match=r"content_hash .* does not match the shard files"):
        verify_shards(shards, _manifest(shards))
