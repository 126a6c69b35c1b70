"""Instances of a frame, checked on hand-built instance images and polygon files."""

import numpy as np
import pytest

from cityseg.components.crops.config import CropsConfig
from cityseg.components.crops.instances import (
    Instance,
    drop_reason,
    find_instances,
    polygon_pixels,
    polygons_by_instance,
    square_crop,
)

SQUARE = [[2, 2], [5, 2], [5, 5], [2, 5]]  # PIL fills 4 x 4 = 16 pixels


def _document(*objects) -> dict:
    return {
        "imgHeight": 8,
        "imgWidth": 12,
        "objects": [{"label": label, "polygon": poly} for label, poly in objects],
    }


def test_polygons_are_numbered_per_label_as_json2instanceimg_numbers_them():
    document = _document(
        ("road", SQUARE),
        ("car", SQUARE),
        ("cargroup", SQUARE),
        ("person", SQUARE),
        ("car", [[0, 0], [1, 0], [1, 1]]),
    )
    document["objects"].insert(1, {"label": "car", "polygon": SQUARE, "deleted": 1})
    found = polygons_by_instance(document, "f.json")
    assert sorted(found) == [24000, 26000, 26001]
    assert found[26001] == [(0, 0), (1, 0), (1, 1)]


def test_unknown_labels_and_other_documents_are_named():
    with pytest.raises(ValueError, match=r"f\.json: unknown label 'spaceship'"):
        polygons_by_instance(_document(("spaceship", SQUARE)), "f.json")
    with pytest.raises(ValueError, match=r"f\.json: not a Cityscapes polygons file"):
        polygons_by_instance([], "f.json")


def test_polygon_pixels_counts_the_pil_fill():
    assert polygon_pixels(SQUARE) == 16
    assert polygon_pixels([(0, 0), (2, 0), (0, 2)]) == 6


def test_instances_have_their_box_pixels_and_visible_share():
    ids = np.full((8, 12), 7, np.int32)  # road
    ids[2:6, 2:6] = 26000  # the car, 16 pixels, its top-left quarter covered by a person
    ids[2:4, 2:4] = 24000
    ids[0, 11] = 20  # traffic sign: no instance class
    document = _document(("car", SQUARE), ("person", [[2, 2], [3, 2], [3, 3], [2, 3]]))
    found = find_instances(ids, document, "f.json")
    assert found == [
        Instance(24000, 0, (2, 2, 3, 3), 4, 1.0),
        Instance(26000, 2, (2, 2, 5, 5), 12, 0.75),
    ]


def test_an_instance_without_its_polygon_is_an_error():
    ids = np.zeros((8, 12), np.int32)
    ids[1, 1] = 26003
    with pytest.raises(ValueError, match=r"f\.json: instance 26003 has no polygon"):
        find_instances(ids, _document(("car", SQUARE)), "f.json")


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        (Instance(26000, 2, (0, 0, 14, 3), 100, 1.0), "small_box"),
        (Instance(26000, 2, (0, 0, 15, 3), 79, 1.0), "few_pixels"),
        (Instance(26000, 2, (0, 0, 15, 3), 80, 0.49), "occluded"),
        (Instance(26000, 2, (0, 0, 15, 3), 80, 0.5), None),
    ],
)
def test_filters_name_why_an_instance_is_dropped(instance, reason):
    assert drop_reason(instance, CropsConfig("src", "out")) == reason


def test_square_crop_centres_the_box_with_its_margin_and_pads_outside_the_image():
    image = np.arange(1, 65, dtype=np.uint8).reshape(8, 8)
    # A 2x2 box with margin 0.5: a 4x4 window around it.
    np.testing.assert_array_equal(square_crop(image, (3, 3, 4, 4), 0.5, 4), image[2:6, 2:6])
    corner = square_crop(image, (0, 0, 1, 1), 0.5, 4)
    assert corner[0].tolist() == [0, 0, 0, 0] and corner[:, 0].tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(corner[1:, 1:], image[:3, :3])
    assert square_crop(np.zeros((8, 8, 3), np.uint8), (0, 0, 7, 3), 0.25, 6).shape == (6, 6, 3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", 0, "size must be at least 1"),
        ("margin", 3.0, r"margin must lie in \[0, 2\]"),
        ("min_visible", 1.5, "min_visible"),
    ],
)
def test_config_rejects_out_of_range_fields(field, value, message):
    with pytest.raises(ValueError, match=message):
        CropsConfig("src", "out", **{field: value})
