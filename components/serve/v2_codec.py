"""The Open Inference Protocol (KServe v2, REST) for cityseg models: infer requests in, answers out.

Pure functions, no HTTP. A request carries one input, either `image` (UINT8 [1, H, W, 3], RGB) or
`image_bytes` (BYTES [1], a PNG or JPEG), as JSON `data` or as raw bytes after the JSON header (the
binary-data extension: the `Inference-Header-Content-Length` header says where the JSON ends). The
answer holds `mask` (UINT8 [1, H, W], category ids at the input size) and, when asked for by name,
`probabilities` (FP32 [1, H, W, 8]), each as JSON `data` or as binary data.
"""

import base64
import binascii
import dataclasses
import json

import numpy as np

from cityseg.components.labels import NUM_CLASSES
from cityseg.components.serve.core import BadImageError, decode_image

HEADER_LENGTH = "Inference-Header-Content-Length"
IMAGE, IMAGE_BYTES = "image", "image_bytes"
MASK, PROBABILITIES = "mask", "probabilities"
INPUTS = {IMAGE: ("UINT8", [1, -1, -1, 3]), IMAGE_BYTES: ("BYTES", [1])}
OUTPUTS = {MASK: ("UINT8", [1, -1, -1]), PROBABILITIES: ("FP32", [1, -1, -1, NUM_CLASSES])}
_DATATYPES = {np.dtype(np.uint8): "UINT8", np.dtype(np.float32): "FP32"}
_WHAT_INPUTS = "'image' (UINT8 [1, H, W, 3]) or 'image_bytes' (BYTES [1], a PNG or JPEG)"


class ProtocolError(ValueError):
    """A request the protocol refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class InferRequest:
    """A checked infer request: the RGB image and, per requested output, whether it goes back as binary."""

    image: np.ndarray
    outputs: dict[str, bool]
    id: str | None = None


def model_metadata(name: str, version: str | None) -> dict:
    """The protocol's model metadata: name, versions, platform, inputs and outputs (-1: any size)."""
    return {
        "name": name,
        "versions": [version] if version else [],
        "platform": "tensorflow_keras",
        "inputs": [{"name": n, "datatype": d, "shape": s} for n, (d, s) in INPUTS.items()],
        "outputs": [{"name": n, "datatype": d, "shape": s} for n, (d, s) in OUTPUTS.items()],
    }


def parse_infer_request(body: bytes, header_length: str | None, max_pixels: int) -> InferRequest:
    """Check and decode an infer request (JSON, or JSON then binary data when `header_length` is set).

    Raises:
        ProtocolError: 400 for anything malformed, unknown or over `max_pixels`, with a message naming it.
    """
    header, binary = _split(body, header_length)
    try:
        request = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ProtocolError(400, f"the request is not valid JSON: {err}") from None
    if not isinstance(request, dict):
        raise ProtocolError(400, "the request must be a JSON object with 'inputs'")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ProtocolError(400, f"'inputs' must hold exactly one tensor: {_WHAT_INPUTS}")
    tensor = inputs[0]
    name = tensor.get("name")
    if not isinstance(name, str) or name not in INPUTS:
        raise ProtocolError(400, f"unknown input {name!r}; the model takes {_WHAT_INPUTS}")
    raw = _binary_part(tensor, name, binary)
    image = (_image if name == IMAGE else _image_bytes)(tensor, raw, max_pixels)
    request_id = request.get("id")
    return InferRequest(image, _outputs(request), request_id if isinstance(request_id, str) else None)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
        raise ProtocolError(400, f"{HEADER_LENGTH} is {header_length!r}, but the body has {len(body)} bytes")
    return body[: int(header_length)], body[int(header_length) :]


def _parameters(where: dict, what: str) -> dict:
    parameters = where.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError(400, f"{what}: 'parameters' must be a JSON object")
    return parameters


def _binary_part(tensor: dict, name: str, binary: bytes) -> bytes | None:
    size = _parameters(tensor, f"input {name!r}").get("binary_data_size")
    if size is None:
        if binary:
            raise ProtocolError(
                400, f"{len(binary)} bytes follow the JSON, but no input has binary_data_size"
            )
        return None
    if not isinstance(size, int) or size != len(binary):
        raise ProtocolError(
            400, f"input {name!r}: binary_data_size is {size!r}, but {len(binary)} bytes follow the JSON"
        )
    return binary


def _shape(tensor: dict, name: str) -> list[int]:
    datatype = INPUTS[name][0]
    if tensor.get("datatype") != datatype:
        raise ProtocolError(400, f"input {name!r} must be {datatype}, got {tensor.get('datatype')!r}")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError(
            400, f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}"
        )
    return shape


def _image(tensor: dict, raw: bytes | None, max_pixels: int) -> np.ndarray:
    shape = _shape(tensor, IMAGE)
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or 0 in shape:
        raise ProtocolError(400, f"input 'image' must have shape [1, H, W, 3] with H, W >= 1, got {shape}")
    height, width = shape[1:3]
    if height * width > max_pixels:
        raise ProtocolError(
            400,
            f"input 'image' is {width}x{height} = {height * width} pixels, over the limit of {max_pixels}",
        )
    count = height * width * 3
    if raw is not None:
        if len(raw) != count:
            raise ProtocolError(
                400, f"input 'image': shape {shape} needs {count} bytes of UINT8, got {len(raw)}"
            )
        return np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    try:
        values = np.asarray(tensor["data"]).ravel()
    except (KeyError, ValueError, TypeError, OverflowError):
        raise ProtocolError(400, "input 'image': 'data' must be a list of integers 0..255") from None
    if values.dtype.kind not in "iu" or values.size != count or values.min() < 0 or values.max() > 255:
        raise ProtocolError(400, f"input 'image': shape {shape} needs {count} integers 0..255 in 'data'")
    return values.astype(np.uint8).reshape(height, width, 3)


def _image_bytes(tensor: dict, raw: bytes | None, max_pixels: int) -> np.ndarray:
    shape = _shape(tensor, IMAGE_BYTES)
    if shape != [1]:
        raise ProtocolError(400, f"input 'image_bytes' must have shape [1], got {shape}")
    if raw is not None:
        # The binary form of a BYTES element is its length (4 bytes, little-endian), then the bytes.
        if len(raw) < 4 or int.from_bytes(raw[:4], "little") != len(raw) - 4:
            raise ProtocolError(
                400, "input 'image_bytes': binary data must be a 4-byte length, then the bytes"
            )
        encoded = raw[4:]
    else:
        data = tensor.get("data")
        if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], str)):
            raise ProtocolError(400, "input 'image_bytes': JSON 'data' must be one base64 string")
        try:
            encoded = base64.b64decode(data[0], validate=True)
        except binascii.Error as err:
            raise ProtocolError(400, f"input 'image_bytes': not base64: {err}") from None
    try:
        return decode_image(encoded, max_pixels)
    except BadImageError as err:
        raise ProtocolError(400, f"input 'image_bytes': {err}") from None


def _outputs(request: dict) -> dict[str, bool]:
    default_binary = _parameters(request, "the request").get("binary_data_output") is True
    outputs = request.get("outputs")
    if outputs is None:
        return {MASK: default_binary}
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
        raise ProtocolError(400, "'outputs' must be a non-empty list of {'name': ...} objects")
    chosen = {}
    for output in outputs:
        name = output.get("name")
        if not isinstance(name, str) or name not in OUTPUTS:
            raise ProtocolError(
                400, f"unknown output {name!r}; the model gives {', '.join(map(repr, OUTPUTS))}"
            )
        binary = _parameters(output, f"output {name!r}").get("binary_data", default_binary)
        chosen[name] = binary is True
    return chosen


def _json_data(array: np.ndarray) -> bytes:
    """A flat JSON list of the array's values, without a Python object per value for small ids."""
    flat = array.ravel()
    if flat.dtype == np.uint8 and flat.size and flat.max() < 10:
        # One digit per value: digits and commas interleaved, two bytes per value.
        text = np.full(2 * flat.size - 1, ord(","), np.uint8)
        text[0::2] = flat + ord("0")
        return text.tobytes()
    return json.dumps(flat.tolist())[1:-1].encode()


def encode_infer_response(
    model: str,
    version: str | None,
    request_id: str | None,
    tensors: dict[str, np.ndarray],
    binary: dict[str, bool],
) -> tuple[bytes, dict[str, str]]:
    """The answer's body and headers: a JSON header, then the binary outputs in order when there are any."""
    head = {"model_name": model, "model_version": version or ""}
    if request_id is not None:
        head["id"] = request_id
    entries, blobs = [], []
    for name, array in tensors.items():
        entry = {"name": name, "datatype": _DATATYPES[array.dtype], "shape": [1, *array.shape]}
        if binary[name]:
            blobs.append(array.tobytes())
            entry["parameters"] = {"binary_data_size": len(blobs[-1])}
            entries.append(json.dumps(entry).encode())
        else:
            entries.append(json.dumps(entry).encode()[:-1] + b', "data": [' + _json_data(array) + b"]}")
    header = json.dumps(head).encode()[:-1] + b', "outputs": [' + b", ".join(entries) + b"]}"
    if not blobs:
        return header, {"Content-Type": "application/json"}
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return b"".join([header, *blobs]), headers
