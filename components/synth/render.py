"""Turns a scene into the Cityscapes files of one frame: polygons json, labelIds, colour and photo.

The label image is rasterised by `cityscapesscripts`' own `createLabelImage` from the very json
text that is written, so `json2labelImg` on the file gives exactly the labelIds PNG. The photo is
painted per pixel from an instance map drawn with the same PIL polygon fill in the same order, so
every pixel's appearance comes from the object that owns its label.
"""

import functools
import json

import cv2
import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import labels as _LABELS
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image, ImageDraw

from cityseg.components.synth.scene import Scene, Shape

# Pixels of these labels show whatever lies beneath them in the photo: the out-of-roi frame is an
# annotation of the image border, not a thing in the street.
UNPAINTED = frozenset({"out of roi"})
GROUND = frozenset({"road", "sidewalk", "parking", "terrain"})


def label_colors() -> np.ndarray:
    """256x4 uint8 RGBA lookup from label id to the official Cityscapes colour (opaque)."""
    table = np.zeros((256, 4), np.uint8)
    table[:, 3] = 255
    for label in _LABELS:
        if label.id >= 0:
            table[label.id, :3] = label.color
    return table


_COLORS = label_colors()


def clip_polygon(polygon: np.ndarray, width: int, height: int) -> list[list[int]] | None:
    """Clip a float polygon to the image and round it to integer pixels; None when nothing is left."""
    points = [(float(x), float(y)) for x, y in polygon]
    inside = all(0 <= x <= width - 1 and 0 <= y <= height - 1 for x, y in points)
    if not inside:
        for axis, bound, keep_below in (
            (0, 0.0, False),
            (0, width - 1.0, True),
            (1, 0.0, False),
            (1, height - 1.0, True),
        ):
            points = _clip_edge(points, axis, bound, keep_below)
            if not points:
                return None
    rounded: list[list[int]] = []
    for x, y in points:
        p = [round(x), round(y)]
        if not rounded or rounded[-1] != p:
            rounded.append(p)
    while len(rounded) > 1 and rounded[0] == rounded[-1]:
        rounded.pop()
    if len({tuple(p) for p in rounded}) < 3:
        return None
    return rounded


def _clip_edge(points: list, axis: int, bound: float, keep_below: bool) -> list:
    """One Sutherland-Hodgman pass against the line `coordinate[axis] == bound`."""

    def inside(p):
        return p[axis] <= bound if keep_below else p[axis] >= bound

    out = []
    for i, current in enumerate(points):
        previous = points[i - 1]
        if inside(current):
            if not inside(previous):
                out.append(_crossing(previous, current, axis, bound))
            out.append(current)
        elif inside(previous):
            out.append(_crossing(previous, current, axis, bound))
    return out


def _crossing(a, b, axis: int, bound: float):
    t = (bound - a[axis]) / (b[axis] - a[axis])
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def annotate(scene: Scene, height: int, width: int) -> tuple[dict, list[Shape], list[list[list[int]]]]:
    """The official polygons json of a scene, plus the shapes kept in it and their integer polygons."""
    kept, polygons = [], []
    for shape in scene.shapes:
        polygon = clip_polygon(shape.polygon, width, height)
        if polygon is not None:
            kept.append(shape)
            polygons.append(polygon)
    document = {
        "imgHeight": height,
        "imgWidth": width,
        "objects": [{"label": s.label, "polygon": p} for s, p in zip(kept, polygons, strict=True)],
    }
    return document, kept, polygons


def label_ids(json_text: str) -> np.ndarray:
    """labelIds (HxW uint8) rendered by cityscapesscripts' createLabelImage from polygons json text."""
    annotation = Annotation()
    annotation.fromJsonText(json_text)
    return np.asarray(createLabelImage(annotation, "ids"), dtype=np.uint8)


def instance_ids(json_text: str) -> np.ndarray:
    """instanceIds (HxW uint16) rendered by cityscapesscripts' createInstanceImage from polygons json text.

    As in Cityscapes, a pixel of a thing is labelId * 1000 + the object's index among its label's
    objects, and any other pixel is its plain labelId.
    """
    annotation = Annotation()
    annotation.fromJsonText(json_text)
    return np.asarray(createInstanceImage(annotation, "ids"), dtype=np.uint16)


def color_image(labels: np.ndarray) -> np.ndarray:
    """The gtFine colour image (HxWx4 RGBA, as createLabelImage's "color" encoding gives it)."""
    return np.take(_COLORS, labels, axis=0)


def instance_map(polygons: list[list[list[int]]], height: int, width: int) -> np.ndarray:
    """HxW int32: 1 + index of the polygon that owns each pixel (0 where none does), drawn like the labels."""
    image = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(image)
    for i, polygon in enumerate(polygons):
        draw.polygon([tuple(p) for p in polygon], fill=i + 1)
    return np.asarray(image, dtype=np.int32)


def paint(scene: Scene, shapes: list[Shape], instances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The RGB photo (HxWx3 uint8): per-instance colour and texture, details, shadows, lighting, noise."""
    height, width = instances.shape
    # One row per instance (row 0: no instance): r, g, b, grain, mottle, gradient, receives shadows.
    table = np.zeros((len(shapes) + 1, 7), np.float32)
    for i, shape in enumerate(shapes, start=1):
        look = shape.look
        table[i] = (*look.color, look.grain, look.mottle, look.gradient, shape.label in GROUND)
    per_pixel = np.take(table, instances, axis=0)

    # Drawing fresh Gaussian noise for every pixel costs more than all the rest of the painting, so each
    # frame takes a window at a random offset from one fixed block of noise instead.
    dy, dx = rng.integers(0, _NOISE_MARGIN + 1, 2)
    noise = _noise_block(height, width)[dy : dy + height, dx : dx + width]
    fine = noise[..., 3]
    blotches = _smooth_noise(rng, height, width, 16) + 0.5 * _smooth_noise(rng, height, width, 5)
    rows = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    texture = 1.0 + per_pixel[..., 3] * fine + per_pixel[..., 4] * blotches + per_pixel[..., 5] * rows

    owner = np.zeros((height, width), np.int32)
    detail = np.zeros((height, width, 3), np.float32)
    limit = 4 * max(height, width)
    for i, shape in enumerate(shapes, start=1):
        for part in shape.details:
            points = _pixel_polygons(part.polygons, limit)
            if len(points):
                cv2.fillPoly(owner, points, i)
                cv2.fillPoly(detail, points, part.color)
    image = np.ascontiguousarray(per_pixel[..., :3])
    np.copyto(image, detail, where=(owner == instances)[..., None])

    light = scene.lighting
    shade = _vignette(height, width) * (texture * light.gain)
    if scene.shadows:
        shadows = np.ones((height, width), np.float32)
        for polygon, factor in scene.shadows:
            points = np.round(np.clip(polygon, -limit, limit)).astype(np.int32)
            cv2.fillPoly(shadows, [points], float(factor))
        # Shadows fall on the ground only; what stands there keeps its own shading.
        shade *= np.where(per_pixel[..., 6] > 0, shadows, np.float32(1))
    image *= shade[..., None]
    image *= np.asarray(light.tint, np.float32)
    image += noise[..., :3] * np.float32(light.noise)
    if light.blur:
        image = cv2.GaussianBlur(image, (3, 3), 0.7)
    return np.clip(image, 0, 255).astype(np.uint8)


def _pixel_polygons(polygons: tuple[np.ndarray, ...], limit: float):
    """Integer polygons for cv2.fillPoly, leaving out any with a vertex beyond +-limit pixels."""
    if len({len(p) for p in polygons}) == 1:  # windows, bars, wheels: one array for the lot
        stacked = np.stack(polygons)
        return np.round(stacked[np.abs(stacked).max(axis=(1, 2)) < limit]).astype(np.int32)
    return [np.round(p).astype(np.int32) for p in polygons if np.abs(p).max() < limit]


_NOISE_MARGIN = 32


@functools.cache
def _noise_block(height: int, width: int) -> np.ndarray:
    """Unit Gaussian noise, 4 channels, a margin larger than the image; the same in every process."""
    shape = (height + _NOISE_MARGIN, width + _NOISE_MARGIN, 4)
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


@functools.cache
def _vignette(height: int, width: int) -> np.ndarray:
    """Brightness falling off by 12% towards the corners, as through a real lens."""
    yy, xx = np.ogrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]
    return (1.0 - 0.12 * (xx**2 + yy**2)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Zero-mean noise varying over about 1/cells of the image height."""
    small = rng.standard_normal((cells + 1, 2 * cells + 1)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def render(
    scene: Scene, height: int, width: int, rng: np.random.Generator
) -> tuple[dict[str, bytes], np.ndarray]:
    """One frame's files (PNGs "image", "labelIds", "instanceIds", "color"; json "polygons") and labelIds."""
    document, shapes, polygons = annotate(scene, height, width)
    text = json.dumps(document)
    labels = label_ids(text)
    painted = [(s, p) for s, p in zip(shapes, polygons, strict=True) if s.label not in UNPAINTED]
    instances = instance_map([p for _, p in painted], height, width)
    photo = paint(scene, [s for s, _ in painted], instances, rng)
    files = {
        "image": _png(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)),
        "labelIds": _png(labels),
        "instanceIds": _png(instance_ids(text)),
        "color": _png(cv2.cvtColor(color_image(labels), cv2.COLOR_RGBA2BGRA)),
        "polygons": text.encode(),
    }
    return files, labels


def _png(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for an array of shape {array.shape}")
    return encoded.tobytes()
