"""Classification scores, class weights and augmentations on hand-built inputs."""

import numpy as np
import pytest

from cityseg.components.crops.schema import CLASSES
from cityseg.components.objects.data import class_weights
from cityseg.components.objects.evaluate import flat_metrics
from cityseg.components.objects.scores import classification_scores

PERSON, RIDER, CAR, TRUCK = 0, 1, 2, 3


def test_scores_of_a_hand_counted_confusion():
    # 4 persons (3 right, 1 called rider), 2 riders (both right), 2 cars (1 right, 1 called truck).
    y_true = np.array([PERSON] * 4 + [RIDER] * 2 + [CAR] * 2)
    y_pred = np.array([PERSON, PERSON, PERSON, RIDER, RIDER, RIDER, CAR, TRUCK])
    scores = classification_scores(y_true, y_pred)
    assert scores["accuracy"] == pytest.approx(6 / 8)
    person, rider, car, truck = (scores["per_class"][CLASSES[i]] for i in (PERSON, RIDER, CAR, TRUCK))
    assert (person["precision"], person["recall"]) == (1.0, 0.75)
    assert (rider["precision"], rider["recall"]) == pytest.approx((2 / 3, 1.0))
    assert (car["precision"], car["recall"]) == (1.0, 0.5)
    # Trucks were predicted but never there: precision 0, no recall, and no part in macro-F1.
    assert (truck["precision"], truck["recall"], truck["f1"], truck["support"]) == (0.0, None, None, 0)
    f1s = [2 * 0.75 / 1.75, 2 * (2 / 3) / (5 / 3), 2 * 0.5 / 1.5]
    assert scores["macro_f1"] == pytest.approx(np.mean(f1s))
    assert scores["min_recall"] == 0.5
    assert scores["confusion_matrix"][PERSON][:2] == [3, 1]
    assert scores["confusion_matrix"][CAR][CAR : TRUCK + 1] == [1, 1]
    flat = flat_metrics(scores)
    assert flat["recall_car"] == 0.5 and "recall_truck" not in flat and flat["precision_truck"] == 0.0


def test_balanced_weights_make_every_class_count_as_much_as_the_rest():
    counts = dict.fromkeys(CLASSES, 10) | {"car": 40}
    manifest = {"splits": {"train": {"class_counts": counts}}}
    weights = class_weights(manifest, "balanced")
    total = sum(counts.values())
    assert weights[CAR] == pytest.approx(total / (8 * 40))
    assert weights[PERSON] == pytest.approx(total / (8 * 10))
    assert sum(weights[i] * counts[name] for i, name in enumerate(CLASSES)) == pytest.approx(total)
    assert class_weights(manifest, "none") is None


def test_augmentations_keep_shape_and_range_and_repeat_with_their_seed():
    import tensorflow as tf

    from cityseg.components.objects.data import augment

    image = tf.constant(np.random.default_rng(0).integers(0, 256, (16, 16, 3)), tf.uint8)
    names = ("flip", "shift", "color", "scale")
    first = augment(image, tf.constant([1, 2], tf.int64), names).numpy()
    again = augment(image, tf.constant([1, 2], tf.int64), names).numpy()
    other = augment(image, tf.constant([1, 3], tf.int64), names).numpy()
    assert first.shape == (16, 16, 3) and first.min() >= 0 and first.max() <= 255
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(augment(image, tf.constant([1, 2], tf.int64), ()).numpy(), image.numpy())
