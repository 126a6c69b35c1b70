"""The object classifier over the Open Inference Protocol: `/v2/models/<objects_name>` and its `/infer`.

Its routes are included before the segmenter's `/v2/models/{name}` routes, so the classifier's name
reaches them and every other name the segmenter's. Requests are JSON tensors: `crop` (UINT8
[N, S, S, 3]), or `image` (UINT8 [1, H, W, 3]) with `box` (INT32 or INT64 [N, 4]: x0, y0, x1, y1
inclusive); the answer is `probabilities` (FP32 [N, 8]) with the class names as a parameter.
"""

import base64
import json

import cv2
import numpy as np
from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from cityseg.components import cityscapes
from cityseg.components.crops.config import CropsConfig
from cityseg.components.crops.instances import drop_reason, find_instances
from cityseg.components.crops.schema import CLASSES, NUM_CLASSES
from cityseg.components.serve.objects_model import Classifier, classes_response
from cityseg.components.serve.schemas import errors
from cityseg.components.serve.state import ServeState

INTEGER_TYPES = {"UINT8": np.uint8, "INT32": np.int32, "INT64": np.int64}
# Under /v2 an error answers {"error": ...} (the app's handler), elsewhere {"detail": ...}.
_V2_ERROR = {
    "description": "What was wrong",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
        }
    },
}


def _tensor(inputs: dict, name: str, datatypes: tuple[str, ...], rank: int) -> np.ndarray:
    entry = inputs[name]
    if entry.get("datatype") not in datatypes:
        raise ValueError(
            f"input {name!r}: datatype must be {' or '.join(datatypes)}, got {entry.get('datatype')!r}"
        )
    shape = entry.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != rank
        or not all(isinstance(n, int) and n > 0 for n in shape)
    ):
        raise ValueError(f"input {name!r}: shape must be {rank} positive integers, got {shape!r}")
    data = np.asarray(entry.get("data", []))
    if data.size != int(np.prod(shape)):
        raise ValueError(f"input {name!r}: {data.size} values for shape {shape}")
    return data.astype(INTEGER_TYPES[entry["datatype"]]).reshape(shape)


def crops_of_request(body: bytes, classifier: Classifier, max_pixels: int) -> tuple[str | None, np.ndarray]:
    """(request id, uint8 crops N x S x S x 3) of an infer request body.

    Raises:
        ValueError: not JSON, neither `crop` nor `image` with `box`, a bad tensor, or too many pixels.
    """
    try:
        request = json.loads(body)
        inputs = {entry["name"]: entry for entry in request["inputs"]}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"expected a JSON infer request with named inputs ({err})") from None
    pixels = sum(int(np.prod(entry.get("shape") or [0])) for entry in inputs.values()) // 3
    if pixels > max_pixels:
        raise ValueError(f"{pixels} pixels is more than this server's limit of {max_pixels}")
    if "crop" in inputs:
        return request.get("id"), _tensor(inputs, "crop", ("UINT8",), 4)
    if "image" not in inputs or "box" not in inputs:
        raise ValueError("give input 'crop', or 'image' and 'box'")
    image = _tensor(inputs, "image", ("UINT8",), 4)
    rank = 2 if len(inputs["box"].get("shape") or []) == 2 else 1
    boxes = _tensor(inputs, "box", ("INT32", "INT64"), rank)
    boxes = boxes.reshape(1, -1) if rank == 1 else boxes
    if image.shape[0] != 1 or image.shape[3] != 3:
        raise ValueError(f"input 'image': shape must be [1, H, W, 3], got {list(image.shape)}")
    if boxes.shape[1] != 4:
        raise ValueError(f"input 'box': shape must be [4] or [N, 4], got {inputs['box']['shape']}")
    try:
        crops = [classifier.crop(image[0], tuple(int(v) for v in box)) for box in boxes]
    except ValueError as err:
        raise ValueError(f"input 'box': {err}") from None
    return request.get("id"), np.stack(crops)


def _infer(state: ServeState, body: bytes) -> dict:
    classifier = state.classifier()
    with state.admit():
        try:
            request_id, crops = crops_of_request(body, classifier, state.config.max_pixels)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        probabilities = classifier.probabilities(crops)
    answer = {
        "model_name": state.config.objects_name,
        "model_version": classifier.version or "",
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": list(probabilities.shape),
             "data": probabilities.ravel().round(6).tolist()},
        ],
        "parameters": {"classes": list(CLASSES), "predictions": classes_response(probabilities)},
    }  # fmt: skip
    if request_id is not None:
        answer["id"] = request_id
    return answer


def router(state: ServeState) -> APIRouter:
    """The classifier's /v2 model routes over `state`: 404 without a classifier, 503 until it is loaded."""
    routes = APIRouter(prefix=f"/v2/models/{state.config.objects_name}", tags=["object classifier"])

    @routes.get("", responses={status: _V2_ERROR for status in (404, 503)})
    def metadata() -> dict:
        """The classifier in service: its version, inputs (crop, or image and box) and output."""
        classifier = state.classifier()
        return {
            "name": state.config.objects_name,
            "versions": [classifier.version] if classifier.version else [],
            "platform": "tensorflow_keras",
            "inputs": [
                {"name": "crop", "datatype": "UINT8", "shape": [-1, classifier.size, classifier.size, 3]},
                {"name": "image", "datatype": "UINT8", "shape": [1, -1, -1, 3]},
                {"name": "box", "datatype": "INT64", "shape": [-1, 4]},
            ],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, NUM_CLASSES]}],
            "parameters": {"classes": list(CLASSES), "crop_margin": classifier.margin},
        }

    @routes.get("/ready", responses={status: _V2_ERROR for status in (404, 503)})
    def ready() -> dict:
        """200 once the classifier is loaded and warmed up (also while a later swap fails), 503 before."""
        state.classifier()
        return {"name": state.config.objects_name, "ready": True}

    @routes.post("/infer", responses={status: _V2_ERROR for status in (400, 404, 413, 503)})
    async def infer(request: Request) -> dict:
        """Classify crops, or boxes of an image: class probabilities per crop."""
        body = await request.body()
        return await run_in_threadpool(_infer, state, body)

    return routes


def frame_objects(state: ServeState, classifier: Classifier, image_id: str) -> list[dict]:
    """The instances of an indexed frame that the crops step keeps, each with its crop and the prediction.

    Raises:
        KeyError: no frame has this id.
        ValueError: the frame has no instanceIds or polygons file, or one that does not decode.
    """
    source, frame = state.index.source, state.index.get(image_id)
    stem = frame.label.removesuffix(cityscapes.LABEL_SUFFIX)
    names = {"ids": stem + cityscapes.INSTANCE_SUFFIX, "polygons": stem + cityscapes.POLYGONS_SUFFIX}
    try:
        ids = cityscapes.decode_instances(source.read(names["ids"]), source.where(names["ids"]))
        document = json.loads(source.read(names["polygons"]))
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{image_id}: no readable instanceIds and polygons beside its labelIds ({err})"
        ) from None
    image = cv2.cvtColor(
        cityscapes.decode_image(source.read(frame.image), source.where(frame.image)), cv2.COLOR_BGR2RGB
    )
    filters = CropsConfig("source", "out")
    kept = [
        i
        for i in find_instances(ids, document, source.where(names["polygons"]))
        if not drop_reason(i, filters)
    ]
    if not kept:
        return []
    crops = np.stack([classifier.crop(image, instance.box) for instance in kept])
    probabilities = classifier.probabilities(crops)
    return [
        {
            "instance_id": instance.instance_id,
            "box": list(instance.box),
            "true": CLASSES[instance.label],
            **{k: v for k, v in prediction.items() if k != "probabilities"},
            "crop": "data:image/png;base64,"
            + base64.b64encode(
                cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))[1].tobytes()
            ).decode(),
        }
        for instance, crop, prediction in zip(kept, crops, classes_response(probabilities), strict=True)
    ]


def frames_router(state: ServeState) -> APIRouter:
    """`GET /objects/{image_id}`: the objects of a frame of --images, true and predicted, for the web app."""
    routes = APIRouter(tags=["object classifier"])

    @routes.get("/objects/{image_id}", responses=errors(404, 422, 503))
    def objects(image_id: str) -> dict:
        """Each kept instance of the frame: its crop, true class, predicted class and probability."""
        if state.index is None:
            raise HTTPException(404, "this server was started without --images")
        classifier = state.classifier()
        with state.admit():
            try:
                found = frame_objects(state, classifier, image_id)
            except KeyError:
                raise HTTPException(404, f"no image with id {image_id!r}") from None
            except ValueError as err:
                raise HTTPException(422, str(err)) from None
        return {"image_id": image_id, "model": state.config.objects_name, "objects": found}

    return routes
