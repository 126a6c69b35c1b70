"""A version whose artifacts are missing: the swap fails visibly, nothing bad is cached, it recovers."""

import time

import cv2
import numpy as np
import pytest
import requests

from tests.components.evaluate.builders import decoder_model, encode_categories, logged_model_folder
from tests.components.serve.conftest import BIN, HEIGHT, WIDTH
from tests.conftest import free_port, start_server, stop_server


def wait_for(url: str, condition, what: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while not condition(body := requests.get(url, timeout=10).json()):
        assert time.monotonic() < deadline, f"{what} within {timeout_s}s; last answer {body}"
        time.sleep(0.3)
    return body


def register(name: str, channel: int, artifacts, tmp_path) -> str:
    """A new version of `name` decoding `channel`, its artifacts in the local folder `artifacts`."""
    import mlflow

    experiment = f"{name}-{artifacts.name}"
    mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    _, run_id = logged_model_folder(
        decoder_model(HEIGHT, WIDTH, channel=channel), tmp_path / f"m{channel}", experiment=experiment
    )
    return mlflow.register_model(f"runs:/{run_id}/model", name).version


@pytest.mark.slow
def test_missing_artifacts_fail_the_swap_visibly_and_recover_once_restored(mlflow_uri, tmp_path):
    import mlflow

    name = "serve-failed-swap"
    first = register(name, 0, tmp_path / "artifacts-1", tmp_path)
    second = register(name, 1, tmp_path / "artifacts-2", tmp_path)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", first)
    cache = tmp_path / "cache"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "cityseg"), "serve", "--model", f"models:/{name}@champion", "--port", str(port),
        "--poll-seconds", "0.5", "--tracking-uri", mlflow_uri, "--cache-dir", str(cache),
    ]  # fmt: skip
    server = start_server(argv, f"{url}/readyz", tmp_path / "serve.log", timeout_s=180)
    try:
        # Version 2's artifacts vanish, then the alias moves to it.
        (tmp_path / "artifacts-2").rename(tmp_path / "artifacts-2.away")
        client.set_registered_model_alias(name, "champion", second)
        failed = wait_for(f"{url}/model", lambda b: b["failed_swaps"] >= 2, "no failed swap reported")
        assert (failed["version"], failed["registry_version"]) == ("1", "2")
        assert f"models:/{name}/2" in failed["last_error"]
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200  # version 1 still serves
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert not [p for p in cache.rglob("*") if p.parent.name == name and p.name == "2"]  # nothing cached

        (tmp_path / "artifacts-2.away").rename(tmp_path / "artifacts-2")
        swapped = wait_for(
            f"{url}/model", lambda b: b["version"] == "2", "no swap after the artifacts came back"
        )
        image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        image[..., 1] = encode_categories(6)  # version 2 reads channel 1
        data = cv2.imencode(".png", image[..., ::-1])[1].tobytes()
        mask = requests.post(f"{url}/predict", files={"file": ("x.png", data)}, timeout=30).content
    finally:
        stop_server(server)
    failures = float(
        next(
            line.split()[1]
            for line in metrics.splitlines()
            if line.startswith("cityseg_model_swap_failures ")
        )
    )
    assert failures >= 2
    assert (swapped["registry_version"], swapped["last_error"], swapped["swaps"]) == ("2", None, 1)
    assert (cv2.imdecode(np.frombuffer(mask, np.uint8), cv2.IMREAD_UNCHANGED) == 6).all()
