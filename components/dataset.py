"""The tf.data input pipeline over cityseg shards, with seeded, switchable augmentations.

Records are read with a parallel interleave over the shard files, decoded in parallel, and kept
decoded in memory when the split fits, so later epochs cost only the augmentation. Every random
draw is a stateless op with a per-element seed drawn from a seeded stream, which makes a pipeline
repeat exactly for a given seed, whatever the parallelism.
"""

import dataclasses
import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path

import tensorflow as tf

from cityseg.components import output_folder, storage, tfrecord
from cityseg.components.shard.core import MANIFEST, shard_name

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 512
# Decoded splits up to this share of the machine's memory are cached after the first epoch.
CACHE_MEMORY_SHARE = 0.25


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, their seed, and how strong they are.

    Geometric ones (flip, scale_crop, rotate) move the mask with the image, sampled nearest so ids
    stay ids; pixels they bring in from outside the frame are black in the image and void in the mask.
    """

    flip: bool = False
    scale_crop: bool = False
    color_jitter: bool = False
    noise: bool = False
    rotate: bool = False
    seed: int = 0
    scale_range: tuple[float, float] = (0.5, 2.0)
    max_rotation_deg: float = 10.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    noise_stddev: float = 0.03

    @classmethod
    def none(cls, seed: int = 0) -> "AugmentConfig":
        """No augmentation."""
        return cls(seed=seed)

    @classmethod
    def default(cls, seed: int = 0) -> "AugmentConfig":
        """All five augmentations at their default strength."""
        return cls(flip=True, scale_crop=True, color_jitter=True, noise=True, rotate=True, seed=seed)

    @property
    def enabled(self) -> bool:
        """True when at least one augmentation is on."""
        return self.flip or self.scale_crop or self.color_jitter or self.noise or self.rotate


def load_manifest(shards_dir: str | os.PathLike) -> dict:
    """The manifest.json of a shard folder (local or gs://).

    Raises:
        ValueError: naming the folder, when it or its manifest is missing, or the manifest is not JSON.
    """
    path = storage.join(shards_dir, MANIFEST)
    try:
        manifest = json.loads(storage.read_text(path))
    except FileNotFoundError:
        raise ValueError(
            f"{shards_dir}: no {MANIFEST}; is this a folder written by `cityseg shard`?"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not manifest.get("splits"):
        raise ValueError(f"{path}: lists no splits")
    return manifest


def local_shards(shards_dir: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> Path:
    """A local folder with the shards: the folder itself, or a cached copy of a gs:// folder.

    The copy is keyed by URI and content hash, so a re-sharded folder is fetched again.
    """
    if not storage.is_gcs(shards_dir):
        return Path(shards_dir)
    manifest = load_manifest(shards_dir)
    key = hashlib.sha256(str(shards_dir).encode()).hexdigest()[:16]
    cache_root = Path(cache_root or Path(tempfile.gettempdir(), "cityseg-shards"))
    local = cache_root / f"{key}-{manifest['content_hash'][:16]}"
    if not (local / MANIFEST).exists():
        log.info("copying %s to %s", shards_dir, local)
        with output_folder.staged_folder(local, "shard-cache", sources=[shards_dir]) as staging:
            storage.copy_tree(shards_dir, staging)
    return local


def _decode(size: tuple[int, int] | None, height: int, width: int):
    def decode(serialized):
        image, mask, _ = tfrecord.parse_example(serialized)
        image.set_shape((height, width, 3))
        mask.set_shape((height, width))
        if size is not None and tuple(size) != (height, width):
            image = tf.cast(tf.round(tf.image.resize(image, size, method="area")), tf.uint8)
            mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
        return image, mask

    return decode


def _flip(image, mask, seed):
    flip = tf.random.stateless_uniform((), seed) < 0.5
    return tf.cond(flip, lambda: (image[:, ::-1], mask[:, ::-1]), lambda: (image, mask))


def _scale_crop(image, mask, seed, scale_range):
    height, width = image.shape[0], image.shape[1]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    scale = tf.random.stateless_uniform((), seeds[0], *scale_range)
    scaled_h = tf.cast(tf.round(height * scale), tf.int32)
    scaled_w = tf.cast(tf.round(width * scale), tf.int32)
    image = tf.image.resize(image, (scaled_h, scaled_w), method="bilinear")
    mask = tf.image.resize(mask[..., None], (scaled_h, scaled_w), method="nearest")
    # A smaller image is placed at a random spot on a black / void canvas of the original size; a
    # larger one is cropped at a random spot. One uniform draw per axis and step does both.
    canvas_h, canvas_w = tf.maximum(scaled_h, height), tf.maximum(scaled_w, width)
    place = tf.random.stateless_uniform((2,), seeds[1])
    top = tf.cast(place[0] * tf.cast(canvas_h - scaled_h + 1, tf.float32), tf.int32)
    left = tf.cast(place[1] * tf.cast(canvas_w - scaled_w + 1, tf.float32), tf.int32)
    image = tf.image.pad_to_bounding_box(image, top, left, canvas_h, canvas_w)
    mask = tf.image.pad_to_bounding_box(mask, top, left, canvas_h, canvas_w)
    crop = tf.random.stateless_uniform((2,), seeds[2])
    top = tf.cast(crop[0] * tf.cast(canvas_h - height + 1, tf.float32), tf.int32)
    left = tf.cast(crop[1] * tf.cast(canvas_w - width + 1, tf.float32), tf.int32)
    image = tf.ensure_shape(image[top : top + height, left : left + width], (height, width, 3))
    mask = tf.ensure_shape(mask[top : top + height, left : left + width, 0], (height, width))
    return image, mask


def _rotate(image, mask, seed, max_degrees):
    height, width = image.shape[0], image.shape[1]
    angle = tf.random.stateless_uniform((), seed, -max_degrees, max_degrees) * (math.pi / 180)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) samples input ((cos x - sin y + dx), (sin x + cos y + dy)): a rotation
    # about the image centre.
    dx = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2
    dy = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2
    transform = tf.stack([cos, -sin, dx, sin, cos, dy, 0.0, 0.0])[None]

    def warp(array, interpolation):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=array[None],
            transforms=transform,
            output_shape=(height, width),
            fill_value=0.0,
            interpolation=interpolation,
            fill_mode="CONSTANT",
        )[0]

    return warp(image, "BILINEAR"), warp(mask[..., None], "NEAREST")[..., 0]


def _color_jitter(image, seed, config: AugmentConfig):
    seeds = tf.random.experimental.stateless_split(seed, 3)
    image = tf.image.stateless_random_brightness(image, config.brightness, seeds[0])
    image = tf.image.stateless_random_contrast(image, 1 - config.contrast, 1 + config.contrast, seeds[1])
    image = tf.image.stateless_random_saturation(
        image, 1 - config.saturation, 1 + config.saturation, seeds[2]
    )
    return tf.clip_by_value(image, 0.0, 1.0)


def augment_example(image, mask, seed, config: AugmentConfig):
    """Graph op: one example (image float32 [H, W, 3] in [0, 1], mask int32 [H, W]) augmented.

    `seed` is a stateless seed, shape (2,); the same seed gives the same result.
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    if config.flip:
        image, mask = _flip(image, mask, seeds[0])
    if config.scale_crop:
        image, mask = _scale_crop(image, mask, seeds[1], config.scale_range)
    if config.rotate:
        image, mask = _rotate(image, mask, seeds[2], config.max_rotation_deg)
    if config.color_jitter:
        image = _color_jitter(image, seeds[3], config)
    if config.noise:
        noise = tf.random.stateless_normal(tf.shape(image), seeds[4], stddev=config.noise_stddev)
        image = tf.clip_by_value(image + noise, 0.0, 1.0)
    return image, mask


def _fits_in_memory(examples: int, height: int, width: int) -> bool:
    decoded = examples * height * width * 4  # uint8 RGB image + uint8 mask
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return decoded <= CACHE_MEMORY_SHARE * memory


def make_dataset(
    shards_dir: str | os.PathLike,
    split: str,
    batch_size: int,
    *,
    augment: AugmentConfig | None = None,
    shuffle: bool = False,
    repeat: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
    size: tuple[int, int] | None = None,
    cache: bool | None = None,
) -> tf.data.Dataset:
    """Batches of (image float32 [B, H, W, 3] in [0, 1], mask int32 [B, H, W] category ids).

    Args:
        shards_dir: folder written by `cityseg shard`; a gs:// folder is copied to a local cache first.
        split: a split of the manifest (train, val, test).
        batch_size: examples per batch.
        augment: augmentations to apply; None for none.
        shuffle: shuffle shard order and examples (seeded by `seed`).
        repeat: repeat forever.
        seed: seed of the shuffles.
        drop_remainder: drop a last, smaller batch.
        size: (height, width) to resize to (area for images, nearest for masks); None keeps the shard size.
        cache: keep decoded examples in memory; None does so when the split needs under a quarter
            of the memory.

    Raises:
        ValueError: the folder has no manifest, the split is not in it, or a shard file is missing.
    """
    local = local_shards(shards_dir)
    manifest = load_manifest(local)
    if split not in manifest["splits"]:
        raise ValueError(f"{shards_dir}: no split {split!r}; the manifest lists {sorted(manifest['splits'])}")
    info = manifest["splits"][split]
    count = len(info["shards"])
    files = [str(local / shard_name(split, index, count)) for index in range(count)]
    for path in files:
        if not Path(path).is_file():
            raise ValueError(f"{path}: shard listed in {MANIFEST} is missing")
    height, width = manifest["height"], manifest["width"]
    out_h, out_w = size or (height, width)
    if cache is None:
        cache = _fits_in_memory(info["examples"], out_h, out_w)

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=AUTOTUNE
    )
    # A known length lets Keras run exactly the epoch's batches instead of probing for the end of
    # the data (its "input ran out of data" warning); a manifest that lies fails here too.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(info["examples"]))
    dataset = dataset.map(_decode(size, height, width), num_parallel_calls=AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(min(info["examples"], SHUFFLE_BUFFER), seed=seed)
    if repeat:
        dataset = dataset.repeat()
    if augment is not None and augment.enabled:
        config = augment

        def augmented(example, seed):
            image = tf.image.convert_image_dtype(example[0], tf.float32)
            return augment_example(image, tf.cast(example[1], tf.int32), seed, config)

        # One stateless seed per element, from a stream that is fixed by the seed yet new on every
        # pass over the dataset, so each epoch draws fresh augmentations.
        seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(augmented, num_parallel_calls=AUTOTUNE)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(
            lambda image, mask: (tf.image.convert_image_dtype(image, tf.float32), tf.cast(mask, tf.int32)),
            num_parallel_calls=AUTOTUNE,
        )
    return dataset.prefetch(AUTOTUNE)
