"""KFP interface of the push step (the blessing gate)."""

from typing import NamedTuple

from kfp.dsl import Dataset, Input, Model

from cityseg.components import container_images


@container_images.component
def push(
    *,
    model: Input[Model],
    evaluation: Input[Dataset],
    shards: Input[Dataset],
    statistics: Input[Dataset],
    registered_model: str,
    min_dice: float,
    min_improvement: float,
    max_int8_iou_drop: float,
    serving_dir: str,
    mlflow_tracking_uri: str,
    run_id: str,
    pipeline_name: str,
    pipeline_version: str,
) -> NamedTuple("PushOutputs", [("blessed", bool), ("version", str), ("aliases", str), ("reason", str)]):
    """Register the model and promote it to @champion only if it passes the absolute and the change gate.

    Args:
        model: the trained model folder.
        evaluation: the evaluation folder holding metrics.json.
        shards: the shards the model was scored on (the champion is re-scored on the same split).
        statistics: the validate step's data statistics, linked from the version's lineage tags.
        registered_model: MLflow registered model name.
        min_dice: absolute gate on mean_dice.
        min_improvement: required gain of mean_dice over the current champion.
        max_int8_iou_drop: refuse a model whose int8 TFLite export loses more mean_iou; negative is off.
        serving_dir: where a blessed SavedModel is copied (folder or gs://); empty skips the copy.
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
        run_id: the KFP run id, tagged on the model version.
        pipeline_name: the pipeline that made the model, tagged on the version.
        pipeline_version: its version (the image tag), tagged on the version.
    Returns:
        blessed, the registered version, the aliases it holds, and the reason of the decision.
    """
    params = dict(locals())
    from cityseg.components.kfp_outputs import push_outputs
    from cityseg.components.kfp_params import step_config
    from cityseg.components.lineage.core import lineage_tags
    from cityseg.components.push.config import PushConfig
    from cityseg.components.push.core import push as push_model

    lineage = lineage_tags(statistics.uri, pipeline_name=pipeline_name, pipeline_version=pipeline_version)
    config = step_config(
        PushConfig,
        params,
        rename={"registered_model": "name"},
        others=("pipeline_name", "pipeline_version"),
        model=model.path,
        metrics=f"{evaluation.path}/metrics.json",
        data=shards.path,
        max_int8_iou_drop=max_int8_iou_drop if max_int8_iou_drop >= 0 else None,
        lineage=tuple(lineage.items()),
    )
    return push_outputs(push_model(config))
