"""Crop shards as tf.data pipelines: parsing, augmentation, batching, and the class weights of a split."""

import json
from pathlib import Path

import numpy as np

from cityseg.components import storage
from cityseg.components.crops.schema import CLASSES, parse_crop


def load_crops_manifest(data: str) -> dict:
    """The crops step's manifest.json of `data`.

    Raises:
        ValueError: naming the folder, when there is no manifest or it is not a crops manifest.
    """
    path = storage.join(data, "manifest.json")
    try:
        manifest = json.loads(storage.read_text(path))
    except FileNotFoundError:
        raise ValueError(f"{data}: no manifest.json; write the crops with `cityseg crops`") from None
    if manifest.get("kind") != "crops" or manifest.get("classes") != list(CLASSES):
        raise ValueError(f"{path}: not a crops manifest of the classes {', '.join(CLASSES)}")
    return manifest


def class_weights(manifest: dict, weighting: str) -> dict[int, float] | None:
    """Loss weight per class of the train split: total / (classes x count); None for "none"."""
    if weighting == "none":
        return None
    counts = np.array([manifest["splits"]["train"]["class_counts"][name] for name in CLASSES], float)
    weights = counts.sum() / (len(CLASSES) * np.maximum(counts, 1))
    return {index: float(weight) for index, weight in enumerate(weights)}


def split_files(data: str, split: str) -> list[str]:
    """The shard files of one split, sorted."""
    files = sorted(path for path in storage.list_files(data) if Path(path).name.startswith(f"{split}-"))
    if not files:
        raise ValueError(f"{data}: no {split} shards")
    return [str(path) for path in files]


def augment(image, seed, names: tuple[str, ...]):
    """Stateless, seeded augmentations of one uint8 crop: flip, shift, scale, colour."""
    import tensorflow as tf

    size = tf.shape(image)[0]
    image = tf.cast(image, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 5)
    if "flip" in names:
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    if "scale" in names:
        # Zoom in up to 20%: the object fills a little more of the crop, as with a tighter box.
        side = tf.cast(
            tf.cast(size, tf.float32) * tf.random.stateless_uniform((), seeds[1], 0.8, 1.0), tf.int32
        )
        image = tf.image.stateless_random_crop(image, tf.stack([side, side, 3]), seeds[2])
        image = tf.image.resize(image, tf.stack([size, size]))
    if "shift" in names:
        # Up to 1/8 of the side in each direction, as a box drawn a little off-centre.
        pad = size // 8
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, tf.stack([size, size, 3]), seeds[3])
    if "color" in names:
        color = tf.random.experimental.stateless_split(seeds[4], 3)
        image = tf.image.stateless_random_brightness(image, 32.0, color[0])
        image = tf.image.stateless_random_contrast(image, 0.7, 1.3, color[1])
        image = tf.image.stateless_random_saturation(image, 0.7, 1.3, color[2])
    return tf.clip_by_value(image, 0.0, 255.0)


def make_dataset(
    data: str,
    split: str,
    batch_size: int,
    *,
    training: bool,
    names=(),
    seed: int = 0,
    weights: dict[int, float] | None = None,
    drop_remainder: bool = False,
):
    """Batches of (float32 crops in 0..255, int32 labels); shuffled and augmented when `training`.

    `weights` (class -> loss weight) adds each crop's class weight as a third element, the sample
    weight that `fit`'s `class_weight` would give it, and that the multi-worker loop takes too.
    """
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(split_files(data, split)).map(
        parse_crop, num_parallel_calls=tf.data.AUTOTUNE
    )
    dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
        counter = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))
        dataset = tf.data.Dataset.zip((dataset, counter)).map(
            lambda example, key: (augment(example[0], key, tuple(names)), example[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(lambda image, label: (tf.cast(image, tf.float32), label))
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if weights is not None:
        table = tf.constant([weights[index] for index in range(len(CLASSES))], tf.float32)
        dataset = dataset.map(lambda images, labels: (images, labels, tf.gather(table, labels)))
    # Under MultiWorkerMirroredStrategy every worker reads every shard and keeps its slice of each
    # global batch: with few shard files, file-level sharding would give workers unequal step counts
    # and stall the collectives.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(2).with_options(options)
