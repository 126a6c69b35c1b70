"""The object classifier on a running `cityseg serve`, by name over the Open Inference Protocol."""

import json

import numpy as np
import pytest
import requests

from cityseg.components.crops.instances import square_crop
from cityseg.components.crops.schema import CLASSES
from tests.components.serve.conftest import BIN, start_serve
from tests.conftest import free_port, stop_server

SIZE, MARGIN = 16, 0.25


def write_classifier(folder):
    """A classifier with logit 20 c x (mean red / 255) for class c: redder crops, higher classes."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), name="crop")
    kernel = np.zeros((3, len(CLASSES)), np.float32)
    kernel[0] = np.arange(len(CLASSES)) * 20.0 / 255.0
    dense = keras.layers.Dense(len(CLASSES), kernel_initializer=keras.initializers.Constant(kernel))
    folder.mkdir()
    keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs))).save(folder / "model.keras")
    (folder / "train_info.json").write_text(json.dumps({"crop_margin": MARGIN}))


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("objects-serve")
    write_classifier(root / "classifier")
    from tests.components.serve.conftest import constant_model

    constant_model(1).save(root / "flat.keras")
    port = free_port()
    argv = [
        str(BIN / "cityseg"), "serve", "--model", str(root / "flat.keras"), "--port", str(port),
        "--objects-model", str(root / "classifier"), "--max-megapixels", "0.01",
    ]  # fmt: skip
    process = start_serve(argv, f"http://127.0.0.1:{port}", root / "serve.log")
    yield f"http://127.0.0.1:{port}/v2/models"
    stop_server(process)


def _infer(url: str, inputs: list[dict]) -> requests.Response:
    return requests.post(f"{url}/cityseg-objects/infer", json={"id": "r1", "inputs": inputs}, timeout=60)


def test_a_crop_gets_class_probabilities(url):
    dark, bright = np.zeros((SIZE, SIZE, 3), np.uint8), np.full((SIZE, SIZE, 3), 255, np.uint8)
    crops = np.stack([dark, bright])
    response = _infer(
        url,
        [{"name": "crop", "datatype": "UINT8", "shape": list(crops.shape), "data": crops.ravel().tolist()}],
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_name"] == "cityseg-objects" and answer["id"] == "r1"
    (output,) = answer["outputs"]
    probabilities = np.asarray(output["data"]).reshape(output["shape"])
    assert output["shape"] == [2, 8] and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(probabilities[0], 1 / 8, atol=1e-6)  # all logits 0
    predictions = answer["parameters"]["predictions"]
    assert predictions[1]["class"] == "bicycle" and predictions[1]["probability"] > 0.99


def test_an_image_and_a_box_are_cut_as_the_crops_step_cuts_them(url):
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:20, 30:36, 0] = 200
    box = [30, 10, 35, 19]
    expected = square_crop(image, tuple(box), MARGIN, SIZE)
    red = expected[..., 0].mean() / 255.0
    logits = np.arange(8) * 20.0 * red
    response = _infer(
        url,
        [
            {"name": "image", "datatype": "UINT8", "shape": [1, 40, 60, 3], "data": image.ravel().tolist()},
            {"name": "box", "datatype": "INT64", "shape": [4], "data": box},
        ],
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        response.json()["outputs"][0]["data"], np.exp(logits) / np.exp(logits).sum(), atol=1e-5
    )


def test_metadata_and_errors_name_what_is_wrong(url):
    metadata = requests.get(f"{url}/cityseg-objects", timeout=30).json()
    assert metadata["inputs"][0] == {"name": "crop", "datatype": "UINT8", "shape": [-1, SIZE, SIZE, 3]}
    assert metadata["parameters"]["classes"] == list(CLASSES)
    bad_box = _infer(
        url,
        [
            {"name": "image", "datatype": "UINT8", "shape": [1, 4, 4, 3], "data": [0] * 48},
            {"name": "box", "datatype": "INT64", "shape": [4], "data": [0, 0, 9, 9]},
        ],
    )
    assert bad_box.status_code == 400 and "input 'box': box [0, 0, 9, 9] is not" in bad_box.json()["error"]
    too_big = _infer(
        url, [{"name": "crop", "datatype": "UINT8", "shape": [1, 100, 101, 3], "data": [0] * 30300}]
    )
    assert too_big.status_code == 400 and "more than this server's limit" in too_big.json()["error"]
    missing = _infer(url, [{"name": "box", "datatype": "INT64", "shape": [4], "data": [0, 0, 1, 1]}])
    assert missing.status_code == 400 and "give input 'crop', or 'image' and 'box'" in missing.json()["error"]


def test_readiness_and_model_report_the_classifier(url):
    server = url.removesuffix("/v2/models")
    assert requests.get(f"{url}/cityseg-objects/ready", timeout=10).json() == {
        "name": "cityseg-objects",
        "ready": True,
    }
    assert requests.get(f"{server}/v2/health/ready", timeout=10).json() == {"ready": True}
    assert requests.get(f"{server}/readyz", timeout=10).json() == {
        "status": "ready", "model": "constant_1", "version": None,
        "objects_model": "cityseg-objects", "objects_ready": True, "objects_version": None,
        "objects_error": None,
    }  # fmt: skip
    objects = requests.get(f"{server}/model", timeout=10).json()["objects"]
    assert objects.pop("ref").endswith("classifier")
    assert objects == {
        "name": "cityseg-objects", "loaded": True, "version": None, "swaps": 0,
        "registry_version": None, "failed_swaps": 0, "last_error": None,
    }  # fmt: skip
