"""What every route of the API shares: the settings, the model watcher, the image index, the metrics."""

import contextlib
import ctypes
import ctypes.util
import dataclasses
import threading
import time

import numpy as np
from fastapi import HTTPException

from cityseg.components.serve.config import ServeConfig
from cityseg.components.serve.model_watcher import ModelWatcher, ServedModel
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
    """The API's shared parts; `admit()` bounds how many requests decode and predict at once."""

    config: ServeConfig
    watcher: ModelWatcher
    index: PhotoIndex | None
    telemetry: Telemetry = dataclasses.field(default_factory=Telemetry)
    _gate: threading.BoundedSemaphore = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gate = threading.BoundedSemaphore(self.config.max_concurrent)
        map_large_buffers_alone()

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
        """The model in service.

        Raises:
            HTTPException: 503 (with Retry-After) while no model is loaded yet.
        """
        model = self.watcher.current
        if model is None:
            detail = f"the model {self.config.model} is not loaded yet"
            error = self.watcher.error
            raise HTTPException(503, f"{detail}: {error}" if error else detail, {"Retry-After": "5"})
        return model

    def timed_predict(self, model: ServedModel, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The model's mask for `image` and the milliseconds it took (also observed in the metrics)."""
        started = time.perf_counter()
        mask = model.predict(image)
        seconds = time.perf_counter() - started
        self.telemetry.inference.observe(seconds)
        return mask, seconds * 1000
