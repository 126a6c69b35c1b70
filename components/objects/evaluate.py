"""Score the object classifier on a split of the crop shards: metrics.json, an HTML report, MLflow.

metrics.json carries the evidence a push checks (the weights' checksum, the model's MLflow run and
the crops' content hash), as the segmenter's evaluation does, and the misclassified crops.
"""

import json
import logging
from pathlib import Path

import numpy as np

from cityseg.components import tracking
from cityseg.components.crops.schema import CLASSES, NUM_CLASSES, decode_crop
from cityseg.components.objects.config import ObjectsEvaluateConfig
from cityseg.components.objects.data import load_crops_manifest, split_files
from cityseg.components.objects.report import render_report
from cityseg.components.objects.scores import classification_scores

log = logging.getLogger(__name__)


def check_classifier(model, ref: str) -> None:
    """Require crops in and one logit per object class out.

    Raises:
        ValueError: naming `ref`, for any other input or output shape.
    """
    input_shape, output_shape = tuple(model.input_shape), tuple(model.output_shape)
    if len(input_shape) != 4 or input_shape[-1] != 3 or output_shape[1:] != (NUM_CLASSES,):
        raise ValueError(
            f"{ref}: model maps {input_shape} to {output_shape}; an object classifier maps "
            f"(batch, S, S, 3) crops to (batch, {NUM_CLASSES}) logits"
        )


def load_classifier(ref: str, cache_dir: str | None = None):
    """The classifier at `ref` (model folder, .keras file, runs:/ or models:/ URI) as a LoadedModel."""
    from cityseg.components import modelstore

    cache = cache_dir or modelstore.DEFAULT_CACHE_DIR
    return modelstore.load(ref, cache, check=check_classifier)


def read_split(data: str, split: str) -> list[dict]:
    """Every crop record of one split, decoded (see `schema.decode_crop`), in shard order."""
    import tensorflow as tf

    return [decode_crop(record.numpy()) for record in tf.data.TFRecordDataset(split_files(data, split))]


def predict(model, records: list[dict], batch_size: int) -> np.ndarray:
    """Class probabilities (N x classes) of decoded crops."""
    import cv2
    import tensorflow as tf

    images = np.stack(
        [
            cv2.cvtColor(cv2.imdecode(np.frombuffer(r["png"], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            for r in records
        ]
    ).astype(np.float32)
    logits = model.predict(images, batch_size=batch_size, verbose=0)
    return tf.nn.softmax(logits).numpy()


def score(model, data: str, split: str, batch_size: int) -> dict:
    """The classification scores of `model` on a split (see `classification_scores`)."""
    records = read_split(data, split)
    probabilities = predict(model, records, batch_size)
    return classification_scores(np.array([r["label"] for r in records]), probabilities.argmax(axis=1))


def errors(records: list[dict], probabilities: np.ndarray, limit: int) -> list[dict]:
    """The misclassified crops, most confident first: frame, instance, box, true and predicted class, PNG."""
    predicted = probabilities.argmax(axis=1)
    wrong = [i for i, r in enumerate(records) if predicted[i] != r["label"]]
    wrong.sort(key=lambda i: -probabilities[i, predicted[i]])
    return [
        {
            "filename": records[i]["filename"],
            "instance_id": records[i]["instance_id"],
            "box": records[i]["box"],
            "true": CLASSES[records[i]["label"]],
            "predicted": CLASSES[predicted[i]],
            "probability": round(float(probabilities[i, predicted[i]]), 4),
            "png": records[i]["png"],
        }
        for i in wrong[:limit]
    ]


def flat_metrics(scores: dict) -> dict[str, float]:
    """The scores as MLflow metrics: accuracy, macro_f1, min_recall, precision_<class>, recall_<class>."""
    flat = {key: scores[key] for key in ("accuracy", "macro_f1", "min_recall") if scores[key] is not None}
    for name, entry in scores["per_class"].items():
        for key in ("precision", "recall", "f1"):
            if entry[key] is not None:
                flat[f"{key}_{name}"] = float(entry[key])
    return flat


def evaluate(config: ObjectsEvaluateConfig) -> dict:
    """Score `config.model` on `config.split`; write `out/metrics.json` and `out/report.html`; log to MLflow.

    Returns:
        metrics.json's content.

    Raises:
        ValueError: not a crops folder, a split without shards, or a model that is no classifier.
    """
    from cityseg.components.evaluate.core import weight_arrays_sha256

    manifest = load_crops_manifest(config.data)
    loaded = load_classifier(config.model)
    records = read_split(config.data, config.split)
    probabilities = predict(loaded.model, records, config.batch_size)
    scores = classification_scores(np.array([r["label"] for r in records]), probabilities.argmax(axis=1))
    wrong = errors(records, probabilities, config.max_errors)
    result = {
        "split": config.split,
        **scores,
        "classes": list(CLASSES),
        "model_ref": str(config.model),
        "model_sha256": weight_arrays_sha256(loaded.model),
        "mlflow_run_id": loaded.run_id,
        "data_manifest_hash": manifest["content_hash"],
        "errors": [{k: v for k, v in e.items() if k != "png"} for e in wrong],
    }
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    html = render_report(result, wrong)
    (out / "report.html").write_text(html)
    if loaded.run_id:
        tracking.connect(config.tracking_uri)
        tracking.log_to_run(
            loaded.run_id,
            {f"{config.split}_{k}": v for k, v in flat_metrics(scores).items()},
            {"evaluated_split": config.split},
            {"metrics.json": (out / "metrics.json").read_bytes(), "report.html": html.encode()},
            "evaluation",
        )
    log.info("%s: accuracy %.3f, macro-F1 %.3f", config.split, scores["accuracy"], scores["macro_f1"])
    return result
