"""Data statistics per split, from the shards and their manifest in one pass (StatisticsGen's job).

Each shard is read once, record by record, without TensorFlow: the TFRecord framing is a length
prefix and two CRCs, and the example is the `tf.train.Example` proto that tensorflow-datasets ships.
Per frame we keep what the schema checks name (city, void share, grey-level spread, sizes); per
split we keep what a reader compares between weeks (frames per city, category pixel shares, image
mean and std per channel, sizes).
"""

import contextlib
import dataclasses
import functools
import struct
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from cityseg.components import cityscapes, labels, parallel, storage, tfrecord
from cityseg.components.runner import InTaskOrder, RunnerConfig

VOID_HISTOGRAM_BINS = 10


@dataclasses.dataclass(frozen=True)
class FrameStats:
    """What the checks need to know about one frame."""

    split: str
    city: str
    frame: str
    void_share: float
    grey_std: float
    image_size: str
    mask_size: str
    header_size: str


@dataclasses.dataclass(frozen=True)
class ShardStats:
    """One shard's frames and its pixel sums (per category, and per RGB channel for mean and std)."""

    split: str
    frames: tuple[FrameStats, ...]
    category_pixels: np.ndarray
    channel_sum: np.ndarray
    channel_sq_sum: np.ndarray
    pixels: int


@contextlib.contextmanager
def _readable(path: str | Path):
    """A local path to read `path` at: itself, or a downloaded copy of a gs:// shard (Dataflow's workers)."""
    if not storage.is_gcs(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="cityseg-statistics-") as folder:
        yield storage.download(str(path), Path(folder, Path(str(path)).name))


def read_records(path: str | Path):
    """The serialized records of a TFRecord file (local or gs://), in order.

    Raises:
        ValueError: naming the file, when it ends inside a record.
    """
    with _readable(path) as local, open(local, "rb") as handle:
        while header := handle.read(12):
            if len(header) < 12:
                raise ValueError(f"{path}: truncated TFRecord header")
            (length,) = struct.unpack("<Q", header[:8])
            data = handle.read(length)
            if len(data) < length or len(handle.read(4)) < 4:
                raise ValueError(f"{path}: truncated TFRecord ({length} bytes announced)")
            yield data


def _feature(example, key: str):
    feature = example.features.feature[key]
    return feature.bytes_list.value[0] if feature.bytes_list.value else feature.int64_list.value[0]


def city_of(filename: str) -> tuple[str, str]:
    """(city, frame stem) of a Cityscapes file name such as `aachen_000000_000019_leftImg8bit.png`."""
    stem = filename.removesuffix(cityscapes.IMAGE_SUFFIX)
    city = stem.rsplit("_", 2)[0] if stem.count("_") >= 2 else stem
    return city, stem


def shard_statistics(task: tuple[str, str]) -> ShardStats:
    """Statistics of one shard file `(split, path)`."""
    from tensorflow_datasets.proto import tf_example_pb2

    split, path = task
    frames = []
    category_pixels = np.zeros(labels.NUM_CLASSES, np.int64)
    channel_sum, channel_sq_sum, pixels = np.zeros(3), np.zeros(3), 0
    for record in read_records(path):
        example = tf_example_pb2.Example.FromString(record)
        filename = _feature(example, tfrecord.IMAGE_FILENAME).decode("utf-8")
        where = f"{path}: {filename}"
        image = cityscapes.decode_image(_feature(example, tfrecord.IMAGE_ENCODED), where)[..., ::-1]
        mask = cityscapes.decode_mask(_feature(example, tfrecord.MASK_ENCODED), where)
        counts = np.bincount(mask.ravel(), minlength=labels.NUM_CLASSES)[: labels.NUM_CLASSES]
        category_pixels += counts
        values = image.reshape(-1, 3).astype(np.float64)
        channel_sum += values.sum(axis=0)
        channel_sq_sum += np.square(values).sum(axis=0)
        pixels += values.shape[0]
        city, stem = city_of(filename)
        header = f"{_feature(example, tfrecord.IMAGE_HEIGHT)}x{_feature(example, tfrecord.IMAGE_WIDTH)}"
        frames.append(
            FrameStats(
                split=split,
                city=city,
                frame=stem,
                void_share=float(counts[labels.VOID]) / max(mask.size, 1),
                grey_std=float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).std()),
                image_size=f"{image.shape[0]}x{image.shape[1]}",
                mask_size=f"{mask.shape[0]}x{mask.shape[1]}",
                header_size=header,
            )
        )
    return ShardStats(split, tuple(frames), category_pixels, channel_sum, channel_sq_sum, pixels)


def _split_summary(shards: list[ShardStats]) -> dict:
    frames = [frame for shard in shards for frame in shard.frames]
    category_pixels = np.sum([shard.category_pixels for shard in shards], axis=0)
    pixels = max(sum(shard.pixels for shard in shards), 1)
    mean = np.sum([shard.channel_sum for shard in shards], axis=0) / pixels
    variance = np.sum([shard.channel_sq_sum for shard in shards], axis=0) / pixels - np.square(mean)
    void = np.array([frame.void_share for frame in frames])
    histogram, _ = np.histogram(void, bins=VOID_HISTOGRAM_BINS, range=(0.0, 1.0))
    total = max(int(category_pixels.sum()), 1)
    return {
        "frames": len(frames),
        "frames_per_city": dict(sorted(Counter(frame.city for frame in frames).items())),
        "category_pixels": category_pixels.astype(int).tolist(),
        "pixel_share": {
            name: round(int(count) / total, 6)
            for name, count in zip(labels.CATEGORY_NAMES, category_pixels, strict=True)
        },
        "void_share": {
            "min": round(float(void.min()), 6) if void.size else None,
            "mean": round(float(void.mean()), 6) if void.size else None,
            "max": round(float(void.max()), 6) if void.size else None,
            "histogram": histogram.astype(int).tolist(),
        },
        "image_mean": [round(float(v), 4) for v in mean],
        "image_std": [round(float(v), 4) for v in np.sqrt(np.maximum(variance, 0.0))],
        "image_sizes": dict(sorted(Counter(frame.image_size for frame in frames).items())),
        "mask_sizes": dict(sorted(Counter(frame.mask_size for frame in frames).items())),
    }


def _summaries(results: list[tuple[tuple[str, str], ShardStats]], splits: tuple[str, ...]):
    """(statistics per split, every frame's stats) of the shards' stats, given in task order."""
    by_split: dict[str, list[ShardStats]] = {}
    for _, result in results:
        by_split.setdefault(result.split, []).append(result)
    frames = [frame for _, result in results for frame in result.frames]
    return {split: _split_summary(by_split.get(split, [])) for split in splits}, frames


def compute_statistics(
    shards_dir: str | Path, manifest: dict, workers: int | None = 1, runner: RunnerConfig | None = None
) -> tuple[dict, list[FrameStats]]:
    """(statistics per split, every frame's stats) of a shard folder described by `manifest`.

    `runner` names the engine that reads the shards (None: the local process pool); on Dataflow the
    folder must be on gs://.

    Raises:
        ValueError: naming the file, for a missing shard or a record that does not decode.
    """
    from cityseg.components.shard.core import shard_name

    parallel.check_reachable(runner, shards=shards_dir)
    tasks = []
    for split, info in manifest["splits"].items():
        count = len(info["shards"])
        for index in range(count):
            path = storage.join(shards_dir, shard_name(split, index, count))
            if not storage.exists(path):
                raise ValueError(f"{path}: shard listed in {shards_dir}/manifest.json is missing")
            tasks.append((split, path))
    # Per-shard stats are folded by a combiner that sorts them back into task order, so every runner
    # (local pool, Beam workers in any order) gives the same statistics.
    combiner = InTaskOrder(functools.partial(_summaries, splits=tuple(manifest["splits"])))
    return parallel.map_combine(
        shard_statistics, tasks, combiner, workers=workers, runner=runner, desc="statistics", unit="shard"
    )
