"""Losses on hand-built masks whose values can be checked on paper."""

import math

import numpy as np
import pytest
from keras import ops

from cityseg.components.train.losses import LOSSES, build_loss, class_weights


def _logits_for(labels: np.ndarray, confidence: float) -> np.ndarray:
    """Logits that give probability `confidence` to the label and share the rest equally."""
    rest = (1 - confidence) / 7
    probs = np.full((*labels.shape, 8), rest)
    np.put_along_axis(probs, labels[..., None], confidence, axis=-1)
    return np.log(probs).astype(np.float32)


def _value(loss, labels, logits) -> float:
    return float(ops.convert_to_numpy(loss(labels, logits)))


def test_ce_is_minus_log_of_the_true_class_probability():
    labels = np.array([[[1, 2], [3, 4]]])
    assert _value(build_loss("ce"), labels, _logits_for(labels, 0.5)) == pytest.approx(
        -math.log(0.5), rel=1e-5
    )


def test_void_pixels_do_not_count_when_ignored():
    labels = np.array([[[0, 2], [0, 4]]])
    logits = _logits_for(labels, 0.9)
    logits[0, :, 0] = _logits_for(np.array([[5, 5]]), 0.9)[0]  # void pixels predicted badly
    assert _value(build_loss("ce"), labels, logits) == pytest.approx(-math.log(0.9), rel=1e-5)
    assert _value(build_loss("ce", ignore_void=False), labels, logits) > -math.log(0.9) + 1


def test_class_weights_weight_each_pixel():
    labels = np.array([[[1, 2]]])
    logits = np.concatenate([_logits_for(labels[:, :, :1], 0.5), _logits_for(labels[:, :, 1:], 0.25)], axis=2)
    weights = [0, 3, 1, 1, 1, 1, 1, 1]
    expected = (3 * -math.log(0.5) + 1 * -math.log(0.25)) / 4
    assert _value(build_loss("ce", weights), labels, logits) == pytest.approx(expected, rel=1e-5)


def test_focal_is_ce_scaled_by_one_minus_p_squared():
    labels = np.array([[[3, 3]]])
    expected = (1 - 0.6) ** 2 * -math.log(0.6)
    assert _value(build_loss("focal"), labels, _logits_for(labels, 0.6)) == pytest.approx(expected, rel=1e-5)


def test_dice_is_zero_for_a_confident_perfect_prediction_and_high_for_a_wrong_one():
    labels = np.array([[[1, 1, 2, 2], [7, 7, 0, 0]]])
    perfect = _logits_for(labels, 1 - 1e-7)
    wrong = _logits_for((labels % 7) + 1, 1 - 1e-7)
    assert _value(build_loss("dice"), labels, perfect) == pytest.approx(0.0, abs=1e-5)
    # Over the 6 non-void pixels with smoothing 1: flat and construction have 2 true and 2 predicted
    # pixels, none shared: 1/5 each; object is predicted twice and vehicle missed twice: 1/3 each;
    # nature, sky and human are absent on both sides: 1 each.
    assert _value(build_loss("dice"), labels, wrong) == pytest.approx(1 - (2 / 5 + 2 / 3 + 3) / 7, abs=1e-5)


def test_ce_dice_is_the_sum_of_both():
    labels = np.array([[[1, 2], [3, 4]]])
    logits = _logits_for(labels, 0.7)
    total = _value(build_loss("ce"), labels, logits) + _value(build_loss("dice"), labels, logits)
    assert _value(build_loss("ce_dice"), labels, logits) == pytest.approx(total, rel=1e-5)


def test_median_frequency_and_inverse_log_weights():
    pixels = [1000, 10, 20, 40, 0, 0, 0, 0]
    # Frequencies over non-void pixels: 1/7, 2/7, 4/7; median 2/7.
    assert class_weights(pixels, "median") == pytest.approx([0, 2, 1, 0.5, 0, 0, 0, 0])
    expected = [0] + [1 / math.log(1.02 + f) for f in (1 / 7, 2 / 7, 4 / 7)] + [0] * 4
    assert class_weights(pixels, "inverse_log") == pytest.approx(expected)
    assert class_weights(pixels, "none") == [0.0] + [1.0] * 7
    assert class_weights(pixels, "none", ignore_void=False) == [1.0] * 8


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown loss 'l2'; choose one of ce, dice, ce_dice, focal"):
        build_loss("l2")
    with pytest.raises(ValueError, match="unknown class weighting 'sqrt'"):
        class_weights([1] * 8, "sqrt")
    assert set(LOSSES) == {"ce", "dice", "ce_dice", "focal"}
