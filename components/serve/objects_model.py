"""The object classifier in `cityseg serve`: it classifies a crop or an image's box.

A `ModelWatcher` with `load_classifier_model` keeps it loaded and follows its registry alias, as it
does the segmenter (`cityseg.components.serve.api`). An image and a box are cut into the
classifier's square crop exactly as the crops step cuts its training crops
(`cityseg.components.crops.instances.square_crop`, with the margin the model was trained with), so
the API and the evaluation classify the same pixels.
"""

import dataclasses

import numpy as np

from cityseg.components.crops.config import CropsConfig
from cityseg.components.crops.instances import square_crop
from cityseg.components.crops.schema import CLASSES
from cityseg.components.defaults import defaults
from cityseg.components.objects.config import REGISTERED_MODEL


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A loaded classifier: registered name, version and reference, crop size and margin, Keras model."""

    name: str
    version: str | None
    ref: str
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
    """Load and warm up the classifier at `ref`, with its training crop margin (from train_info.json)."""
    from cityseg.components.objects.evaluate import load_classifier

    loaded = load_classifier(ref, cache_dir)
    size = int(loaded.model.input_shape[1])
    # A model without train_info.json (not written by `cityseg objects train`): the crops step's margin.
    margin = float(loaded.train_info.get("crop_margin", defaults(CropsConfig).margin))
    name = loaded.registered_name or REGISTERED_MODEL
    classifier = Classifier(name, loaded.version, ref, size, margin, loaded.model)
    # The first call builds the model's eager functions; do it now so that no request pays for it.
    classifier.probabilities(np.zeros((1, size, size, 3), np.uint8))
    return classifier


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
