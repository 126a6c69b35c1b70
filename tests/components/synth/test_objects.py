"""The generator's instance images and its object set: the official json2instanceImg, whole things."""

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import name2label
from cityscapesscripts.preparation.json2instanceImg import json2instanceImg
from PIL import Image

from cityseg.components.synth import core
from cityseg.components.synth.config import SPLITS, SynthConfig
from cityseg.components.synth.scene import Look, Shape, _merge_things

HEIGHT, WIDTH = 64, 128


def _frames(root):
    for path in sorted(root.glob("leftImg8bit/*/*/*_leftImg8bit.png")):
        yield path.parts[-3], path.parts[-2], path.name[: -len("_leftImg8bit.png")]


def _instance_ids(root, split, city, stem) -> np.ndarray:
    return cv2.imread(
        str(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED
    )


@pytest.fixture(scope="module")
def objects_set(tmp_path_factory):
    """A small object set: three cities of four frames at 128x256."""
    root = tmp_path_factory.mktemp("objects") / "cityscapes"
    core.generate(
        SynthConfig(out=str(root), cities=3, frames_per_city=4, height=128, width=256, objects=True)
    )
    return root


def test_official_json2instanceimg_renders_our_instance_image(objects_set, tmp_path):
    """instanceIds: labelId * 1000 + index for each thing's polygon, the plain labelId elsewhere."""
    root = objects_set
    things = 0
    for split, city, stem in list(_frames(root))[::4]:
        folder = root / "gtFine" / split / city
        json2instanceImg(str(folder / f"{stem}_gtFine_polygons.json"), str(tmp_path / "ids.png"), "ids")
        ours = cv2.imread(str(folder / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
        assert ours.dtype == np.uint16
        np.testing.assert_array_equal(ours, np.asarray(Image.open(tmp_path / "ids.png")))
        np.testing.assert_array_equal(
            np.where(ours >= 1000, ours // 1000, ours),
            cv2.imread(str(folder / f"{stem}_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED),
        )
        things += len(np.unique(ours[ours >= 1000]))
    assert things > 0


def test_objects_draw_every_thing_class_in_every_split(objects_set):
    root = objects_set
    thing_ids = {
        name2label[name].id
        for name in ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
    }
    for split in SPLITS:
        seen = set()
        for s, city, stem in _frames(root):
            if s != split:
                continue
            ids = cv2.imread(
                str(root / "gtFine" / s / city / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED
            )
            seen |= {int(i) // 1000 for i in np.unique(ids[ids >= 1000])}
        assert seen == thing_ids, split


def test_whole_things_merge_a_things_parts_into_one_hull_and_keep_other_shapes_apart():
    look = Look((100.0, 100.0, 100.0))
    body = Shape("car", np.array([(0, 4), (8, 4), (8, 8), (0, 8)], float), look)
    cabin = Shape("car", np.array([(2, 1), (6, 1), (6, 4), (2, 4)], float), look)
    rider = Shape("rider", np.array([(0, 0), (1, 0), (1, 1)], float), look)
    pole = Shape("pole", np.array([(0, 0), (1, 0), (1, 2)], float), look)
    merged = _merge_things([body, cabin, rider, pole, pole])
    assert [s.label for s in merged] == ["car", "rider", "pole", "pole"]
    hull = {tuple(p) for p in merged[0].polygon.astype(int).tolist()}
    assert hull == {(0, 4), (2, 1), (6, 1), (8, 4), (8, 8), (0, 8)}
    assert [d.polygons[0].tolist() for d in merged[0].details] == [
        body.polygon.tolist(),
        cabin.polygon.tolist(),
    ]
    assert merged[1] is rider


def test_objects_off_keeps_the_segmentation_frames():
    """The flag changes nothing unless it is on: the default frame is the one drawn without any hook."""
    plain, _ = core.render_frame(0, "aachen", 0, HEIGHT, WIDTH)
    objects, _ = core.render_frame(0, "aachen", 0, HEIGHT, WIDTH, objects=True)
    assert plain["labelIds"] != objects["labelIds"]
    assert core.render_frame(0, "aachen", 0, HEIGHT, WIDTH, objects=False)[0] == plain
