"""Cut square crops around every object instance of a Cityscapes source and write them as TFRecord shards.

The source is read as the segmentation pipeline reads it (a folder, the two official zips, or a
gs:// prefix; see `cityseg.components.cityscapes`), with `gtFine_instanceIds.png` and
`gtFine_polygons.json` beside each image; remap is not needed. Crops keep the split of their
frame's city. The manifest lists the crops per class and split, the instances each filter dropped,
and a content hash over the shard files, as the segmentation shards' manifest does.
"""

import collections
import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import cv2

from cityseg.components import cityscapes, output_folder, parallel, tfrecord
from cityseg.components.crops import instances, schema
from cityseg.components.crops.config import CropsConfig
from cityseg.components.shard.core import content_hash, shard_name

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DROP_REASONS = ("small_box", "few_pixels", "occluded")
# Crops keep their frame's split, the source's own.
SPLIT_ORDER = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class _FrameTask:
    source: cityscapes.Source
    split: str
    stem: str
    image: str
    instance_ids: str
    polygons: str
    config: CropsConfig


@dataclasses.dataclass(frozen=True)
class _Crop:
    key: str
    label: int
    record: bytes


def object_frames(source: cityscapes.Source) -> list[tuple[cityscapes.Frame, str]]:
    """(frame with its instanceIds PNG as `label`, its polygons json) for every image of the source.

    Raises:
        ValueError: no images, or an image without its instanceIds or polygons file (or the reverse).
    """
    names = source.names()
    images = cityscapes.index(names, cityscapes.IMAGE_RE)
    if not images:
        raise ValueError(f"{source.location}: no Cityscapes images (leftImg8bit/...) found")
    ids = cityscapes.index(names, cityscapes.INSTANCE_RE)
    polygons = cityscapes.index(names, cityscapes.POLYGONS_RE)
    frames = cityscapes.pair(images, ids, source.where, source.where, "instanceIds")
    cityscapes.pair(images, polygons, source.where, source.where, "polygons")
    return [(frame, polygons[(frame.split, frame.city, frame.stem)]) for frame in frames]


def crop_frame(task: _FrameTask) -> tuple[list[_Crop], collections.Counter]:
    """The kept crops of one frame as serialized records, and the instances dropped per reason."""
    where_ids = task.source.where(task.instance_ids)
    where_polygons = task.source.where(task.polygons)
    image = cityscapes.decode_image(task.source.read(task.image), task.source.where(task.image))
    ids = cityscapes.decode_instances(task.source.read(task.instance_ids), where_ids)
    if ids.shape != image.shape[:2]:
        raise ValueError(
            f"{where_ids}: {ids.shape[1]}x{ids.shape[0]}, but its image is {image.shape[1]}x{image.shape[0]}"
        )
    try:
        document = json.loads(task.source.read(task.polygons))
    except json.JSONDecodeError as err:
        raise ValueError(f"{where_polygons}: not valid JSON: {err}") from None
    crops, dropped = [], collections.Counter()
    for instance in instances.find_instances(ids, document, where_polygons):
        reason = instances.drop_reason(instance, task.config)
        if reason:
            dropped[reason] += 1
            continue
        crop = instances.square_crop(image, instance.box, task.config.margin, task.config.size)
        ok, png = cv2.imencode(".png", crop, cityscapes.IMAGE_PNG_PARAMS)
        if not ok:
            raise ValueError(f"{task.source.where(task.image)}: OpenCV could not encode a crop")
        record = schema.encode_crop(
            png.tobytes(), instance.label, task.stem, instance.instance_id, instance.box, instance.visible
        )
        crops.append(_Crop(f"{task.stem}/{instance.instance_id}", instance.label, record))
    return crops, dropped


def _ordered(crops: list[_Crop]) -> list[_Crop]:
    # A fixed order that mixes frames and classes within shards and depends only on the crops' names.
    return sorted(crops, key=lambda c: hashlib.sha256(c.key.encode()).hexdigest())


def _write_split(staging: Path, split: str, crops: list[_Crop], shards: int) -> dict[str, str]:
    """Write one split's shards; returns file name -> sha256."""
    ordered = _ordered(crops)
    count = min(shards, len(ordered))
    digests = {}
    for index in range(count):
        path = staging / shard_name(split, index, count)
        tfrecord.write_records(path, (crop.record for crop in ordered[index::count]))
        digests[path.name] = tfrecord.scan_records(path).sha256
    return digests


def write_crops(config: CropsConfig) -> dict:
    """Write `out/{split}-{i:05d}-of-{n:05d}.tfrecord` crop shards and `out/manifest.json`.

    Returns:
        The manifest: size, classes, per split the examples, shard sizes, per-class counts and the
        dropped instances per reason, the filters, the source and the content hash.

    Raises:
        ValueError: naming the file, for missing or bad input (see `object_frames`, `crop_frame`).
        OutputFolderError: `out` may not be replaced (see `cityseg.components.output_folder`).
    """
    with cityscapes.open_source(config.cityscapes) as source:
        found = object_frames(source)
        log.info("%s: %d frames", source.location, len(found))
        tasks = [
            _FrameTask(source, frame.split, frame.stem, frame.image, frame.label, polygons, config)
            for frame, polygons in found
        ]
        by_split: dict[str, list[_Crop]] = {}
        dropped: dict[str, collections.Counter] = {}
        for task, (crops, frame_dropped) in zip(
            tasks, parallel.map_in_processes(crop_frame, tasks, config.workers, "crops"), strict=True
        ):
            by_split.setdefault(task.split, []).extend(crops)
            dropped.setdefault(task.split, collections.Counter()).update(frame_dropped)
        with output_folder.staged_folder(config.out, "crops", sources=[config.cityscapes]) as staging:
            digests, manifest_splits = {}, {}
            for split in sorted(
                by_split, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s)
            ):
                crops = by_split[split]
                if not crops:
                    continue
                split_digests = _write_split(staging, split, crops, config.shards)
                digests.update(split_digests)
                manifest_splits[split] = _split_entry(staging, split_digests, crops, dropped[split])
            manifest = _manifest(config, manifest_splits, digests)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: crops per class %s", config.out, {s: e["class_counts"] for s, e in manifest_splits.items()})
    return manifest


def _split_entry(staging: Path, digests: dict[str, str], crops: list[_Crop], dropped) -> dict:
    return {
        "examples": len(crops),
        "shards": [tfrecord.scan_records(staging / name).records for name in sorted(digests)],
        "class_counts": schema.class_counts([crop.label for crop in crops]),
        "dropped": {reason: int(dropped.get(reason, 0)) for reason in DROP_REASONS},
    }


def _manifest(config: CropsConfig, manifest_splits: dict, digests: dict[str, str]) -> dict:
    if not manifest_splits:
        raise ValueError(
            f"{config.cityscapes}: no instance passed the filters, so there are no crops to write"
        )
    return {
        "kind": "crops",
        "height": config.size,
        "width": config.size,
        "classes": list(schema.CLASSES),
        "num_classes": schema.NUM_CLASSES,
        "splits": manifest_splits,
        "filters": {
            "margin": config.margin,
            "min_box": config.min_box,
            "min_pixels": config.min_pixels,
            "min_visible": config.min_visible,
        },
        "source": str(config.cityscapes),
        "content_hash": content_hash(digests),
    }
