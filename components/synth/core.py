"""Synthetic Cityscapes: a folder in the official layout, with street scenes drawn as polygons.

Cities are split the way Cityscapes splits them, whole cities per split, under the real city names
of that split. With N cities, val gets round(N/9) and test round(2N/9) (Cityscapes' 3 and 6 of
27), each at least one, and train the rest, so most frames go to training.

Every frame draws from its own random stream, seeded by (seed, city, frame): the output is
byte-identical for a seed whatever the number of workers.
"""

import concurrent.futures
import contextlib
import functools
import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cityseg.components import labels, output_folder, storage
from cityseg.components.synth.config import ALL_CITIES, CITIES, MAX_CITIES, MIN_CITIES, SPLITS, SynthConfig
from cityseg.components.synth.render import render
from cityseg.components.synth.scene import build_scene, city_style
from cityseg.components.synth.things import add_rare_things

logger = logging.getLogger(__name__)

# Cityscapes names the annotated frame of each 30-frame snippet 000019.
ANNOTATED_FRAME = 19
SUFFIXES = {
    "image": "_leftImg8bit.png",
    "labelIds": "_gtFine_labelIds.png",
    "instanceIds": "_gtFine_instanceIds.png",
    "color": "_gtFine_color.png",
    "polygons": "_gtFine_polygons.json",
}


def split_cities(count: int) -> dict[str, tuple[str, ...]]:
    """City names per split: val round(N/9) and test round(2N/9) cities, each at least 1; train the rest."""
    if not MIN_CITIES <= count <= MAX_CITIES:
        raise ValueError(f"cities={count}: must be {MIN_CITIES}..{MAX_CITIES}")
    val = max(1, round(count * len(CITIES["val"]) / MAX_CITIES))
    test = max(1, round(count * len(CITIES["test"]) / MAX_CITIES))
    sizes = {"train": count - val - test, "val": val, "test": test}
    return {split: CITIES[split][: sizes[split]] for split in SPLITS}


def frame_stem(city: str, sequence: int) -> str:
    """The Cityscapes stem of a frame: `{city}_{seq:06d}_{frame:06d}`."""
    return f"{city}_{sequence:06d}_{ANNOTATED_FRAME:06d}"


def frame_paths(root: str | os.PathLike, split: str, city: str, sequence: int) -> dict[str, str]:
    """The four files of one frame below a Cityscapes root, keyed like SUFFIXES."""
    stem = frame_stem(city, sequence)
    return {
        kind: storage.join(root, "leftImg8bit" if kind == "image" else "gtFine", split, city, stem + suffix)
        for kind, suffix in SUFFIXES.items()
    }


def render_frame(
    seed: int, city: str, sequence: int, height: int, width: int, objects: bool = False
) -> tuple[dict[str, bytes], np.ndarray]:
    """The encoded files of one frame and its labelIds image, a pure function of its arguments.

    `objects` draws each thing as one polygon and adds the rarer things (see `SynthConfig.objects`).
    """
    city_index = ALL_CITIES.index(city)
    style = city_style(np.random.default_rng([seed, 0, city_index]))
    rng = np.random.default_rng([seed, 1, city_index, sequence])
    scene = build_scene(
        rng, style, height, width, whole_things=objects, extra=add_rare_things if objects else None
    )
    return render(scene, height, width, rng)


def _write_frame(task: tuple) -> np.ndarray:
    """Render and write one frame; returns its pixel count per label id (34 ints)."""
    root, split, city, sequence, seed, height, width, objects = task
    files, label_ids = render_frame(seed, city, sequence, height, width, objects)
    paths = frame_paths(root, split, city, sequence)
    for kind, data in files.items():
        Path(paths[kind]).write_bytes(data)
    return np.bincount(label_ids.ravel(), minlength=labels.NUM_LABEL_IDS)


def generate(config: SynthConfig) -> dict:
    """Write a synthetic Cityscapes folder at config.out (replacing an earlier one) and summarise it.

    Returns:
        {"out", "height", "width", "seed", "frames", "splits": {split: {"cities", "frames"}},
         "category_share": {category: fraction of all pixels}}.

    Raises:
        ValueError: a config field is out of range.
        OutputFolderError: `out` holds files that an earlier synth did not write (a real Cityscapes
            download, say); it is never touched then (see `cityseg.components.output_folder`).
    """
    config.validate()
    cities = split_cities(config.cities)
    with output_folder.staged_folder(config.out, "synth") as staging:
        tasks = []
        for split in SPLITS:
            for city in cities[split]:
                for kind in ("leftImg8bit", "gtFine"):
                    Path(staging, kind, split, city).mkdir(parents=True)
                tasks.extend(
                    (
                        str(staging),
                        split,
                        city,
                        sequence,
                        config.seed,
                        config.height,
                        config.width,
                        config.objects,
                    )
                    for sequence in range(config.frames_per_city)
                )
        pixels = np.zeros(labels.NUM_LABEL_IDS, np.int64)
        with contextlib.ExitStack() as stack:
            mapper = map
            if config.workers > 1:
                pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(config.workers))
                mapper = functools.partial(pool.map, chunksize=4)
            for counts in tqdm(mapper(_write_frame, tasks), total=len(tasks), desc="synth", unit="frame"):
                pixels += counts
    category_pixels = np.bincount(
        labels.category_lut()[: labels.NUM_LABEL_IDS], weights=pixels, minlength=labels.NUM_CLASSES
    )
    summary = {
        "out": str(config.out),
        "height": config.height,
        "width": config.width,
        "seed": config.seed,
        "frames": len(tasks),
        "splits": {
            split: {"cities": list(cities[split]), "frames": len(cities[split]) * config.frames_per_city}
            for split in SPLITS
        },
        "category_share": {
            name: round(float(category_pixels[i] / pixels.sum()), 4)
            for i, name in enumerate(labels.CATEGORY_NAMES)
        },
    }
    logger.info("wrote %d frames to %s", len(tasks), config.out)
    return summary
