"""The Open Inference Protocol codec on hand-built requests: what it accepts, refuses and answers."""

import json

import numpy as np
import pytest

from cityseg.components.serve.v2_codec import ProtocolError, encode_infer_response, parse_infer_request


def request(tensor: dict, **extra) -> bytes:
    return json.dumps({"inputs": [tensor], **extra}).encode()


def test_json_image_in_binary_mask_out():
    pixels = list(range(18))
    body = request(
        {"name": "image", "datatype": "UINT8", "shape": [1, 2, 3, 3], "data": pixels},
        outputs=[{"name": "mask", "parameters": {"binary_data": True}}],
        id="a",
    )
    parsed = parse_infer_request(body, None, max_pixels=6)
    np.testing.assert_array_equal(parsed.image, np.arange(18, dtype=np.uint8).reshape(2, 3, 3))
    assert (parsed.outputs, parsed.id) == ({"mask": True}, "a")


def test_binary_image_after_the_json_header():
    header = request(
        {"name": "image", "datatype": "UINT8", "shape": [1, 1, 2, 3], "parameters": {"binary_data_size": 6}}
    )
    parsed = parse_infer_request(header + bytes(range(6)), str(len(header)), max_pixels=2)
    np.testing.assert_array_equal(parsed.image, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    assert parsed.outputs == {"mask": False}


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [
        (request({"name": {}, "datatype": "", "shape": [], "data": [None]}), None, "unknown input {}"),
        (
            request({"name": "image", "datatype": "UINT8", "shape": [1, 1, 1, 3], "data": [1.5, 2, 3]}),
            None,
            "input 'image': shape [1, 1, 1, 3] needs 3 integers",
        ),
        (
            request({"name": "image", "datatype": "UINT8", "shape": [1, 3, 1, 3], "data": [0] * 9}),
            None,
            "input 'image' is 1x3 = 3 pixels, over the limit of 2",
        ),
        (
            request(
                {"name": "image", "datatype": "UINT8", "shape": [1, 1, 1, 3], "data": [0] * 3},
                outputs=[{"name": []}],
            ),
            None,
            "unknown output []",
        ),
        (b"{}", "\u00b2", "Inference-Header-Content-Length is '\u00b2'"),
        (b"[" * 100_000 + b"]" * 100_000, None, "the request is not valid JSON"),
        (
            request({"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}),
            None,
            "input 'image_bytes': not base64",
        ),
    ],
    ids=[
        "dict-name",
        "float-data",
        "too-many-pixels",
        "list-output-name",
        "superscript-length",
        "deep-json",
        "not-base64",
    ],
)
def test_refusals_name_what_is_wrong(body, header_length, message):
    with pytest.raises(ProtocolError) as raised:
        parse_infer_request(body, header_length, max_pixels=2)
    assert (raised.value.status, str(raised.value)[: len(message)]) == (400, message)


def test_answer_with_a_json_mask_and_binary_probabilities():
    mask = np.array([[0, 7, 3]], np.uint8)
    probabilities = np.arange(24, dtype=np.float32).reshape(1, 3, 8)
    tensors = {"mask": mask, "probabilities": probabilities}
    body, headers = encode_infer_response("m", "2", "x", tensors, {"mask": False, "probabilities": True})
    length = int(headers["Inference-Header-Content-Length"])
    assert json.loads(body[:length]) == {
        "model_name": "m", "model_version": "2", "id": "x",
        "outputs": [
            {"name": "mask", "datatype": "UINT8", "shape": [1, 1, 3], "data": [0, 7, 3]},
            {
                "name": "probabilities", "datatype": "FP32", "shape": [1, 1, 3, 8],
                "parameters": {"binary_data_size": 96},
            },
        ],
    }  # fmt: skip
    np.testing.assert_array_equal(np.frombuffer(body[length:], np.float32).reshape(1, 3, 8), probabilities)
    wide, headers = encode_infer_response(
        "m", None, None, {"mask": np.array([[12, 255]], np.uint8)}, {"mask": False}
    )
    assert (json.loads(wide)["outputs"][0]["data"], headers) == (
        [12, 255],
        {"Content-Type": "application/json"},
    )
