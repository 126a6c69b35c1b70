"""The Prometheus route: /metrics."""

import prometheus_client
from fastapi import APIRouter
from fastapi.responses import Response

from cityseg.components.serve.state import ServeState


def router(state: ServeState) -> APIRouter:
    """The /metrics route over `state`."""
    routes = APIRouter()

    @routes.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests by route and status, latency, the model in service, (failed) swaps."""
        telemetry, watcher = state.telemetry, state.watcher
        model = watcher.current
        telemetry.model.clear()
        if model is not None:
            telemetry.model.labels(model.name, str(model.version)).set(1)
        telemetry.swaps.set(watcher.swaps)
        telemetry.failed_swaps.set(watcher.failed_swaps)
        return Response(
            prometheus_client.generate_latest(telemetry.registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    return routes
