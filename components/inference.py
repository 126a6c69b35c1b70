"""Model and image in, category ids out: the one home of the resize rule, the predictor and split prediction.

Evaluation, the robustness and LiteRT scores, push's infra validation and the serving API all predict
through these functions, so they predict the same mask for the same picture. An image whose size
differs from the model's input is resized to it by area averaging when that shrinks both sides (as
the input pipeline resizes) and bilinearly otherwise; the predicted category ids go back to the
image's size by nearest neighbour, so scores are computed against the labels as stored.
"""

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from cityseg.components import metrics
from cityseg.components.labels import NUM_CLASSES
from cityseg.components.modelstore import LoadedModel


@dataclasses.dataclass(frozen=True)
class SplitPredictions:
    """One pass over a split: the confusion matrix (and per frame), timing and the first few examples."""

    confusion: np.ndarray
    frame_confusions: np.ndarray
    examples: int
    inference_s: float
    images: np.ndarray
    true_masks: np.ndarray
    predicted_masks: np.ndarray


def resize_to_model(images, model_size):
    """`images` (N, H, W, 3) at `model_size`: area averaging when that shrinks both sides, else bilinear.

    `model_size` may be a tensor, so a graph that takes images of any size resizes by the same rule.
    """
    import tensorflow as tf

    model_size = tf.convert_to_tensor(model_size, tf.int32)
    shrinks = tf.reduce_all(model_size <= tf.shape(images)[1:3])
    return tf.cond(
        shrinks,
        lambda: tf.image.resize(images, model_size, method="area"),
        lambda: tf.image.resize(images, model_size, method="bilinear"),
    )


def predictor(model, label_size: tuple[int, int]) -> Callable:
    """A compiled function: float32 images in [0, 1] at `label_size` -> uint8 category ids at `label_size`."""
    import tensorflow as tf

    height, width = model.input_shape[1:3]
    model_size = (height or label_size[0], width or label_size[1])
    resize = tuple(model_size) != tuple(label_size)

    @tf.function(input_signature=[tf.TensorSpec((None, *label_size, 3), tf.float32)], autograph=False)
    def predict(images):
        if resize:
            images = tf.ensure_shape(resize_to_model(images, model_size), (None, *model_size, 3))
        classes = tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)
        if resize:
            classes = tf.image.resize(classes[..., None], label_size, method="nearest")[..., 0]
        return tf.cast(classes, tf.uint8)

    # Trace now, so that graph building stays out of the latency figure.
    predict.get_concrete_function()
    return predict


def split_label_size(manifest: dict, data: str, split: str) -> tuple[int, int]:
    """The (height, width) of the stored labels, once `split` is known to hold examples.

    Raises:
        ValueError: the shards have no such split, or it is empty.
    """
    splits = manifest.get("splits", {})
    if split not in splits or not splits[split].get("examples"):
        known = ", ".join(name for name, s in splits.items() if s.get("examples")) or "none"
        raise ValueError(f"{data}: no examples in split {split!r} (splits with examples: {known})")
    return int(manifest["height"]), int(manifest["width"])


def predict_split(
    loaded: LoadedModel, data: str, split: str, batch_size: int = 8, keep: int = 6
) -> SplitPredictions:
    """Run the model over every example of `split`: one 8x8 confusion matrix per frame, and their sum.

    Raises:
        ValueError: the shards have no such split, or it is empty.
    """
    from cityseg.components.dataset import load_manifest, make_dataset

    manifest = load_manifest(data)
    label_size = split_label_size(manifest, data, split)
    predict = predictor(loaded.model, label_size)
    per_frame, kept = [], ([], [], [])
    examples, inference_s = 0, 0.0
    total = math.ceil(manifest["splits"][split]["examples"] / batch_size)
    dataset = make_dataset(data, split, batch_size)
    for images, masks in tqdm(dataset, total=total, desc=f"evaluate {split}", unit="batch"):
        start = time.perf_counter()
        predicted = predict(images).numpy()
        inference_s += time.perf_counter() - start
        true = masks.numpy()
        per_frame.append(metrics.frame_confusions(true, predicted))
        examples += len(true)
        if sum(len(x) for x in kept[0]) < keep:
            kept[0].append((images.numpy() * 255).round().astype(np.uint8))
            kept[1].append(true.astype(np.uint8))
            kept[2].append(predicted)
    stack = np.concatenate(per_frame) if per_frame else np.zeros((0, NUM_CLASSES, NUM_CLASSES), np.int64)
    images, true_masks, predicted_masks = (
        np.concatenate(arrays)[:keep] if arrays else np.zeros((0, *label_size, *shape), np.uint8)
        for arrays, shape in zip(kept, ((3,), (), ()), strict=True)
    )
    return SplitPredictions(
        confusion=stack.sum(axis=0),
        frame_confusions=stack,
        examples=examples,
        inference_s=inference_s,
        images=images,
        true_masks=true_masks,
        predicted_masks=predicted_masks,
    )
