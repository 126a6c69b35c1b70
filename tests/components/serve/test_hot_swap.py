"""Moving the registry alias under a running `cityseg serve`: it swaps models and every request succeeds."""

import threading
import time

import cv2
import numpy as np
import pytest
import requests

from tests.components.evaluate.builders import encode_categories
from tests.components.serve.conftest import BIN, HEIGHT, WIDTH
from tests.conftest import free_port, start_server, stop_server


def _predict_until(url: str, data: bytes, stop: threading.Event, results: list) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            response = session.post(f"{url}/predict", files={"file": ("x.png", data)}, timeout=60)
            mask = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
            values = tuple(np.unique(mask)) if mask is not None else ()
            results.append((response.status_code, response.headers.get("x-model-version"), values))


@pytest.mark.slow
def test_alias_move_swaps_the_model_without_failing_a_request(mlflow_uri, registered_pair, tmp_path):
    import mlflow

    name, versions = registered_pair
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", versions[0])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "cityseg"), "serve", "--model", f"models:/{name}@champion", "--port", str(port),
        "--poll-seconds", "0.5", "--tracking-uri", mlflow_uri, "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    server = start_server(argv, f"{url}/readyz", tmp_path / "serve.log", timeout_s=180)
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 2], image[..., 1] = encode_categories(2), encode_categories(6)  # OpenCV writes BGR
    data = cv2.imencode(".png", image)[1].tobytes()
    stop, results = threading.Event(), []
    clients = [threading.Thread(target=_predict_until, args=(url, data, stop, results)) for _ in range(3)]
    try:
        assert requests.get(f"{url}/model", timeout=10).json()["version"] == versions[0]
        for thread in clients:
            thread.start()
        time.sleep(1)
        client.set_registered_model_alias(name, "champion", versions[1])
        deadline = time.monotonic() + 120
        while requests.get(f"{url}/model", timeout=10).json()["version"] != versions[1]:
            assert time.monotonic() < deadline, f"no swap to v{versions[1]} within 120 s"
            time.sleep(0.2)
        swapped_at = len(results)
        while len(results) < swapped_at + 6:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in clients:
            if thread.ident is not None:  # an assertion before the clients started leaves some unstarted
                thread.join(60)
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        stop_server(server)

    assert [r for r in results if r[0] != 200] == []
    # Each answer is wholly one model's: versions[0] reads channel 0 (category 2), versions[1] channel 1 (6).
    assert {(version, values) for _, version, values in results} == {(versions[0], (2,)), (versions[1], (6,))}
    assert "cityseg_model_swaps 1.0" in metrics
    assert f'cityseg_model_info{{name="{name}",version="{versions[1]}"}} 1.0' in metrics
