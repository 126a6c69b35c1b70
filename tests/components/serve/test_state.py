"""The API's shared state: the model a route gets, and the 404 and 503 answers while there is none."""

import contextlib
import time

import numpy as np
import pytest
from fastapi import HTTPException

from cityseg.components.serve.config import ServeConfig
from cityseg.components.serve.state import ServeState
from tests.components.serve.conftest import classifier_folder, constant_classifier


def _state(tmp_path, model: str, objects: str | None = None) -> ServeState:
    config = ServeConfig(
        model=model, objects_model=objects, poll_seconds=0.05, cache_dir=str(tmp_path / "cache")
    )
    return ServeState.for_config(config, None)


def _refused(call) -> tuple[int, str, dict | None]:
    with pytest.raises(HTTPException) as caught:
        call()
    return caught.value.status_code, caught.value.detail, caught.value.headers


@contextlib.contextmanager
def _running(state: ServeState, loaded):
    """The state's watchers started, once `loaded(state)` holds; stopped on exit."""
    for watcher in state.watchers():
        watcher.start()
    try:
        deadline = time.monotonic() + 60
        while not loaded(state):
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)
        yield state
    finally:
        for watcher in state.watchers():
            watcher.stop()


def test_without_objects_model_the_classifier_is_404(tmp_path):
    state = _state(tmp_path, "flat.keras")
    assert state.objects is None and state.watchers() == [state.watcher]
    assert _refused(state.classifier) == (
        404,
        "this server serves no object classifier (start it with --objects-model)",
        None,
    )


def test_a_classifier_still_loading_is_503_naming_it(tmp_path):
    state = _state(tmp_path, "flat.keras", "models:/cityseg-objects@champion")
    assert _refused(state.classifier) == (
        503,
        "the object classifier models:/cityseg-objects@champion is not loaded yet",
        {"Retry-After": "5"},
    )
    assert _refused(state.ready)[:2] == (503, "the model flat.keras is not loaded yet")


def test_a_classifier_that_does_not_load_names_its_reference_and_does_not_hold_readiness_back(
    tmp_path, flat_model_path
):
    """The InferenceService rolls out the segmenter on /readyz: a missing classifier must not stop it."""
    missing = tmp_path / "missing"
    state = _state(tmp_path, str(flat_model_path), str(missing))
    error = f"ValueError: {missing}: no such model file or folder"
    with _running(state, lambda s: s.watcher.current is not None and s.objects.error is not None):
        expected = f"the object classifier {missing} is not loaded yet: {error}"
        assert _refused(state.classifier) == (503, expected, {"Retry-After": "5"})
        assert state.ready() == {
            "status": "ready",
            "model": "constant_1",
            "version": None,
            "objects_model": "cityseg-objects",
            "objects_ready": False,
            "objects_version": None,
            "objects_error": error,
        }


def test_ready_names_both_models_once_both_are_loaded(tmp_path, flat_model_path):
    folder = classifier_folder(constant_classifier(2), tmp_path / "classifier", margin=0.25)
    state = _state(tmp_path, str(flat_model_path), str(folder))
    with _running(state, lambda s: s.watcher.current is not None and s.objects.current is not None):
        assert state.ready() == {
            "status": "ready",
            "model": "constant_1",
            "version": None,
            "objects_model": "cityseg-objects",
            "objects_ready": True,
            "objects_version": None,
            "objects_error": None,
        }
        classifier = state.classifier()
        assert (classifier.ref, classifier.size, classifier.margin) == (str(folder), 16, 0.25)
        assert classifier.probabilities(np.zeros((1, 16, 16, 3), np.uint8)).argmax() == 2
        assert state.objects.status() == {
            "swaps": 0,
            "registry_version": None,
            "failed_swaps": 0,
            "last_error": None,
        }
