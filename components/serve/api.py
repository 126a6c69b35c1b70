"""The prediction API: `create_app(config)` builds the FastAPI app that `cityseg serve` runs under uvicorn.

The routes live in one router per concern (`routes_objects`, `routes_explain`, `routes_prediction`,
`routes_images`, `routes_model`, `routes_metrics`, `routes_v2`), all over one `ServeState`.
"""

import contextlib
import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse

from cityseg.components.serve import (
    routes_explain,
    routes_images,
    routes_metrics,
    routes_model,
    routes_objects,
    routes_prediction,
    routes_v2,
)
from cityseg.components.serve.config import ServeConfig
from cityseg.components.serve.photo_index import PhotoIndex
from cityseg.components.serve.state import ServeState
from cityseg.components.serve.telemetry import BodyLimit, Instrumented

log = logging.getLogger(__name__)


async def _http_error(request: Request, err: HTTPException):
    # The Open Inference Protocol answers errors as {"error": ...}; our own routes as {"detail": ...}.
    if request.url.path.startswith("/v2"):
        return JSONResponse({"error": str(err.detail)}, err.status_code, headers=err.headers)
    return await http_exception_handler(request, err)


async def _unexpected(request: Request, err: Exception) -> JSONResponse:
    # Never a bare "Internal Server Error" page: a JSON body that says what failed (the traceback is logged).
    key = "error" if request.url.path.startswith("/v2") else "detail"
    return JSONResponse({key: f"internal error on {request.url.path}: {type(err).__name__}: {err}"}, 500)


def create_app(config: ServeConfig) -> FastAPI:
    """The API for `config`: the models load (and follow their aliases) in the background once it starts.

    Raises:
        ValueError: the `images` folder holds no Cityscapes frames (of `images_split`).
    """
    index = PhotoIndex(config.images, config.images_split) if config.images else None
    state = ServeState.for_config(config, index)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        for watcher in state.watchers():
            watcher.start()
        try:
            yield
        finally:
            for watcher in state.watchers():
                watcher.stop()
            if index is not None:
                index.close()

    app = FastAPI(
        title="cityseg prediction API",
        summary="Street-scene segmentation into the 8 Cityscapes categories",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    app.add_middleware(Instrumented, telemetry=state.telemetry)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    # The classifier's /v2/models/<objects_name> routes come before the segmenter's /v2/models/{name}.
    app.include_router(routes_objects.router(state))
    app.include_router(routes_objects.frames_router(state))
    app.include_router(routes_explain.router(state))
    for module in (routes_prediction, routes_images, routes_model, routes_metrics, routes_v2):
        app.include_router(module.router(state))
    return app
