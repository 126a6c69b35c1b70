"""A served model: loaded in the background, and swapped when the registry alias it follows moves.

`ModelWatcher` keeps the segmenter (`load_served_model`, its default loader) and, given the object
classifier's loader, the classifier. Requests read `ModelWatcher.current` once and keep that model
until they answer, so a swap (one reference assignment, after the new model is loaded and warmed
up) never drops or mixes a request: requests in flight finish on the old model, new ones start on
the new one.
"""

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np

from cityseg.components import inference, modelstore, tracking

log = logging.getLogger(__name__)


class Served(Protocol):
    """What the watcher needs of a loaded model: a frozen dataclass with its name, version and reference."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str | None: ...

    @property
    def ref(self) -> str: ...


ModelT = TypeVar("ModelT", bound=Served)


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """A loaded model ready to predict, with what `/model` reports about it."""

    name: str
    version: str | None
    ref: str
    run_id: str | None
    input_size: tuple[int | None, int | None]
    loaded_at: str
    predict: Callable[[np.ndarray], np.ndarray] = dataclasses.field(repr=False, compare=False)
    probabilities: Callable[[np.ndarray], np.ndarray] = dataclasses.field(repr=False, compare=False)
    # The Keras model itself, for work that scores batches of its own (LIME explanations).
    keras_model: object = dataclasses.field(default=None, repr=False, compare=False)

    def info(self) -> dict:
        """What `/model` answers."""
        height, width = self.input_size
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "run_id": self.run_id,
            "input_height": height,
            "input_width": width,
            "loaded_at": self.loaded_at,
        }


def mask_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """A function HxWx3 uint8 RGB image (any size) -> HxW uint8 category ids, as one compiled graph.

    The resizing is the evaluator's (`cityseg.components.inference`): to the model's input size by area
    averaging when shrinking (as the input pipeline does) and bilinear otherwise, argmax, then
    nearest back to the image's size; so the API and the evaluation predict the same mask for the
    same picture. The image is resized while still uint8 and the classes go back to its size as
    uint8, so nothing is held in float32 at the image's size: a 64-megapixel upload costs its pixels
    in bytes, not four times that.
    """
    infer = _compiled(model, probabilities=False)

    def predict(image: np.ndarray) -> np.ndarray:
        return infer(image[None]).numpy()[0]

    return predict


def probability_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """A function HxWx3 uint8 RGB image -> HxWx8 float32 softmax probabilities at the image's size.

    The probabilities are computed at the model's size and taken back by nearest neighbour, as the
    mask is, so their argmax is exactly `mask_predictor`'s mask.
    """
    infer = _compiled(model, probabilities=True)

    def predict(image: np.ndarray) -> np.ndarray:
        return infer(image[None]).numpy()[0]

    return predict


def _compiled(model, probabilities: bool):
    import tensorflow as tf

    height, width = model.input_shape[1:3]

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
    def infer(image):
        size = tf.shape(image)[1:3]
        model_size = tf.stack([height or size[0], width or size[1]])
        # Resizing uint8 gives float32 at the model's size only; dividing after equals dividing before.
        batch = inference.resize_to_model(image, model_size)
        # The branches hide the static shape; give it back so that the model sees its own size.
        batch = tf.ensure_shape(batch / 255.0, [1, height, width, 3])
        logits = tf.cast(model(batch, training=False), tf.float32)
        if probabilities:
            return tf.image.resize(tf.nn.softmax(logits), size, method="nearest")
        classes = tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.uint8)
        return tf.image.resize(classes[..., None], size, method="nearest")[..., 0]

    return infer


def load_served_model(ref: str, cache_dir: str) -> ServedModel:
    """Load `ref` through `cityseg.components.modelstore`, compile its predict function and run it once."""
    loaded = modelstore.load(ref, cache_dir)
    predict = mask_predictor(loaded.model)
    probabilities = probability_predictor(loaded.model)
    height, width = loaded.input_size
    # The first call traces the graph; do it now so that no request pays for it.
    warm_up = np.zeros((height or 32, width or 32, 3), np.uint8)
    predict(warm_up)
    probabilities(warm_up)
    return ServedModel(
        name=loaded.registered_name or loaded.train_info.get("model") or loaded.model.name,
        version=loaded.version,
        ref=ref,
        run_id=loaded.run_id,
        input_size=(height, width),
        loaded_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        predict=predict,
        probabilities=probabilities,
        keras_model=loaded.model,
    )


class ModelWatcher(Generic[ModelT]):
    """Keeps the model named by `ref` loaded; for a `models:/<name>@<alias>` ref, follows the alias.

    A background thread loads the model with `loader(ref, cache_dir)`, then (alias refs only) asks
    the registry every `poll_seconds` which version the alias points at and loads that version when
    it changed. Failures are logged, kept in `error` for `/readyz`, and retried at the next poll; the
    model in service stays in service meanwhile. `registry_version` is where the alias points now,
    which differs from the served version while a swap fails; `failed_swaps` counts those failures.
    """

    def __init__(
        self,
        ref: str,
        poll_seconds: float,
        tracking_uri: str | None = None,
        cache_dir: str = str(modelstore.DEFAULT_CACHE_DIR),
        loader: Callable[[str, str], ModelT] = load_served_model,
    ) -> None:
        self.ref = ref
        self.poll_seconds = poll_seconds
        self.tracking_uri = tracking_uri
        self.cache_dir = cache_dir
        self.loader = loader
        self.current: ModelT | None = None
        self.error: str | None = None
        self.registry_version: str | None = None
        self.swaps = 0
        self.failed_swaps = 0
        parsed = modelstore.parse_mlflow_uri(ref) if modelstore.is_mlflow_uri(ref) else None
        self._alias = (parsed.name, parsed.alias) if parsed is not None and parsed.alias else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start loading (and, for an alias ref, watching) in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"model-watcher {self.ref}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop watching; a load in progress finishes first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as err:  # a background thread has no caller to raise to: report and retry
                self.error = f"{type(err).__name__}: {err}"
                log.exception("loading %s failed; retrying in %gs", self.ref, self.poll_seconds)
            if self.current is not None and self._alias is None:
                return
            self._stop.wait(self.poll_seconds)

    def target(self) -> tuple[str, str | None]:
        """The reference to load now and its registry version: an alias is resolved to its current version."""
        if self._alias is None:
            return self.ref, None
        name, alias = self._alias
        version = str(modelstore.resolve_version(name, alias=alias).version)
        return f"models:/{name}/{version}", version

    def refresh(self) -> bool:
        """Load the model if none is served yet or the alias moved; True when a model was (re)loaded."""
        if modelstore.is_mlflow_uri(self.ref):
            tracking.connect(self.tracking_uri)
        ref, version = self.target()
        self.registry_version = version
        current = self.current
        if current is not None and (self._alias is None or current.version == version):
            self.error = None
            return False
        started = time.perf_counter()
        try:
            served = self.loader(ref, self.cache_dir)
        except Exception:
            if current is not None:
                self.failed_swaps += 1
            raise
        if self._alias is not None:
            # Keep the alias in the name users see, and the version the registry resolved it to.
            served = dataclasses.replace(served, ref=self.ref, version=version)
        self.current = served
        self.error = None
        if current is not None:
            self.swaps += 1
        log.info(
            "serving %s version %s (%s), loaded in %.1fs",
            served.name,
            served.version,
            ref,
            time.perf_counter() - started,
        )
        return True

    def status(self) -> dict:
        """What `/model` reports beside the served model: swaps, where the alias points, the last error."""
        return {
            "swaps": self.swaps,
            "registry_version": self.registry_version,
            "failed_swaps": self.failed_swaps,
            "last_error": self.error,
        }
