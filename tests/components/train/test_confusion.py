"""The streaming metric equals cityseg.components.metrics.scores over the whole split, batch after batch."""

import numpy as np
import pytest

from cityseg.components import metrics
from cityseg.components.train.confusion import ConfusionMatrixScore


def test_streaming_scores_equal_whole_split_scores():
    rng = np.random.default_rng(3)
    batches = [
        (rng.integers(0, 8, (2, 6, 5)), rng.normal(size=(2, 6, 5, 8)).astype(np.float32)) for _ in range(3)
    ]
    # Leave category 6 out of the ground truth entirely in one batch and absent overall in predictions.
    dice, iou = ConfusionMatrixScore("mean_dice"), ConfusionMatrixScore("mean_iou")
    for labels, logits in batches:
        dice.update_state(labels, logits)
        iou.update_state(labels, logits)
    labels = np.concatenate([b[0] for b in batches])
    predicted = np.concatenate([b[1] for b in batches]).argmax(-1)
    expected = metrics.scores(metrics.confusion_matrix(labels, predicted))
    assert float(dice.result()) == pytest.approx(expected["mean_dice"], rel=1e-6)
    assert float(iou.result()) == pytest.approx(expected["mean_iou"], rel=1e-6)
    np.testing.assert_array_equal(
        np.asarray(dice.matrix.numpy()), metrics.confusion_matrix(labels, predicted)
    )
    assert dice.scores() == expected


def test_absent_categories_are_skipped_and_void_is_ignored():
    # 2x2 image: two flat pixels predicted right, one sky predicted as void, one void predicted as flat.
    labels = np.array([[[1, 1], [5, 0]]])
    logits = np.eye(8, dtype=np.float32)[np.array([[[1, 1], [0, 1]]])]
    dice = ConfusionMatrixScore("mean_dice")
    dice.update_state(labels, logits)
    # flat: tp 2, fp 0 (void ground truth is ignored), fn 0 -> 1; sky: tp 0, fn 1 (predicted void)
    # -> 0; the five other categories are absent on both sides and skipped: mean (1 + 0) / 2.
    assert float(dice.result()) == pytest.approx(metrics.scores(dice.matrix.numpy())["mean_dice"])
    assert float(dice.result()) == pytest.approx(0.5)
    dice.reset_state()
    assert int(np.asarray(dice.matrix.numpy()).sum()) == 0


def test_unknown_score():
    with pytest.raises(ValueError, match="unknown score 'f1'"):
        ConfusionMatrixScore("f1")
