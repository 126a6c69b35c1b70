"""Remap Cityscapes label ids (0..33) to the 8 cityseg categories, one PNG per frame."""

import dataclasses
import logging

import cv2
import numpy as np

from cityseg.components import cityscapes, labels, output_folder, parallel, storage
from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.summary import CategoryPixels

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RemapTask:
    """One label file of a source, and the category mask file (local or gs://) to write for it."""

    source: cityscapes.Source
    label: str
    out_file: str


def category_mask_name(split: str, city: str, stem: str) -> str:
    """Path of a frame's category mask relative to the remap output folder."""
    return f"{split}/{city}/{stem}{cityscapes.CATEGORY_SUFFIX}"


def remap_label_ids(label_ids: np.ndarray, where: str, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label-id mask -> (category-id mask, pixels per category).

    Raises:
        ValueError: naming `where`, when the mask holds ids outside 0..33.
    """
    # One histogram serves both the range check and the category pixel counts, so the frame's
    # pixels are touched only by it and by the LUT.
    histogram = cv2.calcHist([label_ids], [0], None, [256], [0, 256]).reshape(-1).astype(np.int64)
    bad = np.flatnonzero(histogram[labels.NUM_LABEL_IDS :]) + labels.NUM_LABEL_IDS
    if bad.size:
        raise ValueError(
            f"{where}: label ids must be 0..{labels.NUM_LABEL_IDS - 1}, found {', '.join(map(str, bad[:10]))}"
        )
    counts = np.bincount(
        lut[: labels.NUM_LABEL_IDS], weights=histogram[: labels.NUM_LABEL_IDS], minlength=labels.NUM_CLASSES
    ).astype(np.int64)
    return cv2.LUT(label_ids, lut), counts


def remap_frame(task: RemapTask) -> np.ndarray:
    """Read, check and remap one label file, write its category mask; returns pixels per category."""
    where = task.source.where(task.label)
    label_ids = cityscapes.decode_mask(task.source.read(task.label), where)
    categories, counts = remap_label_ids(label_ids, where, labels.category_lut())
    ok, png = cv2.imencode(".png", categories, cityscapes.MASK_PNG_PARAMS)
    if not ok:
        raise ValueError(f"{where}: OpenCV could not encode the category mask")
    storage.write_bytes(task.out_file, png.tobytes())
    return counts


def remap(config: RemapConfig) -> dict:
    """Write `out/{split}/{city}/{stem}_gtFine_categoryIds.png` for every frame of the source.

    Every label is checked while it is remapped; the output folder appears only when all frames
    succeed.

    Returns:
        Summary: source, out, frames per split, pixels per category per split, pixel share per category.

    Raises:
        ValueError: naming the file, for bad or missing input (see `cityscapes.find_frames` and
            `cityscapes.decode_mask`), or ids outside 0..33.
        OutputFolderError: `out` is, holds or lies inside the source, or holds files that an
            earlier remap did not write (see `cityseg.components.output_folder`); nothing is touched.
    """
    parallel.check_reachable(config.runner, cityscapes=config.cityscapes)
    with cityscapes.open_source(config.cityscapes) as source:
        if source.zip_dir is not None and config.runner.runner == "dataflow":
            raise ValueError(
                f"{config.cityscapes}: Dataflow's workers read unpacked gs:// folders, not the zips "
                "(which are read on this machine); unpack them to a gs:// folder"
            )
        frames = cityscapes.find_frames(source)
        log.info("%s: %d frames", source.location, len(frames))
        with (
            output_folder.staged_folder(config.out, "remap", sources=[config.cityscapes]) as staging,
            parallel.output_root(config.runner, staging, "remap") as root,
        ):
            tasks = [
                RemapTask(
                    source,
                    frame.label,
                    storage.join(root, category_mask_name(frame.split, frame.city, frame.stem)),
                )
                for frame in frames
            ]
            summary = parallel.map_combine(
                remap_frame,
                tasks,
                CategoryPixels(),
                workers=config.workers,
                runner=config.runner,
                desc="remap",
            )
    return {"source": str(config.cityscapes), "out": str(config.out), **summary}
