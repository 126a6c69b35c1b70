"""KFP interface of the evaluate step."""

from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from cityseg.components import container_images


@container_images.component
def evaluate(
    *,
    shards: Input[Dataset],
    model: Input[Model],
    evaluation: Output[Dataset],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    report: Output[HTML],
    split: str,
    corruptions: bool,
    mlflow_tracking_uri: str,
) -> float:
    """Score the model on one split from a single 8x8 confusion matrix (Cityscapes category IoU/Dice).

    Args:
        shards: the TFRecord shards.
        model: the trained model folder.
        evaluation: metrics.json, confusion_matrix.png, per_category.png, report.html and
            frame_confusions.npz (one confusion matrix per frame, per corruption and severity).
        metrics: mean_dice, mean_iou, per-category IoU/Dice, pixel accuracy, latency.
        confusion: the confusion matrix over the 8 categories.
        report: the HTML report with sample predictions.
        split: the split to score.
        corruptions: also score under common corruptions (noise, blur, darkness, fog, JPEG; 3 severities).
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
    Returns:
        mean_dice over the 7 non-void categories.
    """
    params = dict(locals())
    from cityseg.components.evaluate.config import EvaluateConfig
    from cityseg.components.evaluate.core import evaluate as score
    from cityseg.components.kfp_outputs import publish_evaluation
    from cityseg.components.kfp_params import step_config

    scores = score(
        step_config(EvaluateConfig, params, data=shards.path, model=model.path, out=evaluation.path)
    )
    publish_evaluation(scores, evaluation.path, metrics, confusion, report)
    return scores["mean_dice"]
