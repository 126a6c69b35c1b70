"""The routes over the indexed Cityscapes frames: /images, /images/{id}, /images/{id}/scores."""

import logging
import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from cityseg.components import metrics
from cityseg.components.labels import colorize
from cityseg.components.serve.core import BadImageError, decode_image, encode_png
from cityseg.components.serve.photo_index import PhotoIndex
from cityseg.components.serve.schemas import PNG, ImageItem, ImageList, ImageScores, errors
from cityseg.components.serve.state import ServeState

log = logging.getLogger(__name__)

ImageId = Annotated[str, Path(description="An id from /images")]


def _index(state: ServeState, image_id: str) -> PhotoIndex:
    """The index, once `image_id` is known to be in it.

    Raises:
        HTTPException: 404 without --images or for an unknown id.
    """
    if state.index is None:
        raise HTTPException(404, "this server was started without --images")
    try:
        state.index.get(image_id)
    except KeyError:
        raise HTTPException(404, f"no image with id {image_id!r}") from None
    return state.index


def _read(image_id: str, what: str, read):
    """`read()`, with a frame whose file is gone or damaged since start-up turned into a JSON error.

    Raises:
        HTTPException: 404 when the file no longer exists, 500 when it cannot be used; both name the frame.
    """
    try:
        return read()
    except (FileNotFoundError, KeyError) as err:
        raise HTTPException(404, f"frame {image_id}: its {what} file is gone: {err}") from None
    except (ValueError, BadImageError, OSError) as err:
        log.error("frame %s: cannot read its %s: %s", image_id, what, err)
        raise HTTPException(500, f"frame {image_id}: cannot read its {what}: {err}") from None


def router(state: ServeState) -> APIRouter:
    """The image routes over `state`."""
    routes = APIRouter(tags=["images"])

    @routes.get("/images")
    def images() -> ImageList:
        """The ids of the images given by `--images` (its val split unless told otherwise)."""
        frames = state.index.frames() if state.index is not None else []
        items = [ImageItem(id=f.stem, split=f.split, city=f.city) for f in frames]
        return ImageList(count=len(items), images=items)

    @routes.get(
        "/images/{image_id}",
        response_class=Response,
        responses={
            200: {"content": {PNG: {"schema": {"type": "string", "format": "binary"}}}},
            **errors(404, 500),
        },
    )
    def image(
        image_id: ImageId, kind: Annotated[Literal["image", "mask", "color"], Query()] = "image"
    ) -> Response:
        """An indexed image (`image`), its true category ids (`mask`) or the true mask in colour (`color`)."""
        index = _index(state, image_id)
        if kind == "image":
            return Response(_read(image_id, "image", lambda: index.image_bytes(image_id)), media_type=PNG)
        mask = _read(image_id, "label", lambda: index.true_mask(image_id))
        return Response(encode_png(mask if kind == "mask" else colorize(mask)), media_type=PNG)

    @routes.get("/images/{image_id}/scores", responses=errors(404, 500, 503))
    def image_scores(image_id: ImageId) -> ImageScores:
        """Predict an indexed image and score it against its true mask (IoU and Dice per category)."""
        index = _index(state, image_id)
        model = state.served()
        started = time.perf_counter()
        with state.admit():
            data = _read(image_id, "image", lambda: index.image_bytes(image_id))
            image = _read(image_id, "image", lambda: decode_image(data, state.config.max_pixels))
            true_mask = _read(image_id, "label", lambda: index.true_mask(image_id))
            if true_mask.shape != image.shape[:2]:
                raise HTTPException(
                    500,
                    f"frame {image_id}: label {true_mask.shape[::-1]} and image {image.shape[1::-1]} differ",
                )
            cm = metrics.confusion_matrix(true_mask, state.timed_predict(model, image)[0])
        return ImageScores(
            id=image_id,
            model=model.name,
            version=model.version,
            latency_ms=(time.perf_counter() - started) * 1000,
            scores=metrics.scores(cm),
            confusion_matrix=cm.tolist(),
        )

    return routes
