"""The Open Inference Protocol (KServe v2, REST) on the API: health, metadata and infer under /v2.

Errors on these routes answer the protocol's `{"error": "..."}` (the app's exception handler turns
every HTTPException under /v2 into that form).
"""

import importlib.metadata

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cityseg.components.serve import v2_codec
from cityseg.components.serve.model_watcher import ServedModel
from cityseg.components.serve.state import ServeState

_ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_ERROR = {"description": "What was wrong", "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
_TENSOR = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "data": {"type": "array"},
        "parameters": {"type": "object"},
    },
}
_INFER_REQUEST = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "inputs": {"type": "array", "items": _TENSOR, "minItems": 1, "maxItems": 1},
                    "outputs": {"type": "array", "items": {"type": "object", "required": ["name"]}},
                    "parameters": {"type": "object"},
                },
            }
        }
    },
}
_INFER_RESPONSES = {
    200: {
        "description": "The outputs; binary outputs follow the JSON header (Inference-Header-Content-Length)",
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["model_name", "outputs"]}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **{status: _ERROR for status in (400, 404, 413, 503)},
}


def _model(state: ServeState, name: str, version: str | None = None) -> ServedModel:
    """The served model if it is `name` (and `version`).

    Raises:
        HTTPException: 503 before a model is loaded, 404 for another name or version.
    """
    model = state.served()
    if name != model.name:
        raise HTTPException(404, f"unknown model {name!r}; this server serves {model.name!r}")
    if version is not None and version != model.version:
        raise HTTPException(
            404, f"model {name!r} has no version {version!r} in service (it serves version {model.version})"
        )
    return model


def _infer(state: ServeState, model: ServedModel, request: Request) -> Response:
    """Answer one infer request in a worker thread, reading its body only once admitted.

    A request waiting for its place holds none of its body: the server reads no more than its
    flow-control window of an unread body, so the memory bound of `ServeState.admit` holds.
    """
    with state.admit():
        body = anyio.from_thread.run(request.body)
        try:
            infer = v2_codec.parse_infer_request(
                body, request.headers.get(v2_codec.HEADER_LENGTH), state.config.max_pixels
            )
        except v2_codec.ProtocolError as err:
            raise HTTPException(err.status, str(err)) from None
        del body  # the image is decoded: the upload's bytes go before the model runs
        image = infer.image
        pixels = image.shape[0] * image.shape[1]
        limit = int(state.config.max_probability_megapixels * 1e6)
        if v2_codec.PROBABILITIES in infer.outputs and pixels > limit:
            raise HTTPException(
                400, f"'probabilities' is given for images up to {limit} pixels, not {pixels}"
            )
        tensors = {}
        if v2_codec.MASK in infer.outputs:
            tensors[v2_codec.MASK] = state.timed_predict(model, image)[0]
        if v2_codec.PROBABILITIES in infer.outputs:
            tensors[v2_codec.PROBABILITIES] = model.probabilities(image)
        body, headers = v2_codec.encode_infer_response(
            model.name, model.version, infer.id, tensors, infer.outputs
        )
    return Response(body, headers=headers)


def router(state: ServeState) -> APIRouter:
    """The /v2 routes over `state`."""
    routes = APIRouter(prefix="/v2", tags=["open inference protocol"])

    @routes.get("/health/live")
    def live() -> dict[str, bool]:
        """Liveness: the process answers."""
        return {"live": True}

    @routes.get("/health/ready", responses={503: _ERROR})
    def ready() -> dict[str, bool]:
        """Readiness: 200 once the segmenter is loaded and warmed up, 503 before (see `ServeState.ready`)."""
        state.ready()
        return {"ready": True}

    @routes.get("")
    def server_metadata() -> dict:
        """The server's name, version and protocol extensions."""
        version = importlib.metadata.version("cityseg")
        return {"name": "cityseg", "version": version, "extensions": ["binary_tensor_data"]}

    _add_model_routes(routes, state)
    return routes


def _add_model_routes(routes: APIRouter, state: ServeState) -> None:
    """Metadata, readiness and infer of the served model, each with and without `/versions/{version}`."""
    found = {"responses": {404: _ERROR, 503: _ERROR}}
    infer_route = {"openapi_extra": {"requestBody": _INFER_REQUEST}, "responses": _INFER_RESPONSES}

    @routes.get("/models/{name}", **found)
    def model_metadata(name: str) -> dict:
        """The model's metadata: inputs `image`/`image_bytes`, outputs `mask`/`probabilities`."""
        model = _model(state, name)
        return v2_codec.model_metadata(model.name, model.version)

    @routes.get("/models/{name}/versions/{version}", **found)
    def version_metadata(name: str, version: str) -> dict:
        """The metadata of the model at this version (only the version in service is known)."""
        model = _model(state, name, version)
        return v2_codec.model_metadata(model.name, model.version)

    @routes.get("/models/{name}/ready", **found)
    def model_ready(name: str) -> dict:
        """200 when this model is loaded and serving."""
        return {"name": _model(state, name).name, "ready": True}

    @routes.get("/models/{name}/versions/{version}/ready", **found)
    def version_ready(name: str, version: str) -> dict:
        """200 when this model is loaded and serving this version."""
        return {"name": _model(state, name, version).name, "ready": True}

    @routes.post("/models/{name}/infer", response_class=Response, **infer_route)
    async def infer(request: Request, name: str) -> Response:
        """Segment one image: input `image` (UINT8 [1,H,W,3]) or `image_bytes` (BYTES [1]), output `mask`."""
        return await _infer_route(state, request, _model(state, name))

    @routes.post("/models/{name}/versions/{version}/infer", response_class=Response, **infer_route)
    async def version_infer(request: Request, name: str, version: str) -> Response:
        """Segment one image with the model at this version (see the unversioned route)."""
        return await _infer_route(state, request, _model(state, name, version))


async def _infer_route(state: ServeState, request: Request, model: ServedModel) -> Response:
    return await run_in_threadpool(_infer, state, model, request)
