"""Object instances of one frame: their ids, polygons, visible share, box, and the square crop around them.

Instance ids are those of Cityscapes' `gtFine_instanceIds.png` (labelId * 1000 + index). The
polygon of an id is found the way `cityscapesscripts`' json2instanceImg numbers them: objects in
file order, deleted ones and groups (`cargroup`) skipped, counted per label. An instance's visible
share is its pixels in the instance image over the pixels its polygon covers when drawn alone,
drawn with the same PIL fill, so an unoccluded object scores 1.
"""

import dataclasses

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import name2label
from PIL import Image, ImageDraw

from cityseg.components.crops.config import CropsConfig
from cityseg.components.crops.schema import CLASSES

# Cityscapes label id -> class index, for the classes the object pipeline predicts.
CLASS_OF_LABEL = {name2label[name].id: index for index, name in enumerate(CLASSES)}


@dataclasses.dataclass(frozen=True)
class Instance:
    """One object: id, class index, visible box (x0, y0, x1, y1 inclusive), pixels and visible share."""

    instance_id: int
    label: int
    box: tuple[int, int, int, int]
    pixels: int
    visible: float


def polygons_by_instance(document: dict, where: str) -> dict[int, list[tuple[float, float]]]:
    """Instance id -> polygon, numbered as json2instanceImg numbers the objects of a polygons file.

    Raises:
        ValueError: naming `where`, for a document without objects or an object with an unknown label.
    """
    if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
        raise ValueError(f"{where}: not a Cityscapes polygons file (no 'objects' list)")
    counts: dict[str, int] = {}
    found = {}
    for obj in document["objects"]:
        if obj.get("deleted"):
            continue
        label = obj.get("label")
        group = label not in name2label and str(label).endswith("group")
        name = label[: -len("group")] if group else label
        if name not in name2label:
            raise ValueError(f"{where}: unknown label {label!r}")
        entry = name2label[name]
        if entry.hasInstances and not group and entry.id >= 0:
            found[entry.id * 1000 + counts.get(name, 0)] = [tuple(p) for p in obj["polygon"]]
            counts[name] = counts.get(name, 0) + 1
    return found


def polygon_pixels(polygon: list[tuple[float, float]]) -> int:
    """Pixels the polygon covers when PIL fills it alone, as json2instanceImg draws it."""
    points = np.asarray(polygon, float)
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    canvas = Image.new("L", (x1 - x0 + 1, y1 - y0 + 1), 0)
    ImageDraw.Draw(canvas).polygon([(x - x0, y - y0) for x, y in points], fill=1)
    return int(np.asarray(canvas).sum())


def find_instances(ids: np.ndarray, document: dict, where: str) -> list[Instance]:
    """The instances of the object classes in an instance image, with their boxes and visible shares.

    Raises:
        ValueError: naming `where`, when an instance id of the image has no polygon in the document.
    """
    polygons = polygons_by_instance(document, where)
    values, inverse, pixels = np.unique(ids.ravel(), return_inverse=True, return_counts=True)
    inverse = inverse.reshape(ids.shape)
    found = []
    for index, value in enumerate(values.tolist()):
        if value < 1000 or value // 1000 not in CLASS_OF_LABEL:
            continue
        if value not in polygons:
            raise ValueError(f"{where}: instance {value} has no polygon in the polygons file")
        rows, cols = np.nonzero(inverse == index)
        full = max(polygon_pixels(polygons[value]), 1)
        found.append(
            Instance(
                instance_id=value,
                label=CLASS_OF_LABEL[value // 1000],
                box=(int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())),
                pixels=int(pixels[index]),
                visible=min(1.0, float(pixels[index]) / full),
            )
        )
    return found


def drop_reason(instance: Instance, config: CropsConfig) -> str | None:
    """Why the filters drop an instance ("small_box", "few_pixels", "occluded"), or None to keep it."""
    x0, y0, x1, y1 = instance.box
    if max(x1 - x0 + 1, y1 - y0 + 1) < config.min_box:
        return "small_box"
    if instance.pixels < config.min_pixels:
        return "few_pixels"
    if instance.visible < config.min_visible:
        return "occluded"
    return None


def square_crop(image: np.ndarray, box: tuple[int, int, int, int], margin: float, size: int) -> np.ndarray:
    """The square around `box` (its longer side plus `margin` of it on each side) resized to size x size.

    Where the square reaches past the image it is filled with black, so an object at the border
    keeps its place and scale in the crop.
    """
    x0, y0, x1, y1 = box
    side = int(np.ceil(max(x1 - x0 + 1, y1 - y0 + 1) * (1 + 2 * margin)))
    left = round((x0 + x1 + 1) / 2 - side / 2)
    top = round((y0 + y1 + 1) / 2 - side / 2)
    height, width = image.shape[:2]
    window = np.zeros((side, side, *image.shape[2:]), image.dtype)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, width), min(top + side, height)
    window[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = image[sy0:sy1, sx0:sx1]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(window, (size, size), interpolation=interpolation)
