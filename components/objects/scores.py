"""Classification scores from true and predicted classes: accuracy, macro-F1, per-class precision, recall."""

import numpy as np

from cityseg.components import metrics
from cityseg.components.crops.schema import CLASSES, NUM_CLASSES


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, macro-F1 (over the classes in `y_true`), per-class precision/recall/F1/support, confusion.

    A class never predicted has precision 0; one absent from `y_true` has recall None and is left
    out of macro-F1, so a split without trains is not scored as if every train were missed.
    """
    cm = metrics.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), NUM_CLASSES)
    true_positives = np.diag(cm).astype(float)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    per_class = {}
    f1s = []
    for index, name in enumerate(CLASSES):
        precision = true_positives[index] / predicted[index] if predicted[index] else 0.0
        recall = true_positives[index] / support[index] if support[index] else None
        f1 = None
        if recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            f1s.append(f1)
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support[index])}
    total = int(cm.sum())
    return {
        "accuracy": float(true_positives.sum() / total) if total else None,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "min_recall": min((c["recall"] for c in per_class.values() if c["recall"] is not None), default=None),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "examples": total,
    }
