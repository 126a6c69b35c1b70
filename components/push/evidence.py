"""The evidence a push rests on: `cityseg evaluate`'s metrics.json, bound to one model and one set of shards.

A push blesses a model on the scores in metrics.json, so those scores must be the model's own:
`evaluate` records the checksum of the weights it scored (`model_sha256`), the model's MLflow run
and the shards' content hash, and a push refuses metrics that lack them or name something else.
"""

import json
import math

from cityseg.components import storage, tracking

# The shards' content hash and the weights' checksum bind the scores to data and model.
EVIDENCE_KEYS = ("data_manifest_hash", "model_sha256")


def read_metrics(path: str, metric: str = "mean_dice") -> dict:
    """metrics.json written by `cityseg evaluate`, checked for the keys the gate and the evidence need.

    `metric` is the score the gate reads: mean_dice for the segmenter, macro_f1 for the object classifier.

    Raises:
        ValueError: missing or unreadable file, missing keys, or a score that is no number in [0, 1].
    """
    try:
        scores = json.loads(storage.read_text(path))
    except FileNotFoundError as err:
        raise ValueError(f"{path}: metrics file not found (write it with `cityseg evaluate`)") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(scores, dict):
        raise ValueError(f"{path}: expected a JSON object of metrics")
    missing = [key for key in (metric, "split") if key not in scores]
    if missing:
        raise ValueError(
            f"{path}: missing keys {', '.join(missing)} (is this a `cityseg evaluate` metrics.json?)"
        )
    dice = scores[metric]
    if dice is not None and (
        isinstance(dice, bool) or not isinstance(dice, int | float) or not 0 <= dice <= 1
    ):
        raise ValueError(f"{path}: {metric} must be a number in [0, 1] or null, got {dice!r}")
    missing = [key for key in EVIDENCE_KEYS if not scores.get(key)]
    if missing:
        raise ValueError(
            f"{path}: missing keys {', '.join(missing)}, so nothing shows which model and shards it "
            "scored; evaluate the model again with `cityseg evaluate`"
        )
    return scores


def check_evidence(scores: dict, metrics_path: str, loaded, manifest: dict, data: str) -> None:
    """Refuse metrics that were not computed on this model and these shards.

    Raises:
        ValueError: naming the metrics file and what differs: the weights checksum, the MLflow run,
            or the shards' content hash.
    """
    from cityseg.components.evaluate.core import weight_arrays_sha256

    checksum = weight_arrays_sha256(loaded.model)
    if scores["model_sha256"] != checksum:
        raise ValueError(
            f"{metrics_path} scored another model ({scores.get('model_ref')}, weights "
            f"{str(scores['model_sha256'])[:12]}), not {loaded.ref} (weights {checksum[:12]}): evaluate "
            "this model and push it with its own metrics.json"
        )
    run_id = scores.get("mlflow_run_id")
    if run_id and loaded.run_id and run_id != loaded.run_id:
        raise ValueError(
            f"{metrics_path} scored the model of MLflow run {run_id}, but {loaded.ref} belongs to run "
            f"{loaded.run_id}: push each model with its own metrics.json"
        )
    manifest_hash = manifest.get("content_hash")
    if not manifest_hash:
        raise ValueError(f"{data}: manifest.json has no content_hash; write the shards with `cityseg shard`")
    if scores["data_manifest_hash"] != manifest_hash:
        raise ValueError(
            f"{metrics_path} was computed on shards {str(scores['data_manifest_hash'])[:12]}, but {data} "
            f"holds {manifest_hash[:12]}: the champion must be re-scored on the same data"
        )


def int8_refusal(scores: dict, max_drop: float | None) -> str | None:
    """Why the int8 export gate refuses the model, or None when it passes or is off (`max_drop` None).

    The int8 TFLite file is the embedded team's product: a model whose int8 export loses more than
    `max_drop` mean_iou against the Keras model, or whose int8 export was not scored, is refused.
    """
    if max_drop is None:
        return None
    from cityseg.components.evaluate.litert import int8_iou_drop

    drop = int8_iou_drop(scores)
    if drop is None:
        return (
            "int8 gate: metrics.json has no int8 export score (tflite_int8_mean_iou_delta); train with "
            "TFLite exports and evaluate the model folder"
        )
    if drop > max_drop and not math.isclose(drop, max_drop, abs_tol=1e-12):
        return f"int8 gate: the int8 export loses {drop:.4f} mean_iou > max_int8_iou_drop {max_drop:.4f}"
    return None


def version_tags(scores: dict, manifest_hash: str | None, kfp_run_id: str | None) -> dict[str, str]:
    """The version's tags: every numeric eval score, the split, the shards' hash and the run tags."""
    tags = {
        f"eval_{key}": f"{value:.6g}" if isinstance(value, float) else str(value)
        for key, value in scores.items()
        if value is not None and isinstance(value, int | float) and not isinstance(value, bool)
    }
    tags["eval_split"] = str(scores["split"])
    if manifest_hash:
        tags["data_manifest_hash"] = manifest_hash
    tags.update(tracking.run_tags(kfp_run_id))
    return tags
