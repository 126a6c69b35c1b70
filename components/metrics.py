"""Dice, IoU and pixel accuracy from one confusion matrix accumulated over a whole split.

Conventions follow the official Cityscapes pixel-level evaluation (`cityscapesscripts`,
`getIouScoreForCategory`) for the 7 evaluated categories:
- ground-truth void pixels count for nothing (they are no false positive of any category);
- a pixel of a category predicted as void is a false negative of that category, as in
  `getIouScoreForCategory` (fn is the whole row of the category minus tp);
- a category absent from both ground truth and prediction has no score (None), and means skip it.
The `_8` variants treat void as an ordinary eighth class, without any of those exceptions.
"""

import numpy as np

from cityseg.components.labels import CATEGORY_NAMES, NUM_CLASSES, VOID


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts of (true, predicted) pairs: row = true class, column = predicted class, int64.

    Raises:
        ValueError: the shapes differ or a value lies outside 0..num_classes-1.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"true and predicted masks differ in size: {y_true.size} vs {y_pred.size} pixels")
    return frame_confusions(y_true[None], y_pred[None], num_classes)[0]


def frame_confusions(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """One confusion matrix per frame of (N, H, W) masks: int64 (N, classes, classes), row = true class.

    One bincount over all frames, each frame's pairs offset by frame * classes^2.

    Raises:
        ValueError: the shapes differ or a value lies outside 0..num_classes-1.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim < 1:
        raise ValueError(f"true and predicted masks differ in shape: {y_true.shape} vs {y_pred.shape}")
    for name, values in (("true", y_true), ("predicted", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} mask has values outside 0..{num_classes - 1}")
    frames = len(y_true)
    cells = num_classes * num_classes
    flat = y_true.reshape(frames, -1).astype(np.int64) * num_classes + y_pred.reshape(frames, -1)
    flat += np.arange(frames, dtype=np.int64)[:, None] * cells
    counts = np.bincount(flat.ravel(), minlength=frames * cells)
    return counts.reshape(frames, num_classes, num_classes)


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def scores(cm: np.ndarray) -> dict[str, float | None]:
    """Per-category `iou_<name>`, `dice_<name>`, their means and `pixel_accuracy` from a confusion matrix.

    `mean_iou` / `mean_dice` average the 7 non-void categories under the Cityscapes convention;
    `mean_iou_8` / `mean_dice_8` average all 8 classes with void as a class. `pixel_accuracy` is
    the share of non-void ground-truth pixels predicted correctly.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"confusion matrix must be {NUM_CLASSES}x{NUM_CLASSES}, got {cm.shape}")
    tp = np.diag(cm)
    result: dict[str, float | None] = {}
    iou_7, dice_7, iou_8, dice_8 = [], [], [], []
    for c, name in enumerate(CATEGORY_NAMES):
        fn_all = cm[c].sum() - tp[c]
        fp_all = cm[:, c].sum() - tp[c]
        iou_8.append(_ratio(tp[c], tp[c] + fp_all + fn_all))
        dice_8.append(_ratio(2 * tp[c], 2 * tp[c] + fp_all + fn_all))
        if c == VOID:
            result[f"iou_{name}"], result[f"dice_{name}"] = iou_8[-1], dice_8[-1]
            continue
        fn = fn_all
        fp = fp_all - cm[VOID, c]
        iou_7.append(_ratio(tp[c], tp[c] + fp + fn))
        dice_7.append(_ratio(2 * tp[c], 2 * tp[c] + fp + fn))
        result[f"iou_{name}"], result[f"dice_{name}"] = iou_7[-1], dice_7[-1]
    result["mean_iou"] = _mean(iou_7)
    result["mean_dice"] = _mean(dice_7)
    result["mean_iou_8"] = _mean(iou_8)
    result["mean_dice_8"] = _mean(dice_8)
    result["pixel_accuracy"] = _ratio(tp[1:].sum(), cm[1:].sum())
    return result
