"""Segmentation losses chosen by name, with per-class weights and the Cityscapes void convention.

Each loss takes category-id masks (B, H, W) and float32 logits (B, H, W, C) and returns one value
for the whole batch: pixel-weighted losses are normalised by the total weight, so a batch full
of void pixels does not shrink the step, and Dice is computed over the batch, not per image.
Under a distribution strategy the batch is the global batch: every replica count gives the same
loss and the same step.
"""

import numpy as np
import tensorflow as tf
from keras import ops, saving
from keras.losses import Loss

from cityseg.components.labels import NUM_CLASSES, VOID
from cityseg.components.train.config import CLASS_WEIGHTINGS


def class_weights(
    category_pixels: list[int] | np.ndarray, method: str = "none", ignore_void: bool = True
) -> list[float]:
    """Per-category loss weights from a split's pixel counts (manifest `category_pixels`).

    `median` is median-frequency balancing (Eigen & Fergus 2015): median(f) / f_c. `inverse_log`
    is ENet's 1 / ln(1.02 + f_c). Categories with no pixels get weight 0; void gets 0 when ignored.

    Raises:
        ValueError: unknown method, or not one count per category.
    """
    if method not in CLASS_WEIGHTINGS:
        raise ValueError(f"unknown class weighting {method!r}; choose one of {', '.join(CLASS_WEIGHTINGS)}")
    pixels = np.asarray(category_pixels, dtype=np.float64)
    if pixels.shape != (NUM_CLASSES,):
        raise ValueError(f"category_pixels must hold {NUM_CLASSES} counts, got {pixels.shape}")
    counted = pixels.copy()
    if ignore_void:
        counted[VOID] = 0
    if method == "none":
        weights = np.ones(NUM_CLASSES)
    else:
        freq = counted / max(counted.sum(), 1.0)
        present = freq > 0
        weights = np.zeros(NUM_CLASSES)
        if method == "median":
            weights[present] = np.median(freq[present]) / freq[present]
        else:
            weights[present] = 1.0 / np.log(1.02 + freq[present])
    if ignore_void:
        weights[VOID] = 0.0
    return [float(w) for w in weights]


def _over_global_batch(sums):
    """Sums over the global batch, and the number of replicas that share it.

    Under a distribution strategy each replica sees a slice of the global batch: its sums are
    all-reduced so every replica computes the global batch's loss, while the gradient flows only
    through the replica's own slice (the optimizer sums the replicas' gradients).
    """
    context = tf.distribute.get_replica_context()
    replicas = 1 if context is None else context.num_replicas_in_sync
    if replicas == 1:
        return sums, 1
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(sums))
    return sums + tf.stop_gradient(total - sums), replicas


class _SegmentationLoss(Loss):
    """Shared plumbing: class weights (void weight 0 when ignored) and pixel weights from masks.

    A loss is a function of sums over the batch's pixels (`_sums`, one vector) turned into one value
    (`_finish`). Under a distribution strategy the sums are the global batch's, and each replica
    returns 1/replicas of the value: Keras sums the replicas' losses and gradients (it divides only
    per-example losses by the replica count), so the step equals one replica's on the global batch.
    """

    def __init__(self, class_weights=None, ignore_void: bool = True, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        weights = np.ones(NUM_CLASSES) if class_weights is None else np.asarray(class_weights, "float64")
        if weights.shape != (NUM_CLASSES,):
            raise ValueError(f"class_weights must hold {NUM_CLASSES} values, got {weights.shape}")
        if ignore_void:
            weights = weights.copy()
            weights[VOID] = 0.0
        self.class_weights = [float(w) for w in weights]
        self.ignore_void = ignore_void

    def _prepare(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        logits = ops.cast(y_pred, "float32")
        pixel_weights = ops.take(ops.convert_to_tensor(self.class_weights, "float32"), labels)
        return labels, logits, pixel_weights

    def _sums(self, labels, logits, pixel_weights):
        raise NotImplementedError

    def _finish(self, sums):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        sums, replicas = _over_global_batch(self._sums(*self._prepare(y_true, y_pred)))
        value = self._finish(sums)
        if replicas == 1:
            return value
        # The value divided by the replicas, the gradient not: the replicas' gradients add up.
        return value + tf.stop_gradient(value / replicas - value)

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights, "ignore_void": self.ignore_void}


def _weighted_sums(values, weights):
    return ops.stack([ops.sum(values * weights), ops.sum(weights)])


def _weighted_mean(sums):
    return sums[0] / ops.maximum(sums[1], 1e-6)


@saving.register_keras_serializable(package="cityseg")
class CrossEntropy(_SegmentationLoss):
    """Sparse categorical cross-entropy on logits, averaged over the weighted pixels."""

    def __init__(self, class_weights=None, ignore_void: bool = True, name="ce", **kwargs):
        super().__init__(class_weights, ignore_void, name=name, **kwargs)

    def _sums(self, labels, logits, pixel_weights):
        ce = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return _weighted_sums(ce, pixel_weights)

    def _finish(self, sums):
        return _weighted_mean(sums)


@saving.register_keras_serializable(package="cityseg")
class FocalLoss(_SegmentationLoss):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_true)^gamma, weighted mean."""

    def __init__(
        self, class_weights=None, ignore_void: bool = True, gamma: float = 2.0, name="focal", **kwargs
    ):
        super().__init__(class_weights, ignore_void, name=name, **kwargs)
        self.gamma = float(gamma)

    def _sums(self, labels, logits, pixel_weights):
        ce = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        p_true = ops.exp(-ce)
        return _weighted_sums(ops.power(1.0 - p_true, self.gamma) * ce, pixel_weights)

    def _finish(self, sums):
        return _weighted_mean(sums)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@saving.register_keras_serializable(package="cityseg")
class DiceLoss(_SegmentationLoss):
    """1 - soft multi-class Dice over the batch, averaged over categories by their class weights.

    Ignored (void) pixels are left out of both the overlap and the sums; a category absent from
    both the masks and the predictions scores Dice 1 through the smoothing term.
    """

    def __init__(
        self, class_weights=None, ignore_void: bool = True, smooth: float = 1.0, name="dice", **kwargs
    ):
        super().__init__(class_weights, ignore_void, name=name, **kwargs)
        self.smooth = float(smooth)

    def _sums(self, labels, logits, pixel_weights):
        valid = ops.expand_dims(ops.cast(pixel_weights > 0, "float32"), -1)
        probs = ops.softmax(logits, axis=-1) * valid
        onehot = ops.one_hot(labels, NUM_CLASSES, dtype="float32") * valid
        axes = tuple(range(len(probs.shape) - 1))
        # Per category: overlap, then predicted plus true pixels.
        return ops.concatenate(
            [ops.sum(probs * onehot, axis=axes), ops.sum(probs, axis=axes) + ops.sum(onehot, axis=axes)]
        )

    def _finish(self, sums):
        overlap, total = sums[:NUM_CLASSES], sums[NUM_CLASSES:]
        dice = (2.0 * overlap + self.smooth) / (total + self.smooth)
        class_weights = ops.convert_to_tensor(self.class_weights, "float32")
        return 1.0 - ops.sum(dice * class_weights) / ops.maximum(ops.sum(class_weights), 1e-6)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@saving.register_keras_serializable(package="cityseg")
class CrossEntropyDice(_SegmentationLoss):
    """Cross-entropy plus Dice loss, equally weighted: CE for calibrated pixels, Dice for small classes."""

    def __init__(self, class_weights=None, ignore_void: bool = True, name="ce_dice", **kwargs):
        super().__init__(class_weights, ignore_void, name=name, **kwargs)
        self._ce = CrossEntropy(class_weights, ignore_void)
        self._dice = DiceLoss(class_weights, ignore_void)

    def _sums(self, labels, logits, pixel_weights):
        return ops.concatenate(
            [self._ce._sums(labels, logits, pixel_weights), self._dice._sums(labels, logits, pixel_weights)]
        )

    def _finish(self, sums):
        return self._ce._finish(sums[:2]) + self._dice._finish(sums[2:])


LOSSES: dict[str, type[_SegmentationLoss]] = {
    "ce": CrossEntropy,
    "dice": DiceLoss,
    "ce_dice": CrossEntropyDice,
    "focal": FocalLoss,
}


def build_loss(name: str, class_weights: list[float] | None = None, ignore_void: bool = True) -> Loss:
    """The loss called `name` (ce, dice, ce_dice, focal).

    Raises:
        ValueError: unknown name.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](class_weights=class_weights, ignore_void=ignore_void)
