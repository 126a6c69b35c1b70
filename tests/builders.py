"""Small builders of Cityscapes-layout folders, zips and shards for the data tests."""

import dataclasses
import zipfile
from pathlib import Path

import cv2
import numpy as np

from cityseg.components import cityscapes, labels
from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from cityseg.components.shard.config import ShardConfig
from cityseg.components.shard.core import write_shards

# Category c is drawn in the RGB corner of the unit cube whose bits are c: no blend of two or more
# corners is a corner, so a pixel that still has a corner colour after interpolation was sampled
# from one category only, and the mask must say that category there.
PALETTE = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=np.uint8) * 255

# Cities by split, as in Cityscapes: no city in two splits.
SPLIT_CITIES = {"train": ("aachen", "bochum"), "val": ("frankfurt",), "test": ("berlin",)}


def stem(city: str, frame: int) -> str:
    return f"{city}_000000_{frame:06d}"


def image_path(root: Path, split: str, city: str, frame: int) -> Path:
    return root / "leftImg8bit" / split / city / f"{stem(city, frame)}{cityscapes.IMAGE_SUFFIX}"


def label_path(root: Path, split: str, city: str, frame: int) -> Path:
    return root / "gtFine" / split / city / f"{stem(city, frame)}{cityscapes.LABEL_SUFFIX}"


def label_ids(height: int, width: int, seed: int) -> np.ndarray:
    """Blocks of random label ids 0..33, with every id present in the first row."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 34, size=(height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    ids = np.kron(blocks, np.ones((8, 8), np.uint8))[:height, :width]
    ids[0, :34] = np.arange(34, dtype=np.uint8)
    return ids


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", array)
    assert ok
    path.write_bytes(data.tobytes())


def write_cityscapes(
    root: Path, height: int = 32, width: int = 64, frames_per_city: int = 2, palette_images: bool = False
) -> Path:
    """A Cityscapes root with block label ids, every split and every id present.

    Images are noisy grey levels of the ids, or with `palette_images` the PALETTE colour of each
    pixel's category.
    """
    seed = 0
    for split, cities in SPLIT_CITIES.items():
        for city in cities:
            for frame in range(frames_per_city):
                seed += 1
                ids = label_ids(height, width, seed)
                if palette_images:
                    image = PALETTE[labels.category_lut()[ids]][..., ::-1]  # OpenCV writes BGR
                else:
                    noise = np.random.default_rng(seed).integers(0, 40, (height, width, 3), dtype=np.uint8)
                    image = (ids[..., None] * 7 + noise).astype(np.uint8)
                write_png(image_path(root, split, city, frame), image)
                write_png(label_path(root, split, city, frame), ids)
    return root


def zip_cityscapes(root: Path, zip_dir: Path) -> Path:
    """The two official zips of a Cityscapes root, members named as in the real downloads."""
    zip_dir.mkdir(parents=True, exist_ok=True)
    for zip_name, top in ((cityscapes.IMAGE_ZIP, "leftImg8bit"), (cityscapes.LABEL_ZIP, "gtFine")):
        with zipfile.ZipFile(zip_dir / zip_name, "w") as archive:
            archive.writestr("README", "Cityscapes")
            for path in sorted((root / top).rglob("*.png")):
                archive.write(path, path.relative_to(root).as_posix())
    return zip_dir


def write_shard_folder(root: Path, height: int = 32, width: int = 64, shards: int = 2, **source) -> Path:
    """Cityscapes source -> remap -> shards, all below `root`; returns the shard folder."""
    src = write_cityscapes(root / "cityscapes", **source)
    remap(RemapConfig(cityscapes=src, out=root / "categories", workers=1))
    config = ShardConfig(src, root / "categories", root / "shards", shards=shards, height=height, width=width)
    write_shards(dataclasses.replace(config, workers=1))
    return root / "shards"
