import numpy as np
from cityscapesscripts.helpers.labels import id2label

from cityseg.components import labels


def test_category_names_follow_category_ids_of_the_official_table():
    assert labels.CATEGORY_NAMES == (
        "void",
        "flat",
        "construction",
        "object",
        "nature",
        "sky",
        "human",
        "vehicle",
    )
    for label in id2label.values():
        if label.id >= 0:
            assert labels.CATEGORY_NAMES[label.categoryId] == label.category


def test_lut_maps_every_label_id_to_its_category_and_the_rest_to_invalid():
    lut = labels.category_lut()
    for label_id in range(labels.NUM_LABEL_IDS):
        assert lut[label_id] == id2label[label_id].categoryId
    assert (lut[labels.NUM_LABEL_IDS :] == labels.INVALID).all()


def test_category_colors_are_those_of_the_first_evaluated_label():
    colors = labels.category_colors()
    assert tuple(colors[1]) == id2label[7].color  # flat: road
    assert tuple(colors[7]) == id2label[26].color  # vehicle: car
    assert tuple(colors[0]) == (0, 0, 0)
    assert labels.colorize(np.array([[1, 7]], dtype=np.uint8)).tolist() == [[[128, 64, 128], [0, 0, 142]]]
