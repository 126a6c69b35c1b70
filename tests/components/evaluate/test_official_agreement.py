import copy
import math

import cv2
import numpy as np
import pytest
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
from cityscapesscripts.helpers.labels import labels as LABELS

from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.evaluate.core import evaluate
from cityseg.components.labels import CATEGORY_NAMES, category_lut
from tests.components.evaluate.builders import (
    blocks,
    decoder_model,
    encode_categories,
    model_folder,
    write_shards,
)

# Ground-truth label ids the comparison may use: void ids, and ids that are evaluated.
SCORABLE_IDS = sorted(
    label.id for label in LABELS if label.id >= 0 and (label.category == "void" or not label.ignoreInEval)
)
# The label id a prediction of each category is written as: the category's first evaluated id (void: 0).
REPRESENTATIVE_ID = np.array(
    [0] + [min(lb.id for lb in LABELS if lb.categoryId == c and not lb.ignoreInEval) for c in range(1, 8)],
    np.uint8,
)


def _official_scores(ground_truth: list, predictions: list, root) -> dict:
    """Run cityscapesscripts' pixel-level evaluation on label-id PNGs in the Cityscapes result layout."""
    gt_files = []
    for i, (gt, prediction) in enumerate(zip(ground_truth, predictions, strict=True)):
        stem = f"frankfurt_000000_{i:06d}"
        gt_path = root / "gtFine" / "val" / "frankfurt" / f"{stem}_gtFine_labelIds.png"
        gt_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(gt_path), gt)
        (root / "results").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "results" / f"{stem}_pred.png"), REPRESENTATIVE_ID[prediction])
        gt_files.append(str(gt_path))
    args = copy.copy(official.args)
    args.predictionPath, args.predictionWalk = str(root / "results"), None
    args.evalInstLevelScore, args.JSONOutput, args.quiet = False, False, True
    # The official matcher pairs each ground truth with <city>_<seq>_<frame>*.png under the results root.
    prediction_files = [official.getPrediction(args, gt) for gt in gt_files]
    return official.evaluateImgLists(prediction_files, gt_files, args)


def test_category_iou_matches_official_cityscapes_evaluation(tmp_path):
    """Category IoU and its mean agree with `averageScoreCategories` of cityscapesscripts to 1e-6.

    The ground truth uses only label ids that are void or evaluated: the official category IoU also
    ignores ground-truth pixels of the non-void labels that are ignoreInEval (parking, rail track,
    guard rail, bridge, tunnel, polegroup, caravan, trailer), which the category masks of our shards
    can no longer tell apart from their category's evaluated labels. Predictions include void, which
    both count as a false negative of the true category.
    """
    rng = np.random.default_rng(7)
    ground_truth = blocks(rng, 5, 32, 64, SCORABLE_IDS)
    categories = category_lut()[ground_truth]
    guess = rng.integers(0, 8, categories.shape).astype(np.uint8)
    predictions = np.where(rng.random(categories.shape) < 0.6, categories, guess)
    images = np.stack(
        [encode_categories(predictions), *(rng.integers(0, 256, (2, *predictions.shape), np.uint8))], -1
    )

    shards = write_shards(tmp_path / "shards", {"val": (images, categories)})
    model = model_folder(decoder_model(32, 64, channel=0), tmp_path / "model")
    ours = evaluate(
        EvaluateConfig(data=str(shards), model=str(model), out=str(tmp_path / "eval"), log_to_mlflow=False)
    )
    theirs = _official_scores(list(ground_truth), list(predictions), tmp_path / "cityscapes")

    for name in CATEGORY_NAMES[1:]:
        assert ours[f"iou_{name}"] == pytest.approx(theirs["categoryScores"][name], abs=1e-6), name
    assert math.isnan(theirs["categoryScores"]["void"])
    assert ours["mean_iou"] == pytest.approx(theirs["averageScoreCategories"], abs=1e-6)
    # The draw is rich enough to test something: void predictions on scored pixels, every category present.
    assert ((predictions == 0) & (categories != 0)).sum() > 100
    assert all(0.3 < ours[f"iou_{name}"] < 0.9 for name in CATEGORY_NAMES[1:])
