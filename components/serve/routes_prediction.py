"""The prediction route: POST /predict."""

import time
from typing import Annotated, Literal

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.responses import Response

from cityseg.components.serve.core import BadImageError, decode_image, pixel_share, render
from cityseg.components.serve.schemas import PNG, Prediction, errors
from cityseg.components.serve.state import ServeState


def router(state: ServeState) -> APIRouter:
    """The /predict route over `state`."""
    routes = APIRouter()

    @routes.post(
        "/predict",
        tags=["model"],
        response_model=None,
        responses={
            200: {
                "content": {PNG: {"schema": {"type": "string", "format": "binary"}}, "application/json": {}},
                "description": "The mask at the upload's size: a PNG for ids/color/overlay, JSON for json.",
            },
            **errors(400, 413, 415, 503),
        },
    )
    def predict(
        file: Annotated[UploadFile, File(description="A PNG or JPEG image of any size")],
        format: Annotated[Literal["ids", "color", "overlay", "json"], Query()] = "ids",
    ) -> Response | Prediction:
        """Segment an uploaded image: category ids (0..7), official colours, an overlay, or pixel shares."""
        started = time.perf_counter()
        # Uploads over 1 MiB wait on disk (Starlette spools them); they are read in only once admitted.
        with state.admit():
            try:
                image = decode_image(file.file.read(), state.config.max_pixels)
            except BadImageError as err:
                raise HTTPException(err.status, f"{file.filename or 'upload'}: {err}") from None
            model = state.served()
            mask, inference_ms = state.timed_predict(model, image)
            if format == "json":
                return Prediction(
                    model=model.name,
                    version=model.version,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    inference_ms=inference_ms,
                    height=mask.shape[0],
                    width=mask.shape[1],
                    pixel_share=pixel_share(mask),
                )
            body = render(image, mask, format)
        headers = {
            "X-Model-Name": model.name,
            "X-Latency-Ms": f"{(time.perf_counter() - started) * 1000:.1f}",
            "X-Inference-Ms": f"{inference_ms:.1f}",
        }
        if model.version is not None:
            headers["X-Model-Version"] = model.version
        return Response(body, media_type=PNG, headers=headers)

    return routes
