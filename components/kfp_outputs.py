"""Turning step results into KFP artifacts and outputs, so the component bodies stay one call long."""

import numbers
import shutil
from pathlib import Path

from cityseg.components.labels import CATEGORY_NAMES

# Scalars worth a column in the KFP run comparison view; the rest stay in metrics.json.
METRIC_KEYS = ("mean_dice", "mean_iou", "mean_dice_8", "mean_iou_8", "pixel_accuracy", "latency_ms_per_image")


def scalar_metrics(scores: dict) -> dict[str, float]:
    """The headline and per-category scores that have a value (absent categories are None)."""
    keys = [
        *METRIC_KEYS,
        *(f"iou_{name}" for name in CATEGORY_NAMES),
        *(f"dice_{name}" for name in CATEGORY_NAMES),
    ]
    return {
        key: float(scores[key])
        for key in keys
        if isinstance(scores.get(key), numbers.Real) and not isinstance(scores.get(key), bool)
    }


def publish_evaluation(scores: dict, evaluation_dir: str, metrics, confusion, report) -> None:
    """Scores to the Metrics artifact, the confusion matrix to ClassificationMetrics, the report to HTML."""
    for key, value in scalar_metrics(scores).items():
        metrics.log_metric(key, value)
    confusion.log_confusion_matrix(
        list(CATEGORY_NAMES), [[int(v) for v in row] for row in scores["confusion_matrix"]]
    )
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(evaluation_dir) / "report.html", report.path)


def push_outputs(result) -> tuple[bool, str, str, str]:
    """(blessed, version, aliases, reason) of a PushResult, as the push component returns them."""
    version = "" if result.version is None else str(result.version)
    return bool(result.blessed), version, ",".join(result.aliases or ()), str(result.reason)
