"""Score a model on one split of the shards the way Cityscapes scores it, from one confusion matrix.

The 8x8 confusion matrix is accumulated over every pixel of the split and the scores come from it
once (`cityseg.components.metrics`), never as an average of per-image or per-batch scores; the
per-frame matrices it sums are kept too (`frame_confusions.npz`,
`cityseg.components.evaluate.frame_matrices`).
The model predicts through `cityseg.components.inference`, which resizes images to the model's
input and its category ids back to label resolution, so scores are always computed against the
labels as stored.
"""

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from cityseg.components import metrics, output_folder
from cityseg.components.evaluate import corruptions, frame_matrices, litert, report
from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.inference import SplitPredictions, predict_split
from cityseg.components.labels import VOID
from cityseg.components.modelstore import LoadedModel, is_mlflow_uri, load

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"
PER_CATEGORY_PNG = "per_category.png"
REPORT_HTML = "report.html"
MLFLOW_ARTIFACT_DIR = "evaluation"


def score(loaded: LoadedModel, data: str, split: str, batch_size: int = 8) -> dict:
    """The metrics of `loaded` on `split`: `metrics.scores` plus size, timing and the matrix."""
    result = predict_split(loaded, data, split, batch_size, keep=0)
    return _metrics(result, split)


def weight_arrays_sha256(model) -> str:
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


def check_labelled(manifest: dict, data: str, split: str) -> None:
    """Refuse a split whose every pixel is void or ignored: scores of it would be zeros, not scores.

    Real Cityscapes ships its test split with placeholder labels (every pixel `unlabeled`), which
    the category masks hold as void; the manifest counts each split's pixels per category.

    Raises:
        ValueError: naming the shards and the split.
    """
    pixels = manifest.get("splits", {}).get(split, {}).get("category_pixels")
    if pixels and sum(pixels) == pixels[VOID]:
        raise ValueError(
            f"{data}: split {split!r} has no labelled pixel (all {sum(pixels)} are void or ignored, as in "
            "Cityscapes' public test labels); it cannot be scored: evaluate a split with labels, such as val"
        )


def evaluate(config: EvaluateConfig) -> dict:
    """Score `config.model` on `config.split`; write metrics.json, 2 PNGs, report.html, frame_confusions.npz.

    metrics.json names the model it scored (`model_sha256` over its weights, `model_ref`,
    `mlflow_run_id`) and the shards (`data_manifest_hash`), so `cityseg push` can check that the
    metrics belong to the model it pushes.

    Returns:
        The metrics written to metrics.json.

    Raises:
        ValueError: bad model, shards or split, or a split without labels (the message names which).
        OutputFolderError: `out` may not be replaced (see `cityseg.components.output_folder`).
    """
    from cityseg.components import tracking
    from cityseg.components.dataset import load_manifest

    check_labelled(load_manifest(config.data), config.data, config.split)
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
        "model_sha256": weight_arrays_sha256(loaded.model),
        "data_manifest_hash": load_manifest(config.data).get("content_hash"),
        "batch_size": config.batch_size,
    }
    # The embedded exports beside the model, scored against it (`cityseg.components.evaluate.litert`).
    scores.update(
        litert.score_exports(loaded.local_dir, config.data, config.split, scores, config.batch_size)
    )
    stacks = {frame_matrices.CLEAN: result.frame_confusions}
    if config.corruptions:
        robust, corrupted = corruptions.score_split(loaded, config.data, config.split, config.batch_size)
        scores.update(robust)
        stacks.update(corrupted)
    files = {
        CONFUSION_PNG: report.confusion_matrix_png(result.confusion),
        PER_CATEGORY_PNG: report.per_category_png(scores),
        frame_matrices.FRAME_CONFUSIONS: frame_matrices.to_npz(stacks),
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
