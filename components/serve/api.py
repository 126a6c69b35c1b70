"""The prediction API: `create_app(config)` builds the FastAPI app that `cityseg serve` runs under uvicorn."""

import contextlib
import logging
import time
from typing import Annotated, Literal

import numpy as np
import prometheus_client
from fastapi import FastAPI, File, HTTPException, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from cityseg.components import metrics
from cityseg.components.labels import CATEGORY_NAMES, category_colors, colorize
from cityseg.components.serve.core import (
    BadImageError,
    ServeConfig,
    decode_image,
    encode_png,
    pixel_share,
    render,
)
from cityseg.components.serve.images_index import ImageIndex
from cityseg.components.serve.model_watcher import ModelWatcher, ServedModel

log = logging.getLogger(__name__)

PNG = "image/png"


class ErrorBody(BaseModel):
    """Every 4xx and 503 answer: what was wrong, in words."""

    detail: str


class ModelInfo(BaseModel):
    """The model being served."""

    name: str
    version: str | None
    ref: str
    run_id: str | None
    input_height: int | None
    input_width: int | None
    loaded_at: str
    swaps: int


class Prediction(BaseModel):
    """`/predict?format=json`: the share of the image's pixels in each category, who predicted it, how fast.

    `latency_ms` is the server's whole time (decoding included), `inference_ms` the model's part.
    """

    model: str
    version: str | None
    latency_ms: float
    inference_ms: float
    height: int
    width: int
    pixel_share: dict[str, float]


class ImageItem(BaseModel):
    id: str
    split: str
    city: str


class ImageList(BaseModel):
    count: int
    images: list[ImageItem]


class Category(BaseModel):
    id: int
    name: str
    color: str


class ImageScores(BaseModel):
    """The served model's prediction on one indexed image, scored against its true mask."""

    id: str
    model: str
    version: str | None
    latency_ms: float
    scores: dict[str, float | None]
    confusion_matrix: list[list[int]]


def _errors(*statuses: int) -> dict:
    return {status: {"model": ErrorBody} for status in statuses}


class _Telemetry:
    """Prometheus metrics in a registry of their own, so that several apps in one process do not clash."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "cityseg_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = prometheus_client.Histogram(
            "cityseg_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.inference = prometheus_client.Histogram(
            "cityseg_inference_duration_seconds",
            "Model prediction time per image, resizing included",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.model = prometheus_client.Gauge(
            "cityseg_model_info",
            "1 for the model version in service",
            ["name", "version"],
            registry=self.registry,
        )
        self.swaps = prometheus_client.Gauge(
            "cityseg_model_swaps",
            "Times the served model was swapped for a new version",
            registry=self.registry,
        )


class _Instrumented:
    """ASGI middleware: counts each request and times it, labelled by route template (never by raw path)."""

    def __init__(self, app, telemetry: _Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", "unmatched")
            self.telemetry.requests.labels(scope["method"], label, str(status)).inc()
            self.telemetry.latency.labels(label).observe(time.perf_counter() - started)


class _BodyLimit:
    """ASGI middleware: a request body over `max_bytes` ends in 413, checked before and while it arrives."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        received = 0
        limit_mb = self.max_bytes / 2**20

        async def limited_receive():
            nonlocal received
            # Checked when the route first reads the body, so the 413 is counted under its route.
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise HTTPException(413, f"the request body is {int(declared)} bytes, over {limit_mb:g} MiB")
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, f"the request body is over {limit_mb:g} MiB")
            return message

        await self.app(scope, limited_receive, send)


def create_app(config: ServeConfig) -> FastAPI:
    """The API for `config`: the model loads (and follows its alias) in the background once it starts.

    Raises:
        ValueError: the `images` folder holds no Cityscapes frames.
    """
    index = ImageIndex(config.images, config.images_split) if config.images else None
    watcher = ModelWatcher(config.model, config.poll_seconds, config.tracking_uri, config.cache_dir)
    telemetry = _Telemetry()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            if index is not None:
                index.close()

    app = FastAPI(
        title="cityseg prediction API",
        summary="Street-scene segmentation into the 8 Cityscapes categories",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(_BodyLimit, max_bytes=config.max_upload_bytes)
    app.add_middleware(_Instrumented, telemetry=telemetry)

    def served() -> ServedModel:
        model = watcher.current
        if model is None:
            detail = f"the model {config.model} is not loaded yet"
            raise HTTPException(
                503, f"{detail}: {watcher.error}" if watcher.error else detail, {"Retry-After": "5"}
            )
        return model

    def frame_id(image_id: str) -> str:
        if index is None:
            raise HTTPException(404, "this server was started without --images")
        try:
            index.get(image_id)
        except KeyError:
            raise HTTPException(404, f"no image with id {image_id!r}") from None
        return image_id

    def timed_predict(model: ServedModel, image: np.ndarray) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        mask = model.predict(image)
        seconds = time.perf_counter() - started
        telemetry.inference.observe(seconds)
        return mask, seconds * 1000

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses=_errors(503))
    def readyz() -> dict[str, str | None]:
        """Readiness: 200 once a model is loaded and warmed up, 503 before."""
        model = served()
        return {"status": "ready", "model": model.name, "version": model.version}

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests by route and status, latency histograms, the model in service."""
        model = watcher.current
        telemetry.model.clear()
        if model is not None:
            telemetry.model.labels(model.name, str(model.version)).set(1)
        telemetry.swaps.set(watcher.swaps)
        return Response(
            prometheus_client.generate_latest(telemetry.registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    @app.get("/model", tags=["model"], responses=_errors(503))
    def model_info() -> ModelInfo:
        """Which model (registered name and version) is being served."""
        return ModelInfo(**served().info(), swaps=watcher.swaps)

    @app.get("/categories", tags=["model"])
    def categories() -> list[Category]:
        """The 8 categories the masks hold: id, name and the official colour."""
        colors = category_colors()
        return [
            Category(id=i, name=name, color="#{:02x}{:02x}{:02x}".format(*colors[i]))
            for i, name in enumerate(CATEGORY_NAMES)
        ]

    @app.post(
        "/predict",
        tags=["model"],
        response_model=None,
        responses={
            200: {
                "content": {PNG: {"schema": {"type": "string", "format": "binary"}}, "application/json": {}},
                "description": "The mask at the upload's size: a PNG for ids/color/overlay, JSON for json.",
            },
            **_errors(400, 413, 415, 503),
        },
    )
    def predict(
        file: Annotated[UploadFile, File(description="A PNG or JPEG image of any size")],
        format: Annotated[Literal["ids", "color", "overlay", "json"], Query()] = "ids",
    ) -> Response | Prediction:
        """Segment an uploaded image: category ids (0..7), official colours, an overlay, or pixel shares."""
        started = time.perf_counter()
        data = file.file.read()
        try:
            image = decode_image(data, config.max_pixels)
        except BadImageError as err:
            raise HTTPException(err.status, f"{file.filename or 'upload'}: {err}") from None
        model = served()
        mask, inference_ms = timed_predict(model, image)
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

    @app.get("/images", tags=["images"])
    def images() -> ImageList:
        """The ids of the images given by `--images` (empty without it)."""
        frames = index.frames() if index is not None else []
        items = [ImageItem(id=f.stem, split=f.split, city=f.city) for f in frames]
        return ImageList(count=len(items), images=items)

    @app.get(
        "/images/{image_id}",
        tags=["images"],
        response_class=Response,
        responses={
            200: {"content": {PNG: {"schema": {"type": "string", "format": "binary"}}}},
            **_errors(404),
        },
    )
    def image(
        image_id: Annotated[str, Path(description="An id from /images")],
        kind: Annotated[Literal["image", "mask", "color"], Query()] = "image",
    ) -> Response:
        """An indexed image (`image`), its true category ids (`mask`) or the true mask in colour (`color`)."""
        image_id = frame_id(image_id)
        if kind == "image":
            return Response(index.image_bytes(image_id), media_type=PNG)
        mask = index.true_mask(image_id)
        return Response(encode_png(mask if kind == "mask" else colorize(mask)), media_type=PNG)

    @app.get("/images/{image_id}/scores", tags=["images"], responses=_errors(404, 503))
    def image_scores(image_id: Annotated[str, Path(description="An id from /images")]) -> ImageScores:
        """Predict an indexed image and score it against its true mask (IoU and Dice per category)."""
        image_id = frame_id(image_id)
        model = served()
        started = time.perf_counter()
        image = decode_image(index.image_bytes(image_id), config.max_pixels)
        cm = metrics.confusion_matrix(index.true_mask(image_id), timed_predict(model, image)[0])
        return ImageScores(
            id=image_id,
            model=model.name,
            version=model.version,
            latency_ms=(time.perf_counter() - started) * 1000,
            scores=metrics.scores(cm),
            confusion_matrix=cm.tolist(),
        )

    return app
