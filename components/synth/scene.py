"""Street scenes as an ordered list of labelled polygons, seen through a pinhole camera.

The world is a straight street: the camera rides in a lane at `Camera.height` metres, X points
right, Y up and Z forward. Everything is laid out in metres and projected, so the geometry a model
must learn (sky on top, road converging to the vanishing point, facades along the sides, things
standing on the ground and shrinking with depth) stays consistent while sizes, counts, palettes and
lighting vary per city and frame. Shapes are listed in drawing order, later over earlier, the way
Cityscapes polygon files are drawn.
"""

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np

RGB = tuple[float, float, float]
Span = tuple[float, float]  # (low, high) along one world axis, metres


@dataclasses.dataclass(frozen=True)
class Look:
    """How a shape's pixels are painted: base colour plus per-instance texture strengths."""

    color: RGB
    grain: float = 0.04  # pixel noise, as a fraction of the colour
    mottle: float = 0.05  # low-frequency blotches, as a fraction of the colour
    gradient: float = 0.0  # brightness change from the top of the image to the bottom


@dataclasses.dataclass(frozen=True)
class Detail:
    """Polygons painted onto the pixels their shape keeps visible (windows, wheels, lane marks)."""

    polygons: tuple[np.ndarray, ...]
    color: RGB


@dataclasses.dataclass(frozen=True)
class Shape:
    """One annotated object: a Cityscapes label name, its polygon in pixels, and its appearance."""

    label: str
    polygon: np.ndarray
    look: Look
    details: tuple[Detail, ...] = ()


@dataclasses.dataclass(frozen=True)
class Lighting:
    """Per-frame photometry applied after painting."""

    gain: float
    tint: RGB
    noise: float
    blur: bool


@dataclasses.dataclass(frozen=True)
class Scene:
    """A frame: shapes in drawing order, ground shadows (polygon, brightness factor) and lighting."""

    shapes: list[Shape]
    shadows: list[tuple[np.ndarray, float]]
    lighting: Lighting


@dataclasses.dataclass(frozen=True)
class CityStyle:
    """What stays constant within a city: its palettes' leanings and its ego-vehicle hood."""

    building_tint: RGB
    greenery: float
    hood: float
    hood_color: RGB
    sidewalk_color: RGB
    cloudiness: float


@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole camera looking down the street; `project` maps world metres to pixel coordinates."""

    height_px: int
    width_px: int
    focal: float
    center_x: float
    horizon: float
    height: float

    def project(self, x, y, z) -> np.ndarray:
        """World points (X right, Y up, Z forward, metres; broadcastable) -> (..., 2) pixel x, y."""
        z = np.asarray(z, float)
        px = self.center_x + self.focal * np.asarray(x, float) / z
        py = self.horizon + self.focal * (self.height - np.asarray(y, float)) / z
        out = np.empty((*np.broadcast_shapes(px.shape, py.shape), 2))
        out[..., 0], out[..., 1] = px, py
        return out


def city_style(rng: np.random.Generator) -> CityStyle:
    """Draw the leanings shared by all frames of one city."""
    return CityStyle(
        building_tint=tuple(rng.uniform(0.9, 1.1, 3)),
        greenery=float(rng.uniform(0.3, 0.9)),
        hood=float(rng.uniform(0.07, 0.13)),
        hood_color=_pick(rng, [(40, 42, 48), (150, 152, 158), (25, 25, 28), (90, 80, 70)]),
        sidewalk_color=_pick(rng, [(150, 148, 142), (160, 120, 105), (175, 170, 155), (120, 120, 122)]),
        cloudiness=float(rng.uniform(0.0, 1.0)),
    )


def _pick(rng: np.random.Generator, options) -> RGB:
    return tuple(float(c) for c in options[int(rng.integers(len(options)))])


def _jitter(rng: np.random.Generator, color, spread: float = 18.0, scale: tuple = (0.85, 1.15)) -> RGB:
    """A colour varied per instance: overall brightness and per-channel offsets."""
    c = np.asarray(color, float) * rng.uniform(*scale) + rng.normal(0.0, spread / 3, 3)
    return tuple(float(v) for v in np.clip(c, 0, 255))


# Palettes overlap on purpose (grey road, grey facades, grey cars, overcast sky; green trees, grass
# and cars; dark poles, jackets and cars) so that colour alone cannot separate the categories. The
# overlap stops short of identity (facades are never the darkest grey, jackets never foliage green)
# to keep a small model able to learn the scenes in minutes.
GREYS = [(70, 70, 72), (100, 100, 102), (128, 128, 128), (160, 160, 158), (190, 190, 188), (215, 215, 212)]
BUILDING = [*GREYS[1:], (205, 185, 150), (150, 82, 62), (225, 215, 190), (185, 160, 130), (170, 180, 190)]
VEGETATION = [(55, 95, 40), (75, 110, 50), (40, 70, 35), (105, 120, 60), (140, 115, 55), (85, 100, 70)]
TERRAIN = [(95, 125, 55), (120, 130, 70), (150, 135, 95), (110, 95, 70), (80, 110, 60)]
CLOTHES = [
    *GREYS[:4],
    (30, 30, 35),
    (40, 60, 120),
    (120, 30, 35),
    (90, 45, 110),
    (215, 195, 60),
    (200, 60, 50),
]
CARS = [*GREYS, (20, 20, 22), (235, 235, 235), (140, 30, 30), (40, 60, 120), (50, 80, 55), (170, 150, 110)]
HEAVY = [(230, 230, 225), (200, 200, 195), (200, 170, 40), (170, 40, 35), (50, 80, 140), (70, 120, 70)]
SKIN = [(225, 185, 160), (190, 140, 110), (120, 85, 60), (90, 60, 45)]

PERSON = np.array(
    [
        (-0.20, 0.00), (-0.07, 0.00), (0.00, 0.38), (0.07, 0.00), (0.20, 0.00), (0.13, 0.47), (0.23, 0.45),
        (0.22, 0.78), (0.07, 0.84), (0.09, 0.93), (0.00, 1.00), (-0.09, 0.93), (-0.07, 0.84), (-0.22, 0.78),
        (-0.23, 0.45), (-0.13, 0.47),
    ]
)  # fmt: skip
LEGS = np.array(
    [(-0.20, 0.00), (-0.07, 0.00), (0.00, 0.38), (0.07, 0.00), (0.20, 0.00), (0.13, 0.48), (-0.13, 0.48)]
)
HEAD = np.array([(0.07, 0.86), (0.09, 0.93), (0.00, 1.00), (-0.09, 0.93), (-0.07, 0.86)])


def _box(cam: Camera, x: Span, y: Span, z: Span) -> np.ndarray:
    """The outline of an axis-aligned world box (x, y, z spans) seen by the camera: its corners' hull."""
    xs, ys, zs = np.meshgrid(x, y, z, indexing="ij")
    return _hull(cam.project(xs.ravel(), ys.ravel(), zs.ravel()))


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of 2-D points."""
    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(float)


def _face(cam: Camera, x: Span, y: Span, z: float) -> np.ndarray:
    """A rectangle facing the camera at depth z."""
    (x0, x1), (y0, y1) = x, y
    return cam.project([x0, x1, x1, x0], [y0, y0, y1, y1], z)


def _wall(cam: Camera, x: float, y: Span, z: Span) -> np.ndarray:
    """A vertical rectangle along the street (constant X) over a span of depths."""
    (y0, y1), (z0, z1) = y, z
    return cam.project(x, [y0, y0, y1, y1], [z0, z1, z1, z0])


def _strip(cam: Camera, x0, x1, z0, z1) -> np.ndarray:
    """A ground rectangle between lateral offsets x0..x1 and depths z0..z1."""
    return cam.project([x0, x1, x1, x0], 0.0, [z0, z0, z1, z1])


# The Cityscapes classes whose objects are instances; `whole_things` draws each as one polygon.
THINGS = frozenset({"person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"})


class _Builder:
    """Accumulates the shapes of one frame; near props are sorted after far ones."""

    def __init__(self, rng: np.random.Generator, cam: Camera, style: CityStyle, whole_things: bool = False):
        self.rng, self.cam, self.style = rng, cam, style
        self.whole_things = whole_things
        self.base: list[Shape] = []
        self.props: list[tuple[float, list[Shape]]] = []
        self.shadows: list[tuple[np.ndarray, float]] = []

    def prop(self, z: float, shapes: list[Shape]) -> None:
        self.props.append((z, _merge_things(shapes) if self.whole_things else shapes))

    def shapes(self) -> list[Shape]:
        ordered = [s for _, group in sorted(self.props, key=lambda p: -p[0]) for s in group]
        return self.base + ordered


def _merge_things(shapes: list[Shape]) -> list[Shape]:
    """Runs of parts with one thing label (a car's body and cabin, a bicycle's wheels and frame) as one shape.

    Cityscapes annotates each object as one polygon, and its instance image numbers polygons, so a
    thing drawn in parts would count as several objects. The merged shape's outline is the parts'
    hull; the parts are painted onto it as details, over a dark fill that stands for what shows
    through a bicycle's frame.
    """
    merged: list[Shape] = []
    run: list[Shape] = []
    for shape in [*shapes, None]:
        if run and (shape is None or shape.label != run[0].label or shape.label not in THINGS):
            if len(run) == 1:
                merged.append(run[0])
            else:
                parts = tuple(Detail((part.polygon,), part.look.color) for part in run)
                details = parts + tuple(d for part in run for d in part.details)
                fill = Look(tuple(0.35 * c for c in run[0].look.color), 0.05, 0.05)
                hull = _hull(np.concatenate([part.polygon for part in run]))
                merged.append(Shape(run[0].label, hull, fill, details))
            run = []
        if shape is not None:
            run.append(shape)
    return merged


# A hook that adds shapes to a scene after the street's own objects: (builder, street) -> None.
Extra = Callable[["_Builder", "_Street"], None]


def build_scene(
    rng: np.random.Generator,
    style: CityStyle,
    height: int,
    width: int,
    *,
    whole_things: bool = False,
    extra: Extra | None = None,
) -> Scene:
    """Lay out one street scene for an image of height x width pixels.

    Args:
        whole_things: draw each thing (car, bicycle, ...) as one polygon, one Cityscapes instance.
        extra: adds shapes after the street's own; it draws from `rng` after them, so the frame
            without it is unchanged.
    """
    cam = Camera(
        height_px=height,
        width_px=width,
        focal=width * rng.uniform(0.8, 1.0),
        center_x=width * rng.uniform(0.42, 0.58),
        horizon=height * rng.uniform(0.36, 0.46),
        height=rng.uniform(1.2, 1.5),
    )
    b = _Builder(rng, cam, style, whole_things)
    street = _street_layout(rng)
    _sky(b)
    _far_skyline(b)
    _ground(b, street)
    for side in (-1, 1):
        _frontage(b, street, side)
    _furniture(b, street)
    _traffic(b, street)
    _pedestrians(b, street)
    if extra is not None:
        extra(b, street)
    shapes = b.shapes() + _ego_and_border(b)
    lighting = Lighting(
        gain=float(rng.uniform(0.75, 1.15)),
        tint=tuple(float(t) for t in rng.uniform(0.92, 1.08, 3)),
        noise=float(rng.uniform(1.0, 4.0)),
        blur=bool(rng.random() < 0.3),
    )
    return Scene(shapes=shapes, shadows=b.shadows, lighting=lighting)


@dataclasses.dataclass(frozen=True)
class _Street:
    """Lateral layout in metres: road edges and, per side (-1 left, +1 right), the strips beyond them."""

    road_left: float
    road_right: float
    lanes: tuple[float, ...]
    sides: dict

    def edge(self, side: int) -> float:
        return self.road_right if side > 0 else self.road_left


def _street_layout(rng: np.random.Generator) -> _Street:
    lane = rng.uniform(3.0, 3.6)
    n_left, n_right = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    # The camera drives in the rightmost of the left-hand lanes, not always at its centre.
    road_left = -(n_left - 0.5) * lane + rng.uniform(-0.3, 0.3) * lane
    road_right = road_left + (n_left + n_right) * lane
    lanes = tuple(road_left + lane * (i + 0.5) for i in range(n_left + n_right))
    sides = {}
    for side in (-1, 1):
        parking = rng.uniform(2.2, 2.6) if rng.random() < 0.55 else 0.0
        verge = rng.uniform(1.0, 2.5) if rng.random() < 0.45 else 0.0
        sidewalk = rng.uniform(2.0, 4.5)
        yard = rng.uniform(1.5, 4.0) if rng.random() < 0.3 else 0.0
        sides[side] = {"parking": parking, "verge": verge, "sidewalk": sidewalk, "yard": yard}
    return _Street(road_left, road_right, lanes, sides)


def _strips(street: _Street, side: int) -> list[tuple[str, float, float]]:
    """(label, inner |X|, outer |X|) of the ground strips on one side, from the curb outwards."""
    at = side * street.edge(side)
    out = []
    for key, label in (
        ("parking", "parking"),
        ("verge", "terrain"),
        ("sidewalk", "sidewalk"),
        ("yard", "terrain"),
    ):
        w = street.sides[side][key]
        if w > 0:
            out.append((label, at, at + w))
            at += w
    return out


def _building_line(street: _Street, side: int) -> float:
    return side * _strips(street, side)[-1][2]


def _sky(b: _Builder) -> None:
    cam, rng = b.cam, b.rng
    overcast = rng.random() < b.style.cloudiness
    # The sky is the light source: overcast skies are the brightest greys in the frame.
    color = _pick(
        rng,
        [(205, 208, 212), (222, 224, 226), (190, 195, 205)]
        if overcast
        else [(120, 165, 225), (140, 180, 230), (170, 200, 235)],
    )
    look = Look(
        _jitter(rng, color, 10, (0.9, 1.1)), grain=0.01, mottle=0.05 if overcast else 0.02, gradient=0.25
    )
    poly = np.array([(0, 0), (cam.width_px, 0), (cam.width_px, cam.horizon + 2), (0, cam.horizon + 2)], float)
    b.base.append(Shape("sky", poly, look))


def _far_skyline(b: _Builder) -> None:
    """Distant blocks and tree lines across the end of the street."""
    cam, rng = b.cam, b.rng
    z = rng.uniform(120, 250)
    half = z * cam.width_px / cam.focal
    x = -half - 5
    while x < half + 5:
        w = rng.uniform(8, 30)
        if rng.random() < 0.3:
            label, look = "vegetation", _vegetation_look(b)
            top = rng.uniform(8, 16)
        else:
            label, look = "building", _building_look(b, haze=0.12)
            top = rng.uniform(10, 35)
        details = ()
        if label == "building":
            dark = _jitter(rng, (55, 60, 70), 12)
            details = (Detail(_face_windows(cam, rng, (x, x + w), top, z), dark),)
        b.base.append(Shape(label, _face(cam, (x, x + w), (0, top), z), look, details))
        x += w


def _building_look(b: _Builder, haze: float = 0.0) -> Look:
    color = np.asarray(_jitter(b.rng, _pick(b.rng, BUILDING), 14)) * np.asarray(b.style.building_tint)
    color = color * (1 - haze) + np.array([185.0, 190, 198]) * haze
    return Look(tuple(np.clip(color, 0, 255)), grain=0.03, mottle=0.05, gradient=0.1)


def _vegetation_look(b: _Builder) -> Look:
    return Look(_jitter(b.rng, _pick(b.rng, VEGETATION), 20), grain=0.14, mottle=0.14)


def _ground(b: _Builder, street: _Street) -> None:
    cam, rng = b.cam, b.rng
    near, far = 0.3, 2000.0
    asphalt = _jitter(rng, _pick(rng, GREYS[:4]), 10)
    marks = []
    paint = _jitter(rng, (225, 225, 215), 10)
    for x in street.lanes[:-1]:
        boundary = x + (street.lanes[1] - street.lanes[0]) / 2
        z0 = rng.uniform(1, 6)
        while z0 < 90:
            marks.append(_strip(cam, boundary - 0.08, boundary + 0.08, z0, z0 + 3))
            z0 += 9
    if rng.random() < 0.3:
        z0 = rng.uniform(8, 25)
        for x in np.arange(street.road_left + 0.3, street.road_right - 0.3, 1.0):
            marks.append(_strip(cam, x, x + 0.5, z0, z0 + 3.5))
    road = Shape(
        "road",
        _strip(cam, street.road_left, street.road_right, near, far),
        Look(asphalt, grain=0.06, mottle=0.07),
        (Detail(tuple(marks), paint),) if marks else (),
    )
    b.base.append(road)
    for side in (-1, 1):
        for label, x0, x1 in _strips(street, side):
            xs = sorted((side * x0, side * x1))
            if label == "sidewalk":
                look = Look(_jitter(rng, b.style.sidewalk_color, 10), grain=0.07, mottle=0.1)
            elif label == "parking":
                look = Look(_jitter(rng, _pick(rng, GREYS[1:4]), 12), grain=0.08, mottle=0.1)
            else:
                look = Look(_jitter(rng, _pick(rng, TERRAIN), 16), grain=0.12, mottle=0.1)
            b.base.append(Shape(label, _strip(cam, xs[0], xs[1], near, far), look))
        beyond = _building_line(street, side)
        xs = sorted((beyond, beyond + side * 40))
        b.base.append(Shape("sidewalk", _strip(cam, xs[0], xs[1], near, far), Look(b.style.sidewalk_color)))
    shade_side = int(rng.choice([-1, 1]))
    if rng.random() < 0.6:
        line = _building_line(street, shade_side)
        reach = line - shade_side * rng.uniform(2, 9)
        xs = sorted((line, reach))
        b.shadows.append((_strip(cam, xs[0], xs[1], near, far), float(rng.uniform(0.55, 0.8))))


def _frontage(b: _Builder, street: _Street, side: int) -> None:
    """Facades, walls, fences and hedges along one side, far segments first."""
    cam, rng = b.cam, b.rng
    line = _building_line(street, side)
    segments = []
    z = 0.5
    end = rng.uniform(40, 160)
    while z < end:
        length = rng.uniform(8, 25)
        segments.append((z, min(z + length, end)))
        z += length
    shapes_by_segment = []
    for z0, z1 in segments:
        kind = rng.choice(["building", "wall", "fence", "vegetation"], p=[0.72, 0.1, 0.1, 0.08])
        shapes: list[Shape] = []
        if kind == "building":
            x = line + side * rng.uniform(0, 1.5)
            top = rng.uniform(7, 22)
            look = _building_look(b)
            windows = _windows(cam, rng, x, top, (z0, z1))
            color = _jitter(rng, _pick(rng, [(40, 45, 55), (70, 80, 95), (150, 170, 190), (30, 30, 30)]), 12)
            details = (Detail(windows, color),) if windows else ()
            shapes.append(Shape("building", _wall(cam, x, (0, top), (z0, z1)), look, details))
        else:
            behind = line + side * rng.uniform(2, 6)
            tree_top = rng.uniform(4, 12)
            shapes.append(
                Shape("vegetation", _wall(cam, behind, (0, tree_top), (z0, z1)), _vegetation_look(b))
            )
            if kind == "wall":
                look = Look(
                    _jitter(rng, _pick(rng, [*GREYS[2:], (190, 175, 150), (150, 90, 70)]), 12), 0.05, 0.06
                )
                shapes.append(Shape("wall", _wall(cam, line, (0, rng.uniform(1.2, 3.0)), (z0, z1)), look))
            elif kind == "fence":
                shapes.append(_fence(b, line, z0, z1))
            else:
                shapes.append(
                    Shape(
                        "vegetation",
                        _wall(cam, line, (0, rng.uniform(1.0, 2.2)), (z0, z1)),
                        _vegetation_look(b),
                    )
                )
        shapes_by_segment.append(shapes)
    for shapes in reversed(shapes_by_segment):
        b.base.extend(shapes)


def _windows(cam: Camera, rng: np.random.Generator, x: float, top: float, z: Span):
    """A grid of windows on a facade along the street."""
    z0, z1 = z
    floor = rng.uniform(2.8, 3.6)
    pitch = rng.uniform(1.8, 3.2)
    w, h = pitch * rng.uniform(0.35, 0.6), floor * rng.uniform(0.35, 0.55)
    ys = np.arange(floor * rng.uniform(0.8, 1.1), top - h - 0.4, floor)
    zs = np.arange(z0 + 0.6, z1 - w - 0.3, pitch)
    zs = zs[zs > 1.5]
    if not len(ys) or not len(zs):
        return ()
    yy, zz = np.meshgrid(ys, zs, indexing="ij")
    yy, zz = yy.ravel(), zz.ravel()
    corners = cam.project(
        x, np.stack([yy, yy, yy + h, yy + h], 1), np.stack([zz, zz + w, zz + w, zz], 1)
    )  # (n, 4, 2)
    return tuple(corners)


def _face_windows(cam: Camera, rng: np.random.Generator, x: Span, top: float, z: float):
    """A grid of windows on a facade facing the camera."""
    x0, x1 = x
    floor, pitch = rng.uniform(2.8, 3.6), rng.uniform(1.8, 3.2)
    w, h = pitch * rng.uniform(0.35, 0.6), floor * rng.uniform(0.35, 0.55)
    ys = np.arange(floor, top - h - 0.4, floor)
    xs = np.arange(x0 + 0.6, x1 - w - 0.3, pitch)
    yy, xx = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
    corners = cam.project(np.stack([xx, xx + w, xx + w, xx], 1), np.stack([yy, yy, yy + h, yy + h], 1), z)
    return tuple(corners)


def _fence(b: _Builder, x: float, z0: float, z1: float) -> Shape:
    cam, rng = b.cam, b.rng
    top = rng.uniform(1.0, 2.2)
    color = _jitter(rng, _pick(rng, [(60, 70, 60), (110, 110, 112), (120, 90, 60), (170, 170, 170)]), 12)
    gap = _jitter(rng, (45, 60, 40), 10)
    zs = np.arange(max(z0, 1.0), z1, rng.uniform(0.15, 0.3))
    bars = tuple(
        cam.project(x, [0.1, 0.1, top - 0.1, top - 0.1], [z, z + 0.08, z + 0.08, z]) for z in zs[::2]
    )
    return Shape("fence", _wall(cam, x, (0, top), (z0, z1)), Look(color, 0.05, 0.05), (Detail(bars, gap),))


def _furniture(b: _Builder, street: _Street) -> None:
    """Poles with signs, lights and lamps, trees, and static clutter along both curbs."""
    rng = b.rng
    pole_color = _pick(rng, [(60, 62, 66), (88, 90, 95), (45, 65, 55), (30, 30, 33)])
    for side in (-1, 1):
        strips = _strips(street, side)
        sidewalk = next(s for s in strips if s[0] == "sidewalk")
        curb = side * (sidewalk[1] + 0.4)
        z = rng.uniform(6, 12)
        while z < 55:
            kind = rng.choice(["sign", "light", "lamp", "tree", "static"], p=[0.28, 0.2, 0.17, 0.22, 0.13])
            if kind == "tree":
                verge = [s for s in strips if s[0] == "terrain"]
                at = side * (verge[0][1] + verge[0][2]) / 2 if verge else curb
                b.prop(z, _tree(b, at, z))
            elif kind == "static":
                at = side * rng.uniform(sidewalk[1] + 0.3, sidewalk[2] - 0.3)
                b.prop(z, [_static(b, at, z)])
            else:
                b.prop(z, _pole(b, curb, z, kind=str(kind), color=pole_color, side=side))
            z += rng.uniform(4, 12) * (1.0 if kind != "tree" else 1.4 - b.style.greenery)


def _pole(b: _Builder, x: float, z: float, *, kind: str, color: RGB, side: int) -> list[Shape]:
    cam, rng = b.cam, b.rng
    r = rng.uniform(0.18, 0.28)
    top = {"sign": rng.uniform(2.6, 3.4), "light": rng.uniform(3.0, 4.5), "lamp": rng.uniform(5, 8)}[kind]
    # A lit stripe down one flank reads as a cylinder, whatever the paint.
    shine = _face(cam, (x - r * 0.5, x - r * 0.1), (0, top), z - r)
    look = Look(_jitter(rng, color, 10), 0.04, 0.05)
    highlight = tuple(min(255.0, c * 1.35 + 25) for c in look.color)
    shapes = [
        Shape(
            "pole", _box(cam, (x - r, x + r), (0, top), (z - r, z + r)), look, (Detail((shine,), highlight),)
        )
    ]
    if kind == "sign":
        shapes.append(_sign(b, x, top, z))
    elif kind == "light":
        hx = x - side * rng.uniform(0, 2.5) if rng.random() < 0.4 else x
        if hx != x:
            arm = _box(cam, (min(x, hx), max(x, hx)), (top - 0.15, top), (z - 0.08, z + 0.08))
            shapes.append(Shape("pole", arm, shapes[0].look))
        shapes.append(_traffic_light(b, hx, top, z))
    else:
        head = _box(cam, (x - side * 1.2, x + r), (top - 0.25, top), (z - 0.2, z + 0.2))
        shapes.append(Shape("pole", head, shapes[0].look))
    return shapes


def _sign(b: _Builder, x: float, top: float, z: float) -> Shape:
    cam, rng = b.cam, b.rng
    size = rng.uniform(0.5, 0.75)
    form = int(rng.integers(4))
    n = [12, 3, 4, 4][form]
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + [0, np.pi / 2, 0, np.pi / 4][form]
    cy = top - size * 0.2
    outline = cam.project(x + size * np.cos(angles), cy + size * np.sin(angles), z - 0.2)
    inner = cam.project(x + 0.65 * size * np.cos(angles), cy + 0.65 * size * np.sin(angles), z - 0.2)
    face, center = [
        ((200, 30, 30), (235, 235, 235)),
        ((200, 30, 30), (240, 240, 235)),
        ((30, 70, 160), (235, 235, 240)),
        ((230, 190, 30), (240, 240, 240)),
    ][form]
    if rng.random() < 0.25:  # seen from behind: a plain grey back
        face = center = _pick(rng, GREYS[2:5])
    look = Look(_jitter(rng, face, 12), 0.03, 0.05)
    return Shape("traffic sign", outline, look, (Detail((inner,), _jitter(rng, center, 10)),))


def _traffic_light(b: _Builder, x: float, top: float, z: float) -> Shape:
    cam, rng = b.cam, b.rng
    w, h = rng.uniform(0.2, 0.28), rng.uniform(0.7, 0.95)
    housing = _pick(rng, [(30, 30, 32), (45, 50, 45), (200, 170, 40), (70, 70, 72)])
    lit = int(rng.integers(3))
    lamps = []
    for i in range(3):
        cy = top - h * (0.2 + 0.3 * i)
        lamps.append(_face(cam, (x - w * 0.55, x + w * 0.55), (cy - 0.055, cy + 0.055), z - 0.25))
    color = [(240, 60, 40), (250, 190, 40), (60, 230, 120)][lit]
    return Shape(
        "traffic light",
        _box(cam, (x - w, x + w), (top - h, top + 0.05), (z - 0.2, z + 0.2)),
        Look(_jitter(rng, housing, 8), 0.03, 0.05),
        (Detail((lamps[lit],), color),),
    )


def _tree(b: _Builder, x: float, z: float) -> list[Shape]:
    cam, rng = b.cam, b.rng
    trunk_h, crown = rng.uniform(2.0, 3.5), rng.uniform(1.3, 2.8)
    trunk = _box(cam, (x - 0.15, x + 0.15), (0, trunk_h + crown * 0.5), (z - 0.15, z + 0.15))
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    radius = crown * rng.uniform(0.75, 1.15, 16)
    cy = trunk_h + crown * rng.uniform(0.8, 1.1)
    blob = cam.project(x + radius * np.cos(angles), cy + radius * 1.1 * np.sin(angles), z)
    bark = _jitter(rng, (80, 65, 50), 12)
    return [Shape("vegetation", trunk, Look(bark, 0.1, 0.08)), Shape("vegetation", blob, _vegetation_look(b))]


def _static(b: _Builder, x: float, z: float) -> Shape:
    cam, rng = b.cam, b.rng
    w, h, d = [(0.3, 1.0, 0.3), (0.6, 1.1, 0.5), (1.6, 0.9, 0.5), (0.12, 0.9, 0.12)][int(rng.integers(4))]
    color = _pick(rng, [*GREYS[:4], (60, 90, 60), (120, 90, 60), (200, 120, 40)])
    return Shape(
        "static", _box(cam, (x - w / 2, x + w / 2), (0, h), (z, z + d)), Look(_jitter(rng, color), 0.05, 0.05)
    )


def _traffic(b: _Builder, street: _Street) -> None:
    """Vehicles in the lanes and parked along the parking strips; riders near the curb."""
    rng = b.rng
    for lane in street.lanes:
        # Keep the lane ahead of the camera clear for a few metres, as a driver would.
        z = rng.uniform(9, 25) if abs(lane) < 1.5 else rng.uniform(5, 16)
        while z < 90:
            kind = rng.choice(["car", "truck", "bus", "rider"], p=[0.74, 0.08, 0.08, 0.1])
            x = lane + rng.uniform(-0.4, 0.4)
            length = _rider(b, x, z) if kind == "rider" else _vehicle(b, str(kind), x, z)
            z += length + rng.uniform(6, 40)
    for side in (-1, 1):
        parking = [s for s in _strips(street, side) if s[0] == "parking"]
        if not parking:
            continue
        x = side * (parking[0][1] + parking[0][2]) / 2
        z = rng.uniform(3, 8)
        while z < 70:
            if rng.random() < 0.55:
                z += _vehicle(b, "car", x, z)
            z += rng.uniform(1, 8)


VEHICLE_SIZE = {"car": (1.8, 1.5, 4.3), "truck": (2.5, 3.4, 8.0), "bus": (2.55, 3.1, 12.0)}


def _vehicle(b: _Builder, kind: str, x: float, z: float) -> float:
    """Add a car, truck or bus whose rear is at depth z; returns its length."""
    cam, rng = b.cam, b.rng
    w, h, length = (s * rng.uniform(0.92, 1.08) for s in VEHICLE_SIZE[kind])
    x0, x1 = x - w / 2, x + w / 2
    color = _jitter(rng, _pick(rng, CARS if kind == "car" else HEAVY), 14)
    look = Look(color, 0.03, 0.05, gradient=0.1)
    dark = _jitter(rng, (30, 32, 36), 8)
    glass = _jitter(rng, (60, 70, 85), 14)
    side_x = x1 if x < 0 else x0
    wheels = tuple(
        cam.project(side_x, [0, 0, 0.6, 0.6], [zc - 0.35, zc + 0.35, zc + 0.35, zc - 0.35])
        for zc in (z + 0.8, z + length - 0.8)
    )
    rear_lights = tuple(_face(cam, (a, a + 0.25), (h * 0.45, h * 0.55), z) for a in (x0 + 0.05, x1 - 0.3))
    light = (240, 235, 220) if x < -0.5 and rng.random() < 0.5 else (200, 30, 30)
    shapes: list[Shape]
    if kind == "car":
        body = _box(cam, (x0, x1), (0.0, h * 0.62), (z, z + length))
        cabin = _box(cam, (x0 + 0.12, x1 - 0.12), (h * 0.6, h), (z + 0.7, z + length - 1.0))
        window = _face(cam, (x0 + 0.25, x1 - 0.25), (h * 0.68, h * 0.93), z + 0.7)
        shapes = [
            Shape("car", body, look, (Detail(wheels, dark), Detail(rear_lights, light))),
            Shape("car", cabin, look, (Detail((window,), glass),)),
        ]
    else:
        band = _wall(cam, side_x, (h * 0.5, h * 0.85), (z + 0.5, z + length - 0.5))
        rear = _face(cam, (x0 + 0.2, x1 - 0.2), (h * 0.55, h * 0.9), z)
        details = [Detail(wheels, dark), Detail(rear_lights, light)]
        if kind == "bus":
            details.append(Detail((band, rear), glass))
        outline = _box(cam, (x0, x1), (0.0, h), (z, z + length))
        shapes = [Shape(kind, outline, look, tuple(details))]
    b.shadows.append((_strip(cam, x0 - 0.2, x1 + 0.2, z - 0.3, z + length), 0.5))
    b.prop(z, shapes)
    return length


def _figure(cam: Camera, rng: np.random.Generator, x: float, z: float, *, height: float, base: float = 0.0):
    """Person outline (and its legs and head) standing at (x, base, z), `height` metres tall."""
    template = PERSON + rng.normal(0, 0.012, PERSON.shape)
    scale = height

    def place(t):
        return cam.project(x + t[:, 0] * scale, base + t[:, 1] * scale, z)

    return place(template), place(LEGS), place(HEAD)


def _person(b: _Builder, x: float, z: float) -> None:
    cam, rng = b.cam, b.rng
    height = rng.uniform(1.55, 1.95)
    outline, legs, head = _figure(cam, rng, x, z, height=height)
    b.shadows.append((_strip(cam, x - height * 0.25, x + height * 0.25, z - 0.3, z + 0.3), 0.6))
    top = _jitter(rng, _pick(rng, CLOTHES), 16)
    trousers = _jitter(rng, _pick(rng, CLOTHES[:7]), 12)
    details = (Detail((legs,), trousers), Detail((head,), _jitter(rng, _pick(rng, SKIN), 8)))
    b.prop(z, [Shape("person", outline, Look(top, 0.05, 0.05), details)])


def _rider(b: _Builder, x: float, z: float) -> float:
    """A cyclist or motorcyclist crossing the view at depth z; returns the depth it occupies."""
    cam, rng = b.cam, b.rng
    motor = rng.random() < 0.25
    r = 0.34 if not motor else 0.32
    base = 1.3 if not motor else 1.5
    heading = 1 if rng.random() < 0.5 else -1
    angles = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    wheels = [
        cam.project(x + cx + r * np.cos(angles), r + r * np.sin(angles), z) for cx in (-base / 2, base / 2)
    ]
    frame = cam.project(
        x + np.array([-base / 2, -0.1, base / 2 * 0.9, base / 2, 0.0]) * heading,
        [r, 0.95, 1.05, r, 0.5],
        z,
    )
    label = "motorcycle" if motor else "bicycle"
    paint = _jitter(rng, _pick(rng, [(30, 30, 30), (150, 30, 30), (40, 60, 140), (180, 180, 180)]), 12)
    vehicle = [Shape(label, p, Look(paint, 0.05, 0.05)) for p in (*wheels, frame)]
    outline, _, head = _figure(cam, rng, x - 0.1 * heading, z, height=rng.uniform(1.5, 1.8), base=0.45)
    clothes = _jitter(rng, _pick(rng, CLOTHES), 16)
    rider = Shape(
        "rider", outline, Look(clothes, 0.05, 0.05), (Detail((head,), _jitter(rng, _pick(rng, SKIN), 8)),)
    )
    b.prop(z, [*vehicle, rider])
    return 1.5


def _pedestrians(b: _Builder, street: _Street) -> None:
    """People on the sidewalks, a parked bicycle now and then, and the odd one crossing the road."""
    rng = b.rng
    for side in (-1, 1):
        sidewalk = next(s for s in _strips(street, side) if s[0] == "sidewalk")
        for _ in range(int(rng.integers(4, 11))):
            z = rng.uniform(3.5, 16)
            x = side * rng.uniform(sidewalk[1] + 0.3, sidewalk[2] - 0.3)
            if rng.random() < 0.15:
                _parked_bicycle(b, x, z)
            else:
                _person(b, x, z)
    for _ in range(int(rng.integers(0, 3))):
        _person(b, rng.uniform(street.road_left, street.road_right), rng.uniform(6, 25))


def _parked_bicycle(b: _Builder, x: float, z: float) -> None:
    cam, rng = b.cam, b.rng
    angles = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    wheels = [
        cam.project(x + cx + 0.34 * np.cos(angles), 0.34 + 0.34 * np.sin(angles), z) for cx in (-0.53, 0.53)
    ]
    frame = cam.project(x + np.array([-0.53, -0.1, 0.48, 0.53, 0.0]), [0.34, 0.95, 1.05, 0.34, 0.5], z)
    paint = _jitter(rng, _pick(rng, [(30, 30, 30), (150, 30, 30), (40, 60, 140), (180, 180, 180)]), 12)
    b.prop(z, [Shape("bicycle", p, Look(paint, 0.05, 0.05)) for p in (*wheels, frame)])


def _ego_and_border(b: _Builder) -> list[Shape]:
    """The ego vehicle's hood across the bottom and the thin out-of-roi frame, drawn last."""
    cam, rng = b.cam, b.rng
    h, w = cam.height_px, cam.width_px
    xs = np.linspace(-0.02, 1.02, 13) * w
    depth = b.style.hood * h * rng.uniform(0.95, 1.05)
    ys = h - depth * (1 - 0.55 * ((xs - w / 2) / (w / 2)) ** 2)
    hood = np.concatenate([np.stack([xs, ys], 1), [(w + 2, h + 2), (-2, h + 2)]])
    shapes = [Shape("ego vehicle", hood, Look(_jitter(rng, b.style.hood_color, 6), 0.03, 0.1, gradient=-0.4))]
    t = max(2.0, round(w * 0.003))  # two pixels at least, or the strips would be mere lines
    frame = [
        [(0, 0), (w, 0), (w, t - 1), (0, t - 1)],
        [(0, h - t), (w, h - t), (w, h), (0, h)],
        [(0, 0), (t - 1, 0), (t - 1, h), (0, h)],
        [(w - t, 0), (w, 0), (w, h), (w - t, h)],
    ]
    grey = Look((0.0, 0.0, 0.0), 0.0, 0.0)
    shapes.extend(Shape("out of roi", np.asarray(p, float), grey) for p in frame)
    return shapes
