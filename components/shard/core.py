"""Write Cityscapes images and category masks as TFRecord shards per split, with manifest and TFDS info."""

import dataclasses
import functools
import hashlib
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from cityseg.components import cityscapes, labels, output_folder, parallel, splits, storage, tfrecord
from cityseg.components.runner import InTaskOrder
from cityseg.components.shard.config import ShardConfig

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# The shard names, in the terms of a TFDS ShardedFileTemplate, so TFDS finds the files we write.
TFDS_FILENAME_TEMPLATE = "{SPLIT}-{SHARD_X_OF_Y}.{FILEFORMAT}"
SPLIT_ORDER = splits.ORDER


def shard_name(split: str, index: int, count: int) -> str:
    """`train-00001-of-00004.tfrecord`: the TF Model Garden naming, which TFDS reads too."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


@dataclasses.dataclass(frozen=True)
class _ShardTask:
    split: str
    source: cityscapes.Source
    masks: cityscapes.Source
    frames: tuple[cityscapes.Frame, ...]
    path: str
    height: int
    width: int


@dataclasses.dataclass(frozen=True)
class _ShardResult:
    examples: int
    category_pixels: np.ndarray
    sha256: str
    num_bytes: int


def encode_frame(
    image_png: bytes, mask_png: bytes, *, where_image: str, where_mask: str, height: int, width: int
) -> tuple[bytes, np.ndarray]:
    """One frame -> (serialized example at height x width, pixels per category of its stored mask).

    Raises:
        ValueError: naming the file, for a corrupt image or mask, a mask that is not 8-bit
            single-channel with ids 0..7, or an image and mask of different sizes.
    """
    image = cityscapes.decode_image(image_png, where_image)
    mask = cityscapes.decode_mask(mask_png, where_mask)
    if image.shape[:2] != mask.shape:
        raise ValueError(
            f"{where_mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {where_image} is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    if image.shape[:2] != (height, width):
        # Area averaging for photos avoids aliasing; nearest (the exact variant, which samples pixel
        # centres like area does) for masks keeps ids valid and aligned with the image.
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    counts = np.bincount(mask.ravel(), minlength=labels.NUM_CLASSES)
    if counts.size > labels.NUM_CLASSES:
        bad = np.flatnonzero(counts[labels.NUM_CLASSES :]) + labels.NUM_CLASSES
        raise ValueError(
            f"{where_mask}: category ids must be 0..{labels.NUM_CLASSES - 1}, found {bad.tolist()}"
        )
    image_ok, image_encoded = cv2.imencode(".png", image, cityscapes.IMAGE_PNG_PARAMS)
    mask_ok, mask_encoded = cv2.imencode(".png", mask, cityscapes.MASK_PNG_PARAMS)
    if not (image_ok and mask_ok):
        raise ValueError(f"{where_image}: OpenCV could not encode the resized frame")
    filename = Path(where_image).name
    example = tfrecord.encode_example(
        image_encoded.tobytes(), mask_encoded.tobytes(), filename, height, width
    )
    return example, counts.astype(np.int64)


def _write_shard(task: _ShardTask) -> _ShardResult:
    pixels = np.zeros(labels.NUM_CLASSES, np.int64)

    def examples():
        nonlocal pixels
        for frame in task.frames:
            example, counts = encode_frame(
                task.source.read(frame.image),
                task.masks.read(frame.label),
                where_image=task.source.where(frame.image),
                where_mask=task.masks.where(frame.label),
                height=task.height,
                width=task.width,
            )
            pixels += counts
            yield example

    with parallel.written_here(task.path) as local:
        count = tfrecord.write_records(local, examples())
        with open(local, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        size = Path(local).stat().st_size
    return _ShardResult(count, pixels, digest, size)


def _shuffled(frames: list[cityscapes.Frame]) -> list[cityscapes.Frame]:
    # A fixed order that mixes cities across and within shards, so a reader's shuffle buffer starts
    # from a mixed stream; it depends only on the frame names, so runs repeat byte for byte.
    return sorted(frames, key=lambda f: hashlib.sha256(f"{f.split}/{f.city}/{f.stem}".encode()).hexdigest())


def read_back(path: str | Path, height: int, width: int) -> tuple[int, np.ndarray]:
    """(examples, pixels per category) of a written shard, read through the input pipeline's parser.

    Raises:
        ValueError: a record is damaged or holds an image or mask of another size.
    """
    import tensorflow as tf

    def check(serialized):
        image, mask, _ = tfrecord.parse_example(serialized)
        same_size = tf.reduce_all(tf.shape(image) == [height, width, 3]) & tf.reduce_all(
            tf.shape(mask) == [height, width]
        )
        counts = tf.math.bincount(tf.cast(mask, tf.int32), minlength=labels.NUM_CLASSES, dtype=tf.int64)
        return tf.cast(same_size, tf.int64), counts[: labels.NUM_CLASSES]

    dataset = tf.data.TFRecordDataset(str(path)).map(check, num_parallel_calls=tf.data.AUTOTUNE)
    initial = (tf.constant(0, tf.int64), tf.constant(0, tf.int64), tf.zeros(labels.NUM_CLASSES, tf.int64))
    try:
        count, same_size, pixels = dataset.reduce(
            initial, lambda acc, item: (acc[0] + 1, acc[1] + item[0], acc[2] + item[1])
        )
    except tf.errors.OpError as err:
        raise ValueError(f"{path}: damaged shard: {err.message}") from None
    if int(same_size) != int(count):
        raise ValueError(f"{path}: {int(count) - int(same_size)} examples are not {height}x{width}")
    return int(count), pixels.numpy()


def _write_tfds_metadata(out: Path, splits: dict[str, list[_ShardResult]], height: int, width: int) -> None:
    import tensorflow_datasets as tfds

    template = tfds.core.ShardedFileTemplate(
        data_dir=tfds.core.Path(out),
        template=TFDS_FILENAME_TEMPLATE,
        dataset_name="cityseg",
        filetype_suffix="tfrecord",
    )
    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=[result.examples for result in results],
            num_bytes=sum(result.num_bytes for result in results),
            filename_template=template,
        )
        for split, results in splits.items()
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=out,
        features=tfrecord.tfds_features(height, width),
        split_infos=split_infos,
        filename_template=template,
        check_data=False,
        description="Cityscapes street scenes with masks of 8 categories, written by `cityseg shard`.",
    )


def write_shards(config: ShardConfig) -> dict:
    """Write `out/{split}-{i:05d}-of-{n:05d}.tfrecord`, `out/manifest.json` and TFDS metadata.

    The source's train frames are divided between `train` and `select` by `splits.assign_split`;
    a split without frames is not written. A split with fewer frames than `shards` gets one shard
    per frame. Shards are written in parallel, read back and checked against what was written
    before the folder appears.

    Returns:
        The manifest (see the BRIEF contract).

    Raises:
        ValueError: naming the file, for bad or missing input, or an image without a category mask.
        OutputFolderError: `out` is, holds or lies inside a source, or holds files that an earlier
            shard did not write (see `cityseg.components.output_folder`); nothing is touched.
    """
    parallel.check_reachable(config.runner, cityscapes=config.cityscapes, categories=config.categories)
    with (
        cityscapes.open_source(config.cityscapes) as source,
        cityscapes.open_source(config.categories) as masks,
    ):
        images = cityscapes.index(source.names(), cityscapes.IMAGE_RE)
        categories = cityscapes.index(masks.names(), cityscapes.CATEGORY_RE)
        if not images:
            raise ValueError(f"{source.location}: no Cityscapes images (leftImg8bit/...) found")
        frames = cityscapes.pair(images, categories, source.where, masks.where, "category mask")
        sources = [config.cityscapes, config.categories]
        with output_folder.staged_folder(config.out, "shard", sources) as staging:
            with parallel.output_root(config.runner, staging, "shard") as root:
                tasks = _plan(source, masks, frames, config, root)
                results, by_split, manifest = parallel.map_combine(
                    _write_shard,
                    tasks,
                    InTaskOrder(functools.partial(_manifest, config=config)),
                    workers=config.workers,
                    runner=config.runner,
                    desc="shard",
                    unit="shard",
                )
            _verify(staging, tasks, results)
            _write_tfds_metadata(staging, by_split, config.height, config.width)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: %s", config.out, {split: info["examples"] for split, info in manifest["splits"].items()})
    return manifest


def frame_id(frame: cityscapes.Frame) -> str:
    """`city/stem`: what a frame is known by, whichever split of the source it lies in."""
    return f"{frame.city}/{frame.stem}"


def _plan(
    source: cityscapes.Source,
    masks: cityscapes.Source,
    frames: list[cityscapes.Frame],
    config: ShardConfig,
    root: str,
) -> list[_ShardTask]:
    by_split: dict[str, list[cityscapes.Frame]] = {}
    for frame in frames:
        split = splits.assign_split(frame.split, frame_id(frame), config.select_fraction)
        by_split.setdefault(split, []).append(frame)
    tasks = []
    for split in sorted(by_split, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s)):
        ordered = _shuffled(by_split[split])
        count = min(config.shards, len(ordered))
        tasks += [
            _ShardTask(
                split,
                source,
                masks,
                tuple(ordered[index::count]),
                storage.join(root, shard_name(split, index, count)),
                config.height,
                config.width,
            )
            for index in range(count)
        ]
    return tasks


def _verify(staging: Path, tasks: list[_ShardTask], results: list[_ShardResult]) -> None:
    for task, result in zip(tasks, results, strict=True):
        path = staging / Path(task.path).name
        count, pixels = read_back(path, task.height, task.width)
        if count != result.examples or not np.array_equal(pixels, result.category_pixels):
            raise RuntimeError(
                f"{path}: read back {count} examples and pixels {pixels.tolist()}, but wrote "
                f"{result.examples} and {result.category_pixels.tolist()}"
            )


def content_hash(file_digests: dict[str, str]) -> str:
    """The manifest's `content_hash`: SHA-256 over one `name sha256` line per shard file, by name."""
    content = "".join(f"{name} {digest}\n" for name, digest in sorted(file_digests.items()))
    return hashlib.sha256(content.encode()).hexdigest()


def _manifest(pairs: list[tuple[_ShardTask, _ShardResult]], config: ShardConfig):
    """(results, results per split, manifest) of the written shards, given in task order."""
    by_split: dict[str, list[_ShardResult]] = {}
    for task, result in pairs:
        by_split.setdefault(task.split, []).append(result)
    digests = {Path(task.path).name: result.sha256 for task, result in pairs}
    manifest = {
        "height": config.height,
        "width": config.width,
        "num_classes": labels.NUM_CLASSES,
        "categories": list(labels.CATEGORY_NAMES),
        "splits": {
            split: {
                "examples": sum(r.examples for r in split_results),
                "shards": [r.examples for r in split_results],
                "category_pixels": np.sum([r.category_pixels for r in split_results], axis=0).tolist(),
            }
            for split, split_results in by_split.items()
        },
        "source": str(config.cityscapes),
        "select_fraction": config.select_fraction,
        "label_table_version": labels.label_table_version(),
        "content_hash": content_hash(digests),
    }
    return [result for _, result in pairs], by_split, manifest
