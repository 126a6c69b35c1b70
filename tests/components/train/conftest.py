"""Tiny shard folders for the training tests: learnable street-like scenes in the shard schema."""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cityseg.components import tfrecord
from cityseg.components.labels import CATEGORY_NAMES, NUM_CLASSES, label_table_version
from cityseg.components.shard.core import content_hash

# Mean RGB per category; noise on top keeps it from being a lookup of single colours.
_COLORS = np.array(
    [
        [0, 0, 0],
        [128, 64, 128],
        [70, 70, 70],
        [220, 220, 0],
        [107, 142, 35],
        [70, 130, 180],
        [220, 20, 60],
        [0, 0, 142],
    ],
    dtype=np.float64,
)


def scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One RGB image and its category mask: sky, buildings, vegetation, road, objects, people, cars."""
    mask = np.full((height, width), 2, np.uint8)
    horizon = int(height * rng.uniform(0.3, 0.5))
    mask[:horizon] = 5
    mask[int(height * 0.65) :] = 1
    mask[int(height * 0.92) :] = 0
    x = int(rng.integers(0, width // 2))
    mask[horizon // 2 : int(height * 0.65), x : x + width // 4] = 4
    for category, (h_frac, w_frac) in ((7, (0.2, 0.2)), (6, (0.25, 0.05)), (3, (0.4, 0.03))):
        top = int(height * rng.uniform(0.45, 0.6))
        left = int(rng.integers(0, width - int(width * w_frac)))
        mask[top : top + int(height * h_frac), left : left + max(int(width * w_frac), 1)] = category
    image = _COLORS[mask] + rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_shards(out: Path, splits: dict[str, int], height: int, width: int, seed: int = 0) -> Path:
    """Write `{split}-00000-of-00001.tfrecord` per split and a manifest.json in the shard contract."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    manifest_splits, digests = {}, {}
    for split, count in splits.items():
        records, pixels = [], np.zeros(NUM_CLASSES, np.int64)
        for i in range(count):
            image, mask = scene(rng, height, width)
            pixels += np.bincount(mask.ravel(), minlength=NUM_CLASSES)
            image_png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
            mask_png = cv2.imencode(".png", mask)[1].tobytes()
            records.append(tfrecord.encode_example(image_png, mask_png, f"{split}_{i}", height, width))
        path = out / f"{split}-00000-of-00001.tfrecord"
        tfrecord.write_records(path, records)
        digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest_splits[split] = {"examples": count, "shards": [count], "category_pixels": pixels.tolist()}
    manifest = {
        "height": height,
        "width": width,
        "num_classes": NUM_CLASSES,
        "categories": list(CATEGORY_NAMES),
        "splits": manifest_splits,
        "source": "tests/components/train/conftest.py",
        "label_table_version": label_table_version(),
        "content_hash": content_hash(digests),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    """16 train and 8 select scenes at 32x64, and no val: training must never need it."""
    return write_shards(tmp_path_factory.mktemp("shards"), {"train": 16, "select": 8}, 32, 64)


@pytest.fixture(scope="session")
def long_shards(tmp_path_factory) -> Path:
    """64 train scenes: epochs long enough (a second or more) to kill a run between two of them."""
    return write_shards(tmp_path_factory.mktemp("long_shards"), {"train": 64, "select": 4}, 32, 64, seed=1)
