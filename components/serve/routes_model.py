"""Routes about the model and the process: /healthz, /readyz, /model, /categories."""

from fastapi import APIRouter

from cityseg.components.labels import CATEGORY_NAMES, category_colors
from cityseg.components.serve.schemas import Category, ModelInfo, errors
from cityseg.components.serve.state import ServeState


def router(state: ServeState) -> APIRouter:
    """The model and health routes over `state`."""
    routes = APIRouter()

    @routes.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @routes.get("/readyz", tags=["operations"], responses=errors(503))
    def readyz() -> dict[str, str | None]:
        """Readiness: 200 once a model is loaded and warmed up (also while a later swap fails), 503 before."""
        model = state.served()
        return {"status": "ready", "model": model.name, "version": model.version}

    @routes.get("/model", tags=["model"], responses=errors(503))
    def model_info() -> ModelInfo:
        """The model in service, the version the registry alias points at, and the last load error."""
        watcher = state.watcher
        return ModelInfo(
            **state.served().info(),
            swaps=watcher.swaps,
            registry_version=watcher.registry_version,
            failed_swaps=watcher.failed_swaps,
            last_error=watcher.error,
        )

    @routes.get("/categories", tags=["model"])
    def categories() -> list[Category]:
        """The 8 categories the masks hold: id, name and the official colour."""
        colors = category_colors()
        return [
            Category(id=i, name=name, color="#{:02x}{:02x}{:02x}".format(*colors[i]))
            for i, name in enumerate(CATEGORY_NAMES)
        ]

    return routes
