import numpy as np
import pytest

from cityseg.components.metrics import confusion_matrix, scores

# 3x3 masks, small enough to check every number on paper.
TRUE = np.array([[1, 1, 2], [1, 2, 2], [0, 0, 2]])


def test_perfect_prediction_scores_one_on_present_categories_and_none_elsewhere():
    s = scores(confusion_matrix(TRUE, TRUE))
    assert s["iou_flat"] == s["dice_flat"] == 1.0
    assert s["iou_construction"] == 1.0
    assert s["iou_sky"] is None and s["dice_sky"] is None
    assert s["mean_iou"] == s["mean_dice"] == s["pixel_accuracy"] == 1.0
    assert s["mean_iou_8"] == 1.0


def test_disjoint_prediction_scores_zero():
    pred = np.where(TRUE == 1, 2, np.where(TRUE == 2, 1, 0))
    s = scores(confusion_matrix(TRUE, pred))
    assert s["iou_flat"] == s["iou_construction"] == 0.0
    assert s["mean_dice"] == 0.0 and s["pixel_accuracy"] == 0.0


def test_partial_overlap_matches_hand_computation():
    pred = np.array([[1, 2, 2], [1, 2, 2], [0, 1, 2]])
    s = scores(confusion_matrix(TRUE, pred))
    # flat: tp=2 (0,0),(1,0); fn=1 (0,1)->2; fp=0, since (2,1) is a void pixel predicted flat.
    assert s["iou_flat"] == pytest.approx(2 / 3)
    assert s["dice_flat"] == pytest.approx(4 / 5)
    # construction: tp=4; fp=1 from (0,1); fn=0.
    assert s["iou_construction"] == pytest.approx(4 / 5)
    assert s["dice_construction"] == pytest.approx(8 / 9)
    assert s["mean_iou"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert s["pixel_accuracy"] == pytest.approx(6 / 7)
    # With void as a class, the void pixel predicted flat is a flat false positive.
    assert s["iou_void"] == pytest.approx(1 / 2)


def test_void_prediction_is_a_false_negative_as_in_cityscapesscripts():
    pred = np.array([[1, 0, 2], [1, 2, 2], [0, 0, 2]])
    s = scores(confusion_matrix(TRUE, pred))
    # flat: tp=2, fn=1 (the flat pixel predicted void), fp=0.
    assert s["iou_flat"] == pytest.approx(2 / 3)
    assert s["iou_construction"] == 1.0
    assert s["mean_iou_8"] < 1.0


def test_missing_class_is_excluded_from_the_mean():
    pred = np.where(TRUE == 1, 2, TRUE)
    s = scores(confusion_matrix(TRUE, pred))
    assert s["iou_flat"] == 0.0
    assert s["iou_construction"] == pytest.approx(4 / 7)
    assert s["mean_iou"] == pytest.approx(2 / 7)


def test_all_void_ground_truth_has_no_category_score():
    void = np.zeros((3, 3), dtype=np.uint8)
    s = scores(confusion_matrix(void, TRUE))
    assert s["mean_iou"] is None and s["mean_dice"] is None and s["pixel_accuracy"] is None
    assert s["iou_void"] == pytest.approx(2 / 9)


def test_bad_masks_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="differ in size"):
        confusion_matrix(TRUE, TRUE[:2])
    with pytest.raises(ValueError, match=r"outside 0\.\.7"):
        confusion_matrix(TRUE, TRUE + 6)
