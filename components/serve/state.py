"""What every route of the API shares: the settings, the model watchers, the image index, the metrics."""

import contextlib
import ctypes
import ctypes.util
import dataclasses
import threading
import time

import numpy as np
from fastapi import HTTPException

from cityseg.components.serve.config import ServeConfig
from cityseg.components.serve.model_watcher import ModelT, ModelWatcher, ServedModel
from cityseg.components.serve.objects_model import Classifier, load_classifier_model
from cityseg.components.serve.photo_index import PhotoIndex
from cityseg.components.serve.telemetry import Telemetry

# glibc's mallopt parameter; a fixed threshold also turns off its dynamic raising.
_M_MMAP_THRESHOLD = -3
_OWN_MAPPING_BYTES = 2**20


def map_large_buffers_alone() -> bool:
    """Have glibc give every buffer of 1 MiB or more its own mapping, returned to the OS when freed.

    By default glibc raises that threshold to the largest buffer freed so far, so after the first
    20 MiB upload the next ones come from the malloc arena of whichever worker thread serves them,
    and each arena keeps its peak: the process grew by about 50 MiB per worker thread that had ever
    served a large upload, whatever `max_concurrent` said. Returns False where the C library has no
    mallopt (not glibc).
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    mallopt = getattr(libc, "mallopt", None)
    return mallopt is not None and mallopt(_M_MMAP_THRESHOLD, _OWN_MAPPING_BYTES) == 1


@dataclasses.dataclass
class ServeState:
    """The API's shared parts; `admit()` bounds how many requests decode and predict at once.

    `watcher` keeps the segmenter, `objects` the object classifier (None without --objects-model).
    """

    config: ServeConfig
    watcher: ModelWatcher[ServedModel]
    index: PhotoIndex | None
    objects: ModelWatcher[Classifier] | None = None
    telemetry: Telemetry = dataclasses.field(default_factory=Telemetry)
    _gate: threading.BoundedSemaphore = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gate = threading.BoundedSemaphore(self.config.max_concurrent)
        map_large_buffers_alone()

    @classmethod
    def for_config(cls, config: ServeConfig, index: PhotoIndex | None) -> "ServeState":
        """The state of `config`: watchers (not started) of the segmenter and of the classifier, if any."""
        watching = (config.poll_seconds, config.tracking_uri, config.cache_dir)
        objects = None
        if config.objects_model:
            objects = ModelWatcher(config.objects_model, *watching, loader=load_classifier_model)
        return cls(config, ModelWatcher(config.model, *watching), index, objects)

    def watchers(self) -> list[ModelWatcher]:
        """The watchers of the models this server serves: the segmenter's, then the classifier's if any."""
        return [self.watcher] if self.objects is None else [self.watcher, self.objects]

    @contextlib.contextmanager
    def admit(self):
        """Hold one of the `max_concurrent` places while decoding, predicting and rendering.

        Each place holds at most `config.request_memory_bytes`, so the server's memory stays under
        its idle size plus `max_concurrent` times that, whatever the number of clients: a request
        reads its upload only once admitted (a waiting /predict upload is spooled to disk, a waiting
        /v2 body is not read), and a freed upload goes back to the OS (`map_large_buffers_alone`).
        """
        with self._gate:
            yield

    def served(self) -> ServedModel:
        """The segmenter in service.

        Raises:
            HTTPException: 503 (with Retry-After) while no model is loaded yet.
        """
        return _loaded(self.watcher, f"the model {self.config.model}")

    def classifier(self) -> Classifier:
        """The object classifier in service.

        Raises:
            HTTPException: 404 when this server serves none, 503 (with Retry-After) while it is not
                loaded yet.
        """
        if self.objects is None:
            detail = "this server serves no object classifier (start it with --objects-model)"
            raise HTTPException(404, detail)
        return _loaded(self.objects, f"the object classifier {self.objects.ref}")

    def ready(self) -> dict[str, object]:
        """What /readyz answers once the segmenter is loaded and warmed up.

        The server's readiness is the segmenter's, the model its InferenceService deploys and rolls
        out: a classifier that is still loading, or whose alias does not exist yet, must not hold
        back that rollout. The classifier's own readiness is /v2/models/<objects_name>/ready; here it
        is `objects_ready`, with its version in service and its last load error.

        Raises:
            HTTPException: 503 (with Retry-After) while the segmenter is not loaded yet.
        """
        model = self.served()
        answer: dict[str, object] = {"status": "ready", "model": model.name, "version": model.version}
        if self.objects is not None:
            classifier = self.objects.current
            answer["objects_model"] = self.config.objects_name
            answer["objects_ready"] = classifier is not None
            answer["objects_version"] = classifier.version if classifier is not None else None
            answer["objects_error"] = self.objects.error
        return answer

    def timed_predict(self, model: ServedModel, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The model's mask for `image` and the milliseconds it took (also observed in the metrics)."""
        started = time.perf_counter()
        mask = model.predict(image)
        seconds = time.perf_counter() - started
        self.telemetry.inference.observe(seconds)
        return mask, seconds * 1000


def _loaded(watcher: ModelWatcher[ModelT], what: str) -> ModelT:
    """The model `watcher` serves; before one loads, 503 (with Retry-After) naming `what` and the error."""
    model = watcher.current
    if model is None:
        detail = f"{what} is not loaded yet"
        error = watcher.error
        raise HTTPException(503, f"{detail}: {error}" if error else detail, {"Retry-After": "5"})
    return model
