"""Routes about the model and the process: /healthz, /readyz, /model, /categories."""

from fastapi import APIRouter

from cityseg.components.labels import CATEGORY_NAMES, category_colors
from cityseg.components.serve.schemas import Category, ModelInfo, ObjectsModelInfo, errors
from cityseg.components.serve.state import ServeState


def router(state: ServeState) -> APIRouter:
    """The model and health routes over `state`."""
    routes = APIRouter()

    @routes.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @routes.get("/readyz", tags=["operations"], responses=errors(503))
    def readyz() -> dict[str, object]:
        """Readiness: 200 once the segmenter is loaded and warmed up, 503 before; the classifier's state.

        It stays 200 while a later swap fails: the old model serves. A classifier that is not loaded
        does not hold readiness back (its own is /v2/models/<name>/ready).
        """
        return state.ready()

    @routes.get("/model", tags=["model"], responses=errors(503))
    def model_info() -> ModelInfo:
        """The model in service, where its registry alias points, its last load error; `objects` likewise."""
        return ModelInfo(**state.served().info(), **state.watcher.status(), objects=_objects_info(state))

    @routes.get("/categories", tags=["model"])
    def categories() -> list[Category]:
        """The 8 categories the masks hold: id, name and the official colour."""
        colors = category_colors()
        return [
            Category(id=i, name=name, color="#{:02x}{:02x}{:02x}".format(*colors[i]))
            for i, name in enumerate(CATEGORY_NAMES)
        ]

    return routes


def _objects_info(state: ServeState) -> ObjectsModelInfo | None:
    """The object classifier's part of `/model`: None when the server serves none."""
    watcher = state.objects
    if watcher is None:
        return None
    classifier = watcher.current
    return ObjectsModelInfo(
        name=state.config.objects_name,
        ref=watcher.ref,
        loaded=classifier is not None,
        version=classifier.version if classifier is not None else None,
        **watcher.status(),
    )
