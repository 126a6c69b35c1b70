"""The served model: the evaluator's resizing, loading in the background, following a registry alias."""

import time

import numpy as np
import pytest

from cityseg.components import inference
from cityseg.components.serve.model_watcher import ModelWatcher, mask_predictor
from tests.components.evaluate.builders import decoder_model, encode_categories
from tests.components.serve.conftest import HEIGHT, WIDTH


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_predictor_matches_the_evaluator_at_any_size():
    model = decoder_model(16, 32)
    predict = mask_predictor(model)
    rng = np.random.default_rng(0)
    for height, width in [(16, 32), (37, 91), (5, 3)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        evaluator = inference.predictor(model, (height, width))
        expected = evaluator(image[None].astype(np.float32) / 255).numpy()[0]
        mask = predict(image)
        assert mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, expected)


def test_predictor_scales_the_mask_back_to_the_image_size():
    categories = np.zeros((48, 96), np.uint8)
    categories[:, 48:] = 5
    image = np.zeros((48, 96, 3), np.uint8)
    image[..., 0] = encode_categories(categories)
    mask = mask_predictor(decoder_model(16, 32))(image)
    np.testing.assert_array_equal(mask, categories)


def test_predictor_of_a_model_without_fixed_size_runs_at_the_image_size():
    categories = np.random.default_rng(1).integers(0, 8, (7, 11)).astype(np.uint8)
    image = np.zeros((7, 11, 3), np.uint8)
    image[..., 2] = encode_categories(categories)
    np.testing.assert_array_equal(mask_predictor(decoder_model(channel=2))(image), categories)


def test_watcher_loads_a_file_in_the_background_and_stops(flat_model_path):
    watcher = ModelWatcher(str(flat_model_path), poll_seconds=0.1)
    assert watcher.current is None
    watcher.start()
    try:
        wait_for(lambda: watcher.current is not None)
        assert watcher.current.info()["name"] == "constant_1"
        assert (watcher.current.version, watcher.current.input_size, watcher.swaps) == (None, (32, 64), 0)
        np.testing.assert_array_equal(watcher.current.predict(np.zeros((3, 4, 3), np.uint8)), np.ones((3, 4)))
    finally:
        watcher.stop()
    assert watcher.refresh() is False  # a file reference never changes


def test_watcher_reports_a_failed_load_and_keeps_retrying(tmp_path):
    watcher = ModelWatcher(str(tmp_path / "missing.keras"), poll_seconds=0.05)
    watcher.start()
    try:
        wait_for(lambda: watcher.error is not None)
        assert watcher.error == f"ValueError: {tmp_path / 'missing.keras'}: no such model file or folder"
        assert watcher.current is None
        assert watcher._thread.is_alive()
    finally:
        watcher.stop()
    assert not watcher._thread.is_alive()


def test_watcher_follows_the_alias(mlflow_uri, registered_pair, tmp_path):
    import mlflow

    name, versions = registered_pair
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", versions[0])
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 0], image[..., 1] = encode_categories(2), encode_categories(6)

    watcher = ModelWatcher(f"models:/{name}@champion", poll_seconds=1, cache_dir=str(tmp_path / "cache"))
    assert watcher.refresh() is True
    first = watcher.current
    assert (first.name, first.version, first.ref) == (name, versions[0], f"models:/{name}@champion")
    assert (first.predict(image) == 2).all()
    assert watcher.refresh() is False

    client.set_registered_model_alias(name, "champion", versions[1])
    assert watcher.refresh() is True
    assert (watcher.current.version, watcher.swaps) == (versions[1], 1)
    assert (watcher.current.predict(image) == 6).all()
    assert (first.predict(image) == 2).all()  # a request holding the old model still finishes on it


def test_watcher_names_a_missing_alias(mlflow_uri, registered_pair, tmp_path):
    name, _ = registered_pair
    watcher = ModelWatcher(f"models:/{name}@nobody", poll_seconds=1, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=f"registered model '{name}' has no alias @nobody"):
        watcher.refresh()
