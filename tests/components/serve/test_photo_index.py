"""The image index: ids by stem, split filter, true masks through the official label table."""

import numpy as np
import pytest

from cityseg.components import storage
from cityseg.components.labels import category_lut
from cityseg.components.serve.photo_index import PhotoIndex
from tests.components.serve.conftest import TRAIN_ID, VAL_IDS, frame_image, label_ids, write_frame


def test_ids_are_stems_sorted_across_splits(cityscapes_dir):
    with PhotoIndex(cityscapes_dir) as index:
        assert [f.stem for f in index.frames()] == [*VAL_IDS, TRAIN_ID]
        assert (index.get(TRAIN_ID).split, index.get(TRAIN_ID).city) == ("train", "bonn")


def test_split_filter(cityscapes_dir):
    with PhotoIndex(cityscapes_dir, "val") as index:
        assert len(index) == 3
        with pytest.raises(KeyError):
            index.get(TRAIN_ID)


def test_image_bytes_are_the_stored_file_and_true_mask_uses_the_label_table(cityscapes_dir):
    with PhotoIndex(cityscapes_dir, "val") as index:
        stored = cityscapes_dir / "leftImg8bit/val/aachen" / f"{VAL_IDS[1]}_leftImg8bit.png"
        assert index.image_bytes(VAL_IDS[1]) == stored.read_bytes()
        mask = index.true_mask(VAL_IDS[1])
    np.testing.assert_array_equal(mask, category_lut()[label_ids()])
    assert mask[0, 0] == 0 and mask[5, 5] == 5 and mask[25, 5] == 1 and mask[25, 35] == 7


def test_path_like_ids_are_unknown(cityscapes_dir):
    with PhotoIndex(cityscapes_dir) as index:
        for image_id in ("../gtFine", f"val/aachen/{VAL_IDS[0]}", f"{VAL_IDS[0]}_leftImg8bit.png", ""):
            with pytest.raises(KeyError):
                index.get(image_id)


def test_errors_name_the_folder(tmp_path, cityscapes_dir):
    with pytest.raises(ValueError, match=f"{tmp_path}: no Cityscapes frames found"):
        PhotoIndex(tmp_path)
    with pytest.raises(ValueError, match="no frames in split 'test'"):
        PhotoIndex(cityscapes_dir, "test")


def test_same_stem_in_two_splits_is_refused(tmp_path):
    for split in ("train", "val"):
        write_frame(tmp_path, split, VAL_IDS[0], frame_image(0), label_ids())
    with pytest.raises(ValueError, match=f"frame {VAL_IDS[0]} is in splits train and val; choose one split"):
        PhotoIndex(tmp_path)
    with PhotoIndex(tmp_path, "val") as index:
        assert index.get(VAL_IDS[0]).split == "val"


def test_gcs_source(gcs_emulator, cityscapes_dir):
    bucket = gcs_emulator()
    storage.copy_tree(cityscapes_dir, f"{bucket}/cityscapes")
    with PhotoIndex(f"{bucket}/cityscapes", "val") as index:
        assert [f.stem for f in index.frames()] == list(VAL_IDS)
        np.testing.assert_array_equal(index.true_mask(VAL_IDS[0]), category_lut()[label_ids()])
        stored = cityscapes_dir / "leftImg8bit/val/aachen" / f"{VAL_IDS[0]}_leftImg8bit.png"
        assert index.image_bytes(VAL_IDS[0]) == stored.read_bytes()
