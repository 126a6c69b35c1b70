"""The rarer things added to a scene for the object pipeline: trams, buses, trucks, riders, bicycles.

A street scene alone holds about forty cars for each bus and no trains at all, too few of the rare
classes for a classifier's val split. `add_rare_things` is the `extra` hook of `build_scene`: it
adds a few of each rare class per frame, each drawn in the street's own geometry and palettes, so
the classes stay imbalanced (cars and people still lead) but every one has examples in every city.
"""

import numpy as np

from cityseg.components.synth.scene import (
    CLOTHES,
    Detail,
    Look,
    Shape,
    _box,
    _Builder,
    _face,
    _figure,
    _jitter,
    _parked_bicycle,
    _pick,
    _rider,
    _Street,
    _strip,
    _strips,
    _vehicle,
    _wall,
)

# Tram liveries in colours no bus or truck wears (HEAVY), so a tram seen from behind is still a tram.
TRAM = [(40, 150, 160), (120, 60, 140), (240, 225, 180), (150, 30, 60), (90, 150, 60)]
TRAM_SIZE = (2.65, 3.6, 28.0)  # width, height, length in metres
# Fairings in colours a bicycle's frame never has (those are black, red, blue and grey).
MOTORCYCLES = [(230, 200, 40), (240, 140, 30), (50, 130, 70), (235, 235, 230), (160, 165, 175)]


def add_rare_things(b: _Builder, street: _Street) -> None:
    """Per frame: maybe a tram, a bus and a truck in the lanes, riders, a motorcyclist, a parked bicycle."""
    rng = b.rng
    lanes = list(street.lanes)
    if rng.random() < 0.7:
        _tram(b, float(rng.choice(lanes)) + rng.uniform(-0.3, 0.3), rng.uniform(12, 45))
    for kind in ("bus", "truck"):
        if rng.random() < 0.7:
            _vehicle(b, kind, float(rng.choice(lanes)) + rng.uniform(-0.4, 0.4), rng.uniform(10, 40))
    for _ in range(int(rng.integers(1, 3))):
        _rider(b, float(rng.choice(lanes)) + rng.uniform(-0.5, 0.5), rng.uniform(6, 25))
    for _ in range(int(rng.integers(1, 3))):
        _motorcyclist(b, float(rng.choice(lanes)) + rng.uniform(-0.5, 0.5), rng.uniform(6, 25))
    side = int(rng.choice([-1, 1]))
    sidewalk = next(s for s in _strips(street, side) if s[0] == "sidewalk")
    _parked_bicycle(b, side * rng.uniform(sidewalk[1] + 0.3, sidewalk[2] - 0.3), rng.uniform(4, 14))


def _tram(b: _Builder, x: float, z: float) -> None:
    """A tram whose rear is at depth z: a long, tall box with a window band and a pantograph on top."""
    cam, rng = b.cam, b.rng
    w, h, length = (s * rng.uniform(0.95, 1.05) for s in TRAM_SIZE)
    x0, x1 = x - w / 2, x + w / 2
    look = Look(_jitter(rng, _pick(rng, TRAM), 14), 0.03, 0.04, gradient=0.1)
    glass = _jitter(rng, (50, 60, 75), 10)
    side_x = x1 if x < 0 else x0
    band = _wall(cam, side_x, (h * 0.45, h * 0.85), (z + 0.5, z + length - 0.5))
    rear = _face(cam, (x0 + 0.15, x1 - 0.15), (h * 0.4, h * 0.8), z)
    skirt = _wall(cam, side_x, (0.0, h * 0.15), (z, z + length))
    body = _box(cam, (x0, x1), (0.0, h), (z, z + length))
    pantograph = _box(cam, (x - 0.6, x + 0.6), (h, h + 0.9), (z + length / 2 - 0.2, z + length / 2 + 0.2))
    display = _face(cam, (x0 + 0.4, x1 - 0.4), (h * 0.84, h * 0.95), z)
    details = (
        Detail((band, rear), glass),
        Detail((skirt,), _jitter(rng, (40, 40, 42), 6)),
        Detail((display,), (255, 170, 20)),
    )
    b.shadows.append((_strip(cam, x0 - 0.2, x1 + 0.2, z - 0.3, z + length), 0.5))
    b.prop(
        z, [Shape("train", body, look, details), Shape("train", pantograph, Look((50, 50, 52), 0.03, 0.03))]
    )


def _motorcyclist(b: _Builder, x: float, z: float) -> None:
    """A motorcycle seen side-on, black wheels under a painted fairing with a headlight, and its rider."""
    cam, rng = b.cam, b.rng
    heading = 1 if rng.random() < 0.5 else -1
    r, base = 0.36, 1.55
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    wheels = [
        cam.project(x + cx + r * np.cos(angles), r + r * np.sin(angles), z) for cx in (-base / 2, base / 2)
    ]
    body = cam.project(
        x + np.array([-0.85, -0.4, 0.3, 0.85, 0.8, -0.1, -0.7]) * heading,
        [0.8, 1.0, 1.1, 0.95, 0.4, 0.3, 0.5],
        z,
    )
    paint = _jitter(rng, _pick(rng, MOTORCYCLES), 12)
    engine = cam.project(x + np.array([-0.3, 0.3, 0.3, -0.3]) * heading, [0.3, 0.3, 0.7, 0.7], z)
    lamp = cam.project(x + heading * (0.78 + 0.07 * np.cos(angles)), 0.85 + 0.07 * np.sin(angles), z)
    tyre = Look(_jitter(rng, (20, 20, 22), 4), 0.03, 0.03)
    vehicle = [Shape("motorcycle", p, tyre) for p in wheels] + [
        Shape(
            "motorcycle",
            body,
            Look(paint, 0.03, 0.04),
            (Detail((engine,), (60, 60, 66)), Detail((lamp,), (250, 245, 200))),
        )
    ]
    outline, _, head = _figure(cam, rng, x - 0.15 * heading, z, height=rng.uniform(1.5, 1.8), base=0.6)
    helmet = _jitter(rng, _pick(rng, [(240, 240, 240), (30, 30, 30), (200, 40, 40)]), 8)
    rider = Shape(
        "rider",
        outline,
        Look(_jitter(rng, _pick(rng, CLOTHES), 16), 0.05, 0.05),
        (Detail((head,), helmet),),
    )
    b.prop(z, [*vehicle, rider])
