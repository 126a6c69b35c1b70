"""Moving a registry alias under a running `cityseg serve`: it swaps the model and every request succeeds.

The segmenter and the object classifier follow their aliases alike (one `ModelWatcher` each).
"""

import contextlib
import threading
import time

import cv2
import numpy as np
import pytest
import requests

from cityseg.components.crops.schema import CLASSES
from tests.components.evaluate.builders import encode_categories, logged_model_folder
from tests.components.serve.conftest import (
    BIN,
    HEIGHT,
    WIDTH,
    constant_classifier,
    constant_model,
    start_serve,
)
from tests.conftest import free_port, stop_server


def _serve(model_args: list[str], mlflow_uri: str, tmp_path):
    """(server process, URL): `cityseg serve` polling the registry every 0.5 s, once /readyz answers."""
    port = free_port()
    argv = [
        str(BIN / "cityseg"), "serve", *model_args, "--port", str(port), "--poll-seconds", "0.5",
        "--tracking-uri", mlflow_uri, "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return start_serve(argv, url, tmp_path / "serve.log", timeout_s=180), url


def _ask_until(ask, stop: threading.Event, results: list) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            results.append(ask(session))


@contextlib.contextmanager
def _clients(ask, results: list, count: int = 3):
    """`count` threads appending `ask(session)` to `results` until the block ends."""
    stop = threading.Event()
    threads = [threading.Thread(target=_ask_until, args=(ask, stop, results)) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def _move_alias(name: str, version: str, served_version, results: list) -> None:
    """Point `name@champion` at `version`; return once `served_version()` is it and six more answers came."""
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)
    deadline = time.monotonic() + 120
    while served_version() != version:
        assert time.monotonic() < deadline, f"no swap to v{version} within 120 s"
        time.sleep(0.2)
    swapped_at = len(results)
    while len(results) < swapped_at + 6:
        assert time.monotonic() < deadline, f"no answers after the swap to v{version}"
        time.sleep(0.05)


@pytest.mark.slow
def test_alias_move_swaps_the_model_without_failing_a_request(mlflow_uri, registered_pair, tmp_path):
    import mlflow

    name, versions = registered_pair
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", versions[0])
    server, url = _serve(["--model", f"models:/{name}@champion"], mlflow_uri, tmp_path)
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 2], image[..., 1] = encode_categories(2), encode_categories(6)  # OpenCV writes BGR
    data = cv2.imencode(".png", image)[1].tobytes()

    def predict(session: requests.Session) -> tuple:
        response = session.post(f"{url}/predict", files={"file": ("x.png", data)}, timeout=60)
        mask = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
        values = tuple(np.unique(mask)) if mask is not None else ()
        return response.status_code, response.headers.get("x-model-version"), values

    def served_version() -> str | None:
        return requests.get(f"{url}/model", timeout=10).json()["version"]

    results = []
    try:
        assert served_version() == versions[0]
        with _clients(predict, results):
            time.sleep(1)
            _move_alias(name, versions[1], served_version, results)
    finally:
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        stop_server(server)

    assert [r for r in results if r[0] != 200] == []
    # Each answer is wholly one model's: versions[0] reads channel 0 (category 2), versions[1] channel 1 (6).
    assert {(version, values) for _, version, values in results} == {(versions[0], (2,)), (versions[1], (6,))}
    assert "cityseg_model_swaps 1.0" in metrics
    assert f'cityseg_model_info{{name="{name}",version="{versions[1]}"}} 1.0' in metrics


def _register_classifiers(name: str, classes: tuple[int, ...], tmp_path) -> list[str]:
    """One version of `name` per class, each a constant classifier, logged and registered as a push does."""
    import mlflow

    versions = []
    for index in classes:
        _, run_id = logged_model_folder(constant_classifier(index), tmp_path / f"classifier-{index}")
        versions.append(mlflow.register_model(f"runs:/{run_id}/model", name).version)
    return versions


@pytest.mark.slow
def test_objects_alias_move_swaps_the_classifier_without_failing_a_request(mlflow_uri, tmp_path):
    import mlflow

    name = "cityseg-objects"
    versions = _register_classifiers(name, (CLASSES.index("car"), CLASSES.index("bus")), tmp_path)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", versions[0])
    constant_model(1).save(tmp_path / "flat.keras")
    args = ["--model", str(tmp_path / "flat.keras"), "--objects-model", f"models:/{name}@champion"]
    server, url = _serve(args, mlflow_uri, tmp_path)
    crop = np.zeros((1, 16, 16, 3), np.uint8)
    body = {
        "inputs": [
            {"name": "crop", "datatype": "UINT8", "shape": [1, 16, 16, 3], "data": crop.ravel().tolist()}
        ]
    }

    def classify(session: requests.Session) -> tuple:
        response = session.post(f"{url}/v2/models/{name}/infer", json=body, timeout=60)
        if response.status_code != 200:
            return response.status_code, response.text, None
        answer = response.json()
        return 200, answer["model_version"], answer["parameters"]["predictions"][0]["class"]

    def served_version() -> str | None:
        (version,) = requests.get(f"{url}/v2/models/{name}", timeout=10).json()["versions"]
        return version

    results = []
    try:
        assert requests.get(f"{url}/readyz", timeout=10).json()["objects_version"] == versions[0]
        assert served_version() == versions[0]
        with _clients(classify, results):
            time.sleep(1)
            _move_alias(name, versions[1], served_version, results)
        model = requests.get(f"{url}/model", timeout=10).json()
    finally:
        stop_server(server)

    assert [r for r in results if r[0] != 200] == []
    assert {(version, label) for _, version, label in results} == {(versions[0], "car"), (versions[1], "bus")}
    assert model["objects"] == {
        "name": name, "ref": f"models:/{name}@champion", "loaded": True, "version": versions[1],
        "swaps": 1, "registry_version": versions[1], "failed_swaps": 0, "last_error": None,
    }  # fmt: skip
    assert (model["version"], model["swaps"]) == (None, 0)  # the segmenter, a file, never swaps
