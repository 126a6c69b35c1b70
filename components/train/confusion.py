"""A Keras metric that accumulates the 8x8 confusion matrix over a whole split, not per batch.

Averaging per-batch Dice overweights small batches and categories that happen to be absent; the
streaming matrix gives exactly what `cityseg.components.metrics.scores` computes over the split.
"""

import numpy as np
from keras import ops, saving
from keras.metrics import Metric

from cityseg.components import metrics
from cityseg.components.labels import NUM_CLASSES, VOID

SCORES = ("mean_dice", "mean_iou")


def confusion_counts(y_true, y_pred):
    """The 8x8 int64 confusion matrix (rows = true) of one batch of category masks and logits."""
    labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    predicted = ops.cast(ops.reshape(ops.argmax(y_pred, axis=-1), (-1,)), "int32")
    counts = ops.bincount(labels * NUM_CLASSES + predicted, minlength=NUM_CLASSES * NUM_CLASSES)
    return ops.cast(ops.reshape(counts, (NUM_CLASSES, NUM_CLASSES)), "int64")


@saving.register_keras_serializable(package="cityseg")
class ConfusionMatrixScore(Metric):
    """Streaming confusion matrix whose result is the split's `mean_dice` or `mean_iou`.

    The result follows the Cityscapes convention of `cityseg.components.metrics.scores` (void ground truth
    ignored, a category predicted as void a false negative, categories absent from both sides
    skipped), computed with backend ops so that it runs inside the compiled evaluation step.
    """

    def __init__(self, score: str = "mean_dice", name: str | None = None, **kwargs):
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
        super().__init__(name=name or score, **kwargs)
        self.score = score
        # int64: a float32 count stops being exact past 2**24 pixels, about 32 frames at 1024x2048.
        self.matrix = self.add_variable(
            shape=(NUM_CLASSES, NUM_CLASSES), initializer="zeros", dtype="int64", name="matrix"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.matrix.assign_add(confusion_counts(y_true, y_pred))

    def result(self):
        cm = ops.cast(self.matrix, "float64")
        tp = ops.diagonal(cm)
        fn = ops.sum(cm, axis=1) - tp
        fp = ops.sum(cm, axis=0) - tp - cm[VOID, :]
        if self.score == "mean_dice":
            numerator, denominator = 2.0 * tp, 2.0 * tp + fp + fn
        else:
            numerator, denominator = tp, tp + fp + fn
        present = ops.cast(denominator > 0, "float64")
        present = ops.where(ops.arange(NUM_CLASSES) == VOID, 0.0, present)
        per_class = numerator / ops.maximum(denominator, 1.0)
        return ops.cast(ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0), "float32")

    def reset_state(self):
        self.matrix.assign(ops.zeros((NUM_CLASSES, NUM_CLASSES), dtype="int64"))

    def scores(self) -> dict[str, float | None]:
        """All of `cityseg.components.metrics.scores` for the matrix accumulated so far."""
        return metrics.scores(np.asarray(ops.convert_to_numpy(self.matrix)))

    def get_config(self):
        return {**super().get_config(), "score": self.score}
