"""Score a model on one split of the shards the way Cityscapes scores it, from one confusion matrix.

The 8x8 confusion matrix is accumulated over every pixel of the split and the scores come from it
once (`cityseg.components.metrics`), never as an average of per-image or per-batch scores; the
per-frame matrices it sums are kept too (`frame_confusions.npz`, `cityseg.components.evaluate.frames`).
Images whose size differs from the model's input are resized for inference and the predicted
category ids are scaled back (nearest) to label resolution, so scores are always computed against
the labels as stored.
"""

import dataclasses
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cityseg.components import metrics, output_folder
from cityseg.components.evaluate import frames, litert, report
from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.labels import NUM_CLASSES
from cityseg.components.modelstore import LoadedModel, is_mlflow_uri, load

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"
PER_CATEGORY_PNG = "per_category.png"
REPORT_HTML = "report.html"
MLFLOW_ARTIFACT_DIR = "evaluation"


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


def resize_method(model_size: tuple[int, int], label_size: tuple[int, int]) -> str:
    """Area averaging when shrinking to the model's input, as the input pipeline resizes; else bilinear."""
    shrink = model_size[0] <= label_size[0] and model_size[1] <= label_size[1]
    return "area" if shrink else "bilinear"


def _predictor(model, label_size: tuple[int, int]):
    """A compiled function: images at label size -> predicted category ids (uint8) at label size."""
    import tensorflow as tf

    height, width = model.input_shape[1:3]
    model_size = (height or label_size[0], width or label_size[1])
    resize = tuple(model_size) != tuple(label_size)
    method = resize_method(model_size, label_size)

    @tf.function(input_signature=[tf.TensorSpec((None, *label_size, 3), tf.float32)], autograph=False)
    def predict(images):
        if resize:
            images = tf.image.resize(images, model_size, method=method)
        classes = tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)
        if resize:
            classes = tf.image.resize(classes[..., None], label_size, method="nearest")[..., 0]
        return tf.cast(classes, tf.uint8)

    # Trace now, so that graph building stays out of the latency figure.
    predict.get_concrete_function()
    return predict


def predict_split(
    loaded: LoadedModel, data: str, split: str, batch_size: int = 8, keep: int = 6
) -> SplitPredictions:
    """Run the model over every example of `split`: one 8x8 confusion matrix per frame, and their sum.

    Raises:
        ValueError: the shards have no such split, or it is empty.
    """
    from cityseg.components.dataset import load_manifest, make_dataset

    manifest = load_manifest(data)
    splits = manifest.get("splits", {})
    if split not in splits or not splits[split].get("examples"):
        known = ", ".join(name for name, s in splits.items() if s.get("examples")) or "none"
        raise ValueError(f"{data}: no examples in split {split!r} (splits with examples: {known})")
    label_size = (int(manifest["height"]), int(manifest["width"]))
    predict = _predictor(loaded.model, label_size)
    dataset = make_dataset(data, split, batch_size)

    per_frame = []
    kept_images, kept_true, kept_pred = [], [], []
    examples, inference_s = 0, 0.0
    total = math.ceil(splits[split]["examples"] / batch_size)
    for images, masks in tqdm(dataset, total=total, desc=f"evaluate {split}", unit="batch"):
        start = time.perf_counter()
        predicted = predict(images).numpy()
        inference_s += time.perf_counter() - start
        true = masks.numpy()
        per_frame.append(metrics.frame_confusions(true, predicted))
        examples += len(true)
        if sum(len(x) for x in kept_images) < keep:
            kept_images.append((images.numpy() * 255).round().astype(np.uint8))
            kept_true.append(true.astype(np.uint8))
            kept_pred.append(predicted)
    empty = np.zeros((0, *label_size), dtype=np.uint8)
    stack = np.concatenate(per_frame) if per_frame else np.zeros((0, NUM_CLASSES, NUM_CLASSES), np.int64)
    return SplitPredictions(
        confusion=stack.sum(axis=0),
        frame_confusions=stack,
        examples=examples,
        inference_s=inference_s,
        images=np.concatenate(kept_images)[:keep] if kept_images else np.zeros((0, *label_size, 3), np.uint8),
        true_masks=np.concatenate(kept_true)[:keep] if kept_true else empty,
        predicted_masks=np.concatenate(kept_pred)[:keep] if kept_pred else empty,
    )


def score(loaded: LoadedModel, data: str, split: str, batch_size: int = 8) -> dict:
    """The metrics of `loaded` on `split`: `metrics.scores` plus size, timing and the matrix."""
    result = predict_split(loaded, data, split, batch_size, keep=0)
    return _metrics(result, split)


def weights_sha256(model) -> str:
    """A checksum of the model's weights (dtype, shape and bytes of each, in order).

    metrics.json records it as the model's identity, and `cityseg push` recomputes it: it names the
    weights, not the file, so a model folder, a `.keras` file and an MLflow download of the same
    model agree.
    """
    digest = hashlib.sha256()
    for weight in model.get_weights():
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _metrics(result: SplitPredictions, split: str) -> dict:
    seconds = max(result.inference_s, 1e-9)
    return {
        **metrics.scores(result.confusion),
        "latency_ms_per_image": 1000.0 * seconds / result.examples,
        "images_per_s": result.examples / seconds,
        "split": split,
        "examples": result.examples,
        "confusion_matrix": result.confusion.tolist(),
    }


def evaluate(config: EvaluateConfig) -> dict:
    """Score `config.model` on `config.split`; write metrics.json, 2 PNGs, report.html, frame_confusions.npz.

    metrics.json names the model it scored (`model_sha256` over its weights, `model_ref`,
    `mlflow_run_id`) and the shards (`data_manifest_hash`), so `cityseg push` can check that the
    metrics belong to the model it pushes.

    Returns:
        The metrics written to metrics.json.

    Raises:
        ValueError: bad model, shards or split (the message names which).
        OutputFolderError: `out` may not be replaced (see `cityseg.components.output_folder`).
    """
    from cityseg.components import tracking

    sources = [config.data] if is_mlflow_uri(config.model) else [config.data, config.model]
    with output_folder.staged_folder(config.out, "evaluate", sources) as staging:
        if is_mlflow_uri(config.model):
            tracking.connect(config.tracking_uri)
        loaded = load(config.model, cache_dir=config.cache_dir)
        log_run = loaded.run_id if config.log_to_mlflow else None
        if log_run:
            uri = tracking.connect(config.tracking_uri)
            if not tracking.run_exists(log_run):
                raise ValueError(
                    f"MLflow run {log_run} of the model is not in {uri}; point --tracking-uri at the "
                    "store that trained it, or pass --no-mlflow"
                )
        elif config.log_to_mlflow:
            log.info("%s has no MLflow run; the metrics go to %s only", config.model, config.out)
        scores, files = _score_and_report(config, loaded)
        for name, data in files.items():
            Path(staging, name).write_bytes(data)
        # metrics.json last: its presence says the evaluation folder is complete.
        Path(staging, METRICS_FILE).write_text(json.dumps(scores, indent=2) + "\n")
    if log_run:
        tracking.log_to_run(
            log_run, _eval_metrics(scores), {"eval_split": scores["split"]}, files, MLFLOW_ARTIFACT_DIR
        )
        log.info("logged eval_* metrics to MLflow run %s", log_run)
    return scores


def _score_and_report(config: EvaluateConfig, loaded: LoadedModel) -> tuple[dict, dict[str, bytes]]:
    """The metrics.json content and the report files of one evaluation."""
    from cityseg.components.dataset import load_manifest

    log.info("evaluating %s on %s/%s", config.model, config.data, config.split)
    result = predict_split(loaded, config.data, config.split, config.batch_size, keep=config.samples)
    scores = {
        **_metrics(result, config.split),
        "model_ref": config.model,
        "model_version": loaded.version,
        "mlflow_run_id": loaded.run_id,
        "model_sha256": weights_sha256(loaded.model),
        "data_manifest_hash": load_manifest(config.data).get("content_hash"),
        "batch_size": config.batch_size,
    }
    # The embedded exports beside the model, scored against it (`cityseg.components.evaluate.litert`).
    scores.update(
        litert.score_exports(loaded.local_dir, config.data, config.split, scores, config.batch_size)
    )
    stacks = {frames.CLEAN: result.frame_confusions}
    if config.corruptions:
        from cityseg.components.evaluate.corruptions import score_split

        robust, corrupted = score_split(loaded, config.data, config.split, config.batch_size)
        scores.update(robust)
        stacks.update(corrupted)
    files = {
        CONFUSION_PNG: report.confusion_matrix_png(result.confusion),
        PER_CATEGORY_PNG: report.per_category_png(scores),
        frames.FRAME_CONFUSIONS: frames.to_npz(stacks),
    }
    files[REPORT_HTML] = report.report_html(
        scores,
        result.images,
        result.true_masks,
        result.predicted_masks,
        confusion_png=files[CONFUSION_PNG],
        per_category_png=files[PER_CATEGORY_PNG],
    ).encode("utf-8")
    return scores, files


def _eval_metrics(scores: dict) -> dict[str, float]:
    return {
        f"eval_{key}": float(value)
        for key, value in scores.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
