"""Prometheus metrics of the API and the two ASGI middlewares that feed and guard it."""

import time

import prometheus_client
from fastapi import HTTPException

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Telemetry:
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
            buckets=_BUCKETS,
        )
        self.inference = prometheus_client.Histogram(
            "cityseg_inference_duration_seconds",
            "Model prediction time per image, resizing included",
            registry=self.registry,
            buckets=_BUCKETS,
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
        self.failed_swaps = prometheus_client.Gauge(
            "cityseg_model_swap_failures",
            "Times loading the version the registry alias points at failed (the old model kept serving)",
            registry=self.registry,
        )


class Instrumented:
    """ASGI middleware: counts each request and times it, labelled by route template (never by raw path)."""

    def __init__(self, app, telemetry: Telemetry) -> None:
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


class BodyLimit:
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
