import numpy as np
import pytest
import tensorflow as tf

from cityseg.components import storage
from cityseg.components.dataset import AugmentConfig, load_manifest, make_dataset
from tests import builders

GEOMETRIC = AugmentConfig(flip=True, scale_crop=True, rotate=True)
PHOTOMETRIC = AugmentConfig(color_jitter=True, noise=True)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Shards whose images are the PALETTE colours of their masks."""
    return builders.write_shard_folder(tmp_path_factory.mktemp("palette"), palette_images=True)


def as_arrays(dataset):
    images, masks = zip(*[(i.numpy(), m.numpy()) for i, m in dataset], strict=True)
    return np.concatenate(images), np.concatenate(masks)


def test_batches_have_the_contract_types_and_the_shard_pixels(shards):
    dataset = make_dataset(shards, "train", 3)
    assert dataset.element_spec[0] == tf.TensorSpec((None, 32, 64, 3), tf.float32)
    assert dataset.element_spec[1] == tf.TensorSpec((None, 32, 64), tf.int32)
    images, masks = as_arrays(dataset)
    assert images.shape == (4, 32, 64, 3) and masks.shape == (4, 32, 64)
    np.testing.assert_array_equal(images, builders.PALETTE[masks] / 255.0)
    assert [len(m) for _, m in make_dataset(shards, "train", 3, drop_remainder=True)] == [3]
    assert (
        np.bincount(masks.ravel(), minlength=8).tolist()
        == load_manifest(shards)["splits"]["train"]["category_pixels"]
    )


def test_batch_counts_are_known_so_keras_runs_whole_epochs(shards):
    # Keras probes a dataset of unknown length to its end and warns "Your input ran out of data".
    assert int(make_dataset(shards, "train", 3).cardinality()) == 2
    assert int(make_dataset(shards, "train", 3, drop_remainder=True).cardinality()) == 1
    flipped = make_dataset(shards, "train", 3, augment=AugmentConfig(flip=True), shuffle=True)
    assert int(flipped.cardinality()) == 2 == sum(1 for _ in flipped)
    assert make_dataset(shards, "train", 3, repeat=True).cardinality() == tf.data.INFINITE_CARDINALITY


def test_resize_keeps_ids_and_shuffle_repeat_follow_the_seed(shards):
    images, masks = as_arrays(make_dataset(shards, "train", 4, size=(16, 32)))
    assert images.shape == (4, 16, 32, 3) and set(np.unique(masks)) <= set(range(8))
    first = [
        m.numpy() for _, m in make_dataset(shards, "train", 1, shuffle=True, repeat=True, seed=3).take(12)
    ]
    again = [
        m.numpy() for _, m in make_dataset(shards, "train", 1, shuffle=True, repeat=True, seed=3).take(12)
    ]
    np.testing.assert_array_equal(first, again)
    plain = [m.numpy() for _, m in make_dataset(shards, "train", 1)]
    assert sorted(x.tobytes() for x in first[:4]) == sorted(x.tobytes() for x in plain)


def test_geometric_augmentations_keep_image_and_mask_aligned(shards):
    _, plain_masks = as_arrays(make_dataset(shards, "train", 4))
    images, masks = as_arrays(make_dataset(shards, "train", 4, augment=GEOMETRIC, repeat=True).take(5))
    # A pixel still in a palette corner was sampled from one category only: the mask must agree.
    corner = np.all((np.abs(images) < 1e-4) | (np.abs(images - 1) < 1e-4), axis=-1)
    colour_ids = (
        np.round(images[..., 0]) * 4 + np.round(images[..., 1]) * 2 + np.round(images[..., 2])
    ).astype(int)
    assert corner.mean() > 0.5  # most pixels are checked, not a handful
    np.testing.assert_array_equal(masks[corner], colour_ids[corner])
    assert not np.array_equal(masks[:4], plain_masks)
    assert masks.dtype == np.int32 and set(np.unique(masks)) <= set(range(8))


@pytest.mark.parametrize(
    "config",
    [AugmentConfig(flip=True), AugmentConfig(scale_crop=True), AugmentConfig(rotate=True)],
    ids=["flip", "scale_crop", "rotate"],
)
def test_each_geometric_augmentation_alone_keeps_alignment(shards, config):
    images, masks = as_arrays(make_dataset(shards, "train", 4, augment=config, repeat=True).take(3))
    corner = np.all((np.abs(images) < 1e-4) | (np.abs(images - 1) < 1e-4), axis=-1)
    colour_ids = (
        np.round(images[..., 0]) * 4 + np.round(images[..., 1]) * 2 + np.round(images[..., 2])
    ).astype(int)
    np.testing.assert_array_equal(masks[corner], colour_ids[corner])
    _, plain = as_arrays(make_dataset(shards, "train", 4).repeat(3))
    assert not np.array_equal(masks, plain)


def test_photometric_augmentations_change_only_the_image(shards):
    plain_images, plain_masks = as_arrays(make_dataset(shards, "val", 2))
    images, masks = as_arrays(make_dataset(shards, "val", 2, augment=PHOTOMETRIC))
    np.testing.assert_array_equal(masks, plain_masks)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.abs(images - plain_images).mean() > 0.01


def test_augmentation_repeats_for_a_seed_and_changes_with_it(shards):
    def run(seed):
        return as_arrays(make_dataset(shards, "val", 2, augment=AugmentConfig.default(seed=seed)))

    (a_images, a_masks), (b_images, b_masks) = run(7), run(7)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_masks, b_masks)
    assert not np.array_equal(run(8)[0], a_images)
    dataset = make_dataset(shards, "val", 2, augment=AugmentConfig.default(seed=7))
    first_epoch, second_epoch = as_arrays(dataset), as_arrays(dataset)
    np.testing.assert_array_equal(first_epoch[0], a_images)
    assert not np.array_equal(second_epoch[0], a_images)
    assert AugmentConfig.none() == AugmentConfig() and not AugmentConfig.none().enabled


def test_missing_folder_split_and_shard_are_named(shards, tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}: no manifest.json"):
        load_manifest(tmp_path)
    with pytest.raises(ValueError, match=r"no split 'extra'; the manifest lists \['test', 'train', 'val'\]"):
        make_dataset(shards, "extra", 1)
    copy = tmp_path / "copy"
    storage.copy_tree(shards, copy)
    (copy / "val-00001-of-00002.tfrecord").unlink()
    with pytest.raises(
        ValueError, match=r"val-00001-of-00002\.tfrecord: shard listed in manifest\.json is missing"
    ):
        make_dataset(copy, "val", 1)


def test_gcs_shards_are_read_through_a_local_copy(shards, gcs_emulator, tmp_path):
    bucket = gcs_emulator()
    storage.copy_tree(shards, f"{bucket}/shards")
    assert load_manifest(f"{bucket}/shards") == load_manifest(shards)
    remote = as_arrays(make_dataset(f"{bucket}/shards", "test", 2))
    local = as_arrays(make_dataset(shards, "test", 2))
    np.testing.assert_array_equal(remote[0], local[0])
    np.testing.assert_array_equal(remote[1], local[1])
