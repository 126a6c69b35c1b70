"""The object classifier in `cityseg serve`: loaded on first use, it classifies a crop or an image's box.

An image and a box are cut into the classifier's square crop exactly as the crops step cuts its
training crops (`cityseg.components.crops.instances.square_crop`, with the margin the model was
trained with), so the API and the evaluation classify the same pixels.
"""

import dataclasses
import threading

import numpy as np

from cityseg.components.crops.instances import square_crop
from cityseg.components.crops.schema import CLASSES


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A loaded classifier: its registered name and version, crop size and margin, and its Keras model."""

    name: str
    version: str | None
    size: int
    margin: float
    model: object = dataclasses.field(repr=False)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities (N x 8) of uint8 RGB crops (N x S x S x 3, resized to the model's size)."""
        import cv2
        import tensorflow as tf

        if crops.shape[1:3] != (self.size, self.size):
            interpolation = cv2.INTER_AREA if crops.shape[1] > self.size else cv2.INTER_LINEAR
            crops = np.stack(
                [cv2.resize(c, (self.size, self.size), interpolation=interpolation) for c in crops]
            )
        logits = self.model(crops.astype(np.float32), training=False)
        return tf.nn.softmax(logits).numpy()

    def crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The square crop of `box` (x0, y0, x1, y1 inclusive) of an RGB image, as the crops step cuts it.

        Raises:
            ValueError: the box is empty or lies outside the image.
        """
        x0, y0, x1, y1 = box
        height, width = image.shape[:2]
        if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
            raise ValueError(f"box {list(box)} is not x0 <= x1 < {width}, y0 <= y1 < {height} in the image")
        return square_crop(image, box, self.margin, self.size)


def load_classifier_model(ref: str, cache_dir: str) -> Classifier:
    """Load the classifier at `ref` and what it was trained with (crop margin from train_info.json)."""
    from cityseg.components.objects.evaluate import load_classifier

    loaded = load_classifier(ref, cache_dir)
    size = int(loaded.model.input_shape[1])
    margin = float(loaded.train_info.get("crop_margin", 0.3))
    name = loaded.registered_name or "cityseg-objects"
    return Classifier(name, loaded.version, size, margin, loaded.model)


class ClassifierSlot:
    """The classifier `ref`, loaded once on first use (and again after a failed load)."""

    def __init__(self, ref: str | None, cache_dir: str):
        self.ref, self.cache_dir = ref, cache_dir
        self._lock = threading.Lock()
        self._classifier: Classifier | None = None

    def get(self) -> Classifier:
        """The loaded classifier.

        Raises:
            LookupError: no classifier is configured.
            ValueError: it does not load (the message names the reference).
        """
        if self.ref is None:
            raise LookupError("this server serves no object classifier (start it with --objects-model)")
        with self._lock:
            if self._classifier is None:
                self._classifier = load_classifier_model(self.ref, self.cache_dir)
            return self._classifier


def classes_response(probabilities: np.ndarray) -> list[dict]:
    """Per crop: the class, its probability, and every class's probability by name."""
    return [
        {
            "class": CLASSES[int(row.argmax())],
            "probability": float(row.max()),
            "probabilities": {name: float(p) for name, p in zip(CLASSES, row, strict=True)},
        }
        for row in probabilities
    ]
