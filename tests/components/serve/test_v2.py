"""The Open Inference Protocol on a running `cityseg serve`, driven by tritonclient's own HTTP client."""

import base64
import json

import cv2
import numpy as np
import pytest
import requests

from tests.components.evaluate.builders import decoder_model
from tests.components.serve.conftest import BIN, HEIGHT, WIDTH
from tests.conftest import free_port, start_server, stop_server

MODEL = "decoder_ch0"
# An odd size that the 32x64 model's resizing does not divide, with content the mask depends on.
ODD = (301, 517)


@pytest.fixture(scope="module")
def v2_url(tmp_path_factory):
    """`cityseg serve` with a model whose mask follows the image's red channel, 8 MiB uploads, 1 MP."""
    root = tmp_path_factory.mktemp("v2")
    decoder_model(HEIGHT, WIDTH, channel=0).save(root / "decoder.keras")
    port = free_port()
    argv = [
        str(BIN / "cityseg"), "serve", "--model", str(root / "decoder.keras"), "--port", str(port),
        "--max-upload-mb", "8", "--max-megapixels", "1", "--max-probability-megapixels", "0.1",
    ]  # fmt: skip
    process = start_server(argv, f"http://127.0.0.1:{port}/readyz", root / "serve.log", timeout_s=120)
    yield f"127.0.0.1:{port}"
    stop_server(process)


@pytest.fixture
def client(v2_url):
    import tritonclient.http as triton

    with triton.InferenceServerClient(v2_url) as client:
        yield client


@pytest.fixture(scope="module")
def street() -> np.ndarray:
    """A 301x517 RGB image of smooth gradients and blocks, so the mask has every category in it."""
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, (ODD[0] // 20 + 1, ODD[1] // 20 + 1, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((20, 20, 1), np.uint8))[: ODD[0], : ODD[1]]


def predict_ids(v2_url: str, image: np.ndarray) -> np.ndarray:
    data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
    response = requests.post(
        f"http://{v2_url}/predict", params={"format": "ids"}, files={"file": ("x.png", data)}, timeout=60
    )
    assert response.status_code == 200, response.text
    return cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)


def image_input(image: np.ndarray, binary: bool):
    import tritonclient.http as triton

    tensor = triton.InferInput("image", [1, *image.shape], "UINT8")
    return tensor.set_data_from_numpy(image[None], binary_data=binary)


def test_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("another_model")
    assert not client.is_model_ready(MODEL, model_version="7")
    server = client.get_server_metadata()
    assert (server["name"], server["extensions"]) == ("cityseg", ["binary_tensor_data"])
    assert client.get_model_metadata(MODEL) == {
        "name": MODEL,
        "versions": [],
        "platform": "tensorflow_keras",
        "inputs": [
            {"name": "image", "datatype": "UINT8", "shape": [1, -1, -1, 3]},
            {"name": "image_bytes", "datatype": "BYTES", "shape": [1]},
        ],
        "outputs": [
            {"name": "mask", "datatype": "UINT8", "shape": [1, -1, -1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [1, -1, -1, 8]},
        ],
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_image_equals_predict_pixel_for_pixel(client, v2_url, street, binary):
    import tritonclient.http as triton

    expected = predict_ids(v2_url, street)
    assert len(np.unique(expected)) == 8
    outputs = [triton.InferRequestedOutput("mask", binary_data=binary)]
    result = client.infer(MODEL, [image_input(street, binary)], outputs=outputs, request_id="r1")
    mask = result.as_numpy("mask")
    assert (mask.dtype, mask.shape) == (np.uint8, (1, *ODD))
    np.testing.assert_array_equal(mask[0], expected)
    assert result.get_response()["id"] == "r1"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_image_bytes_equals_predict(client, v2_url, street, binary):
    import tritonclient.http as triton

    png = cv2.imencode(".png", cv2.cvtColor(street, cv2.COLOR_RGB2BGR))[1].tobytes()
    tensor = triton.InferInput("image_bytes", [1], "BYTES")
    # JSON carries bytes as text, so the JSON form takes the PNG base64-encoded.
    tensor.set_data_from_numpy(
        np.array([png if binary else base64.b64encode(png)], object), binary_data=binary
    )
    mask = client.infer(MODEL, [tensor]).as_numpy("mask")  # no outputs named: every output binary
    np.testing.assert_array_equal(mask[0], predict_ids(v2_url, street))


def test_probabilities_when_asked_by_name(client, street):
    import tritonclient.http as triton

    small = np.ascontiguousarray(street[:150, :200])
    outputs = [triton.InferRequestedOutput(name) for name in ("mask", "probabilities")]
    result = client.infer(MODEL, [image_input(small, True)], outputs=outputs, model_version="")
    probabilities, mask = result.as_numpy("probabilities"), result.as_numpy("mask")
    assert (probabilities.dtype, probabilities.shape) == (np.float32, (1, 150, 200, 8))
    np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(-1), mask)


def infer_error(client, inputs, model=MODEL, outputs=None, version=""):
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, inputs, outputs=outputs, model_version=version)
    return int(raised.value.status()), raised.value.message()


def test_errors_name_what_is_wrong(client, street):
    import tritonclient.http as triton

    good = [image_input(np.zeros((4, 5, 3), np.uint8), True)]
    assert infer_error(client, good, model="nope") == (
        404,
        f"unknown model 'nope'; this server serves '{MODEL}'",
    )
    assert infer_error(client, good, version="3")[0] == 404
    wrong_type = triton.InferInput("image", [1, 4, 5, 3], "FP32").set_data_from_numpy(
        np.zeros((1, 4, 5, 3), np.float32)
    )
    assert infer_error(client, [wrong_type]) == (400, "input 'image' must be UINT8, got 'FP32'")
    rgba = triton.InferInput("image", [1, 4, 5, 4], "UINT8").set_data_from_numpy(
        np.zeros((1, 4, 5, 4), np.uint8)
    )
    assert infer_error(client, [rgba]) == (
        400, "input 'image' must have shape [1, H, W, 3] with H, W >= 1, got [1, 4, 5, 4]",
    )  # fmt: skip
    other = triton.InferInput("pixels", [1, 4, 5, 3], "UINT8").set_data_from_numpy(
        np.zeros((1, 4, 5, 3), np.uint8)
    )
    assert infer_error(client, [other])[1].startswith("unknown input 'pixels'; the model takes 'image'")
    bomb = cv2.imencode(".png", np.zeros((1001, 1000), np.uint8))[1].tobytes()
    packed = triton.InferInput("image_bytes", [1], "BYTES").set_data_from_numpy(np.array([bomb], object))
    assert infer_error(client, [packed]) == (
        400, "input 'image_bytes': the image is 1000x1001 = 1001000 pixels, over the limit of 1000000",
    )  # fmt: skip
    text = triton.InferInput("image_bytes", [1], "BYTES").set_data_from_numpy(
        np.array([b"not an image"], object)
    )
    assert infer_error(client, [text]) == (400, "input 'image_bytes': not a PNG or JPEG image")
    outputs = [triton.InferRequestedOutput("logits")]
    assert infer_error(client, good, outputs=outputs)[1].startswith("unknown output 'logits'")
    too_big = [image_input(street, True)]
    probabilities = [triton.InferRequestedOutput("probabilities")]
    assert infer_error(client, too_big, outputs=probabilities) == (
        400, f"'probabilities' is given for images up to 100000 pixels, not {ODD[0] * ODD[1]}",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b"{not json", {}, "the request is not valid JSON"),
        (b"[]", {}, "the request must be a JSON object with 'inputs'"),
        (json.dumps({"inputs": []}).encode(), {}, "'inputs' must hold exactly one tensor"),
        (
            json.dumps(
                {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 1, 2, 3], "data": [1, 2]}]}
            ).encode(),
            {},
            "input 'image': shape [1, 1, 2, 3] needs 6 integers 0..255 in 'data'",
        ),
        (
            json.dumps(
                {
                    "inputs": [
                        {"name": "image", "datatype": "UINT8", "shape": [1, 1, 1, 3], "data": [1, 2, 256]}
                    ]
                }
            ).encode(),
            {},
            "input 'image': shape [1, 1, 1, 3] needs 3 integers 0..255 in 'data'",
        ),
        (
            b"{}",
            {"Inference-Header-Content-Length": "99"},
            "Inference-Header-Content-Length is '99', but the body has 2 bytes",
        ),
    ],
    ids=["not-json", "not-object", "no-inputs", "short-data", "out-of-range", "bad-header-length"],
)
def test_malformed_requests_are_400_with_the_protocols_error(v2_url, body, headers, error):
    response = requests.post(
        f"http://{v2_url}/v2/models/{MODEL}/infer", data=body, headers=headers, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)


def test_not_found_routes_answer_the_protocols_error(v2_url):
    response = requests.get(f"http://{v2_url}/v2/models/nope", timeout=10)
    assert (response.status_code, response.json()) == (
        404,
        {"error": f"unknown model 'nope'; this server serves '{MODEL}'"},
    )
    assert requests.get(f"http://{v2_url}/v2/models/{MODEL}/versions/1/ready", timeout=10).status_code == 404
