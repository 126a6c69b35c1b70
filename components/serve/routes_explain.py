"""`POST /explain`: LIME explanations of the segmenter's region or of the classifier's crop.

The body is JSON: the picture as `image` (base64 PNG or JPEG) or `image_id` (from /images); for
the segmenter (`"model": "segmenter"`) a point `x`, `y` (its connected region of the predicted
mask) or a `category` (all its pixels); for the classifier a `box` of the picture (else the whole
picture is the crop) and optionally the `class` to explain (else the predicted one). `samples` and
`superpixels` are capped (`cityseg.components.serve.explain`); the work holds one of the server's
`max_concurrent` places and stops with 504 after `explain_timeout_s`.
"""

import base64
import binascii
import time

import cv2
import numpy as np
from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from cityseg.components.crops.schema import CLASSES
from cityseg.components.labels import CATEGORY_NAMES
from cityseg.components.serve import explain as lime
from cityseg.components.serve.core import BadImageError, decode_image
from cityseg.components.serve.schemas import ExplainRequest, errors
from cityseg.components.serve.state import ServeState


def _picture(state: ServeState, body: dict) -> np.ndarray:
    if "image_id" in body:
        if state.index is None:
            raise HTTPException(404, "this server was started without --images")
        try:
            data = state.index.image_bytes(body["image_id"])
        except KeyError:
            raise HTTPException(404, f"no image with id {body['image_id']!r}") from None
    else:
        try:
            data = base64.b64decode(body["image"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise HTTPException(400, "give 'image' (base64 PNG or JPEG) or 'image_id'") from None
    try:
        return decode_image(data, state.config.max_pixels)
    except BadImageError as err:
        raise HTTPException(err.status, str(err)) from None


def _segmenter_target(state: ServeState, image: np.ndarray, body: dict):
    """(score function, what is explained) for a point's region or a whole category."""
    model = state.served()
    mask = model.predict(image)
    if "category" in body:
        name = body["category"]
        if name not in CATEGORY_NAMES:
            raise HTTPException(400, f"category must be one of {', '.join(CATEGORY_NAMES)}, got {name!r}")
        category = CATEGORY_NAMES.index(name)
        region = mask == category
        if not region.any():
            raise HTTPException(400, f"the model predicts no {name} pixel in this image")
    else:
        x, y = int(body.get("x", -1)), int(body.get("y", -1))
        if not (0 <= x < image.shape[1] and 0 <= y < image.shape[0]):
            raise HTTPException(
                400, f"give a 'category', or a point x, y inside the {image.shape[1]}x{image.shape[0]} image"
            )
        category = int(mask[y, x])
        region = lime.region_at(mask, x, y)
    target = {"category": CATEGORY_NAMES[category], "region_pixels": int(region.sum())}
    return lime.segmenter_score(model.keras_model, category, region), image, target


def _classifier_target(state: ServeState, image: np.ndarray, body: dict):
    """(score function, crop, what is explained) for a box of the picture, or the picture as the crop."""
    classifier = state.classifier()
    crop = cv2.resize(image, (classifier.size, classifier.size), interpolation=cv2.INTER_AREA)
    if "box" in body:
        try:
            crop = classifier.crop(image, tuple(int(v) for v in body["box"]))
        except (ValueError, TypeError) as err:
            raise HTTPException(400, f"box: {err}") from None
    label = body.get("class") or CLASSES[int(classifier.probabilities(crop[None])[0].argmax())]
    if label not in CLASSES:
        raise HTTPException(400, f"class must be one of {', '.join(CLASSES)}, got {label!r}")
    return lime.classifier_score(classifier.model, CLASSES.index(label)), crop, {"class": label}


def _explain(state: ServeState, body: dict) -> dict:
    samples = int(body.get("samples", lime.DEFAULT_SAMPLES))
    superpixels = int(body.get("superpixels", lime.DEFAULT_SUPERPIXELS))
    try:
        lime.check_budget(samples, superpixels)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    kind = body.get("model", "segmenter")
    if kind not in ("segmenter", "classifier"):
        raise HTTPException(400, f"model must be segmenter or classifier, got {kind!r}")
    with state.admit():
        deadline = time.monotonic() + state.config.explain_timeout_s
        image = _picture(state, body)
        if kind == "segmenter":
            score, picture, target = _segmenter_target(state, image, body)
        else:
            score, picture, target = _classifier_target(state, image, body)
        try:
            result = lime.explain(picture, score, samples=samples, superpixels=superpixels, deadline=deadline)
        except TimeoutError as err:
            raise HTTPException(504, str(err)) from None
        tinted = lime.overlay(picture, result)
    png = cv2.imencode(".png", cv2.cvtColor(tinted, cv2.COLOR_RGB2BGR))[1].tobytes()
    return {
        "model": kind,
        "target": target,
        "score": result.score,
        "samples": samples,
        "superpixels": len(result.weights),
        "weights": [round(float(w), 6) for w in result.weights],
        "segments_png": "data:image/png;base64,"
        + base64.b64encode(cv2.imencode(".png", result.segments.astype(np.uint16))[1].tobytes()).decode(),
        "overlay": "data:image/png;base64," + base64.b64encode(png).decode(),
    }


def router(state: ServeState) -> APIRouter:
    """The /explain route over `state`."""
    routes = APIRouter(tags=["explanations"])

    @routes.post("/explain", responses=errors(400, 404, 413, 415, 503, 504))
    async def explain(body: ExplainRequest) -> dict:
        """LIME weights per SLIC superpixel and a PNG overlay (green: toward the prediction, red: away)."""
        # The fields given, under their JSON names: the route tells an absent field from a default.
        given = body.model_dump(by_alias=True, exclude_none=True, exclude_unset=True)
        return await run_in_threadpool(_explain, state, given)

    return routes
