import io

import numpy as np
import pytest

from cityseg.components.evaluate.frame_matrices import (
    CLEAN,
    corruption_of,
    from_npz,
    setting_key,
    to_npz,
)
from cityseg.components.metrics import confusion_matrix, frame_confusions


def _npz(**arrays) -> bytes:
    """An npz written by hand, past `to_npz`'s checks."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_one_confusion_matrix_per_frame_on_hand_built_masks():
    true = np.array([[[1, 1], [2, 0]], [[7, 7], [7, 3]]], np.uint8)
    predicted = np.array([[[1, 2], [2, 0]], [[7, 7], [6, 3]]], np.uint8)
    stack = frame_confusions(true, predicted)
    assert stack.dtype == np.int64 and stack.shape == (2, 8, 8)
    first, second = np.zeros((8, 8), np.int64), np.zeros((8, 8), np.int64)
    first[1, 1] = first[1, 2] = first[2, 2] = first[0, 0] = 1
    second[7, 7], second[7, 6], second[3, 3] = 2, 1, 1
    assert np.array_equal(stack[0], first) and np.array_equal(stack[1], second)


def test_frames_equal_metrics_confusion_matrix_per_image_and_sum_to_it():
    rng = np.random.default_rng(4)
    true, predicted = rng.integers(0, 8, (5, 6, 10)), rng.integers(0, 8, (5, 6, 10))
    stack = frame_confusions(true, predicted)
    for index in range(5):
        assert np.array_equal(stack[index], confusion_matrix(true[index], predicted[index]))
    assert np.array_equal(stack.sum(axis=0), confusion_matrix(true, predicted))


def test_bad_masks_are_named():
    with pytest.raises(ValueError, match=r"differ in shape: \(2, 3\) vs \(2, 4\)"):
        frame_confusions(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"predicted mask has values outside 0\.\.7"):
        frame_confusions(np.zeros((1, 2)), np.array([[0, 8]]))


def test_npz_round_trip_and_keys():
    stacks = {
        CLEAN: np.arange(128, dtype=np.int64).reshape(2, 8, 8),
        setting_key("gaussian_noise", 3): np.ones((2, 8, 8), np.int64),
    }
    back = from_npz(to_npz(stacks), "somewhere")
    assert back.keys() == {"clean", "gaussian_noise_3"}
    assert all(np.array_equal(back[key], stacks[key]) and back[key].dtype == np.int64 for key in stacks)
    assert corruption_of("gaussian_noise_3") == ("gaussian_noise", 3)


def test_malformed_frame_confusions_are_named():
    with pytest.raises(ValueError, match="run x: not a readable npz file"):
        from_npz(b"nope", "run x")
    with pytest.raises(ValueError, match="run x: no 'clean' frame confusions"):
        from_npz(_npz(fog_1=np.zeros((1, 8, 8), np.int64)), "run x")
    with pytest.raises(ValueError, match=r"run x: 'fog_1' must be int64 \(2, 8, 8\), got int64 \(1, 8, 8\)"):
        from_npz(_npz(clean=np.zeros((2, 8, 8), np.int64), fog_1=np.zeros((1, 8, 8), np.int64)), "run x")
    with pytest.raises(ValueError, match="run x: 'fog' is not a <corruption>_<severity> key"):
        from_npz(_npz(clean=np.zeros((2, 8, 8), np.int64), fog=np.zeros((2, 8, 8), np.int64)), "run x")
