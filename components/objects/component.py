"""KFP interfaces of the object classifier's steps: train, evaluate and push."""

from typing import NamedTuple

from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from cityseg.components import container_images


@container_images.component
def train_objects(
    *,
    crops: Input[Dataset],
    model: Output[Model],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    width: int,
    augment: str,
    class_weighting: str,
    seed: int,
    workers: int,
    gpus_per_worker: int,
    launcher: str,
    image: str,
    checkpoint_root: str,
    mlflow_tracking_uri: str,
    mlflow_experiment: str,
    run_id: str,
) -> float:
    """Train the object classifier (a small ResNet) on the crop shards; returns its val accuracy.

    Args:
        crops: the crop shards.
        model: the model folder: model.keras, history.json, train_info.json.
        epochs: training epochs.
        batch_size: global batch size, split between the replicas.
        learning_rate: initial learning rate (cosine decay).
        width: channels of the first stage.
        augment: comma-separated augmentations (flip, shift, color, scale); empty for none.
        class_weighting: none or balanced.
        seed: random seed.
        workers: training workers (MultiWorkerMirroredStrategy when more than one).
        gpus_per_worker: GPUs per worker of a TFJob.
        launcher: "local" runs workers as processes here, "tfjob" as a Kubeflow TFJob.
        image: the image TFJob workers run.
        checkpoint_root: volume shared across retries, where a TFJob's chief writes the model
            folder; empty trains in the output.
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
        mlflow_experiment: MLflow experiment of the run.
        run_id: the KFP run id, tagged on the MLflow run and naming the TFJob and its folder.
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.objects.config import ObjectsTrainConfig
    from cityseg.components.objects.launch import TRAINER
    from cityseg.components.train.launch import Launch, train_model

    launch = Launch(workers, launcher, gpus_per_worker, image, checkpoint_root, crops.uri)
    augmentations = tuple(name.strip() for name in augment.split(",") if name.strip())
    config = step_config(
        ObjectsTrainConfig,
        params,
        others=("workers", "launcher", "gpus_per_worker", "image", "checkpoint_root"),
        data=crops.path,
        out=model.path,
        augment=augmentations,
    )
    return train_model(config, launch, TRAINER)["val_accuracy"]


@container_images.component
def evaluate_objects(
    *,
    crops: Input[Dataset],
    model: Input[Model],
    evaluation: Output[Dataset],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    report: Output[HTML],
    split: str,
    mlflow_tracking_uri: str,
) -> float:
    """Score the classifier on one split: accuracy, macro-F1, per-class precision/recall, confusion matrix.

    Args:
        crops: the crop shards.
        model: the trained model folder.
        evaluation: metrics.json and report.html (with the misclassified crops).
        metrics: accuracy, macro_f1, min_recall, precision_<class>, recall_<class>.
        confusion: the confusion matrix over the 8 object classes.
        report: the HTML report.
        split: the split to score.
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
    Returns:
        macro-F1 over the classes of the split.
    """
    params = dict(locals())
    import shutil
    from pathlib import Path

    from cityseg.components.kfp_params import step_config
    from cityseg.components.objects.config import ObjectsEvaluateConfig
    from cityseg.components.objects.evaluate import evaluate, flat_metrics

    config = step_config(
        ObjectsEvaluateConfig, params, data=crops.path, model=model.path, out=evaluation.path
    )
    result = evaluate(config)
    for key, value in flat_metrics(result).items():
        metrics.log_metric(key, value)
    confusion.log_confusion_matrix(result["classes"], result["confusion_matrix"])
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(evaluation.path) / "report.html", report.path)
    return result["macro_f1"]


@container_images.component
def push_objects(
    *,
    model: Input[Model],
    evaluation: Input[Dataset],
    crops: Input[Dataset],
    registered_model: str,
    min_macro_f1: float,
    min_improvement: float,
    mlflow_tracking_uri: str,
    run_id: str,
    pipeline_name: str,
    pipeline_version: str,
) -> NamedTuple("PushOutputs", [("blessed", bool), ("version", str), ("aliases", str), ("reason", str)]):
    """Register the classifier and make it @champion only if it passes the absolute and the change gate.

    Args:
        model: the trained model folder.
        evaluation: the evaluation folder holding metrics.json.
        crops: the crops it was scored on (the champion is re-scored on the same split).
        registered_model: MLflow registered model name.
        min_macro_f1: absolute gate on macro-F1.
        min_improvement: required macro-F1 gain over the current champion.
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
    from cityseg.components.lineage.core import TAG_PIPELINE, TAG_PIPELINE_VERSION
    from cityseg.components.objects.config import ObjectsPushConfig
    from cityseg.components.objects.push import push

    config = step_config(
        ObjectsPushConfig,
        params,
        rename={"registered_model": "name"},
        others=("pipeline_name", "pipeline_version"),
        model=model.path,
        metrics=f"{evaluation.path}/metrics.json",
        data=crops.path,
        lineage=((TAG_PIPELINE, pipeline_name), (TAG_PIPELINE_VERSION, pipeline_version)),
    )
    return push_outputs(push(config))
