"""KFP interface of the train step."""

from kfp.dsl import Dataset, Input, Model, Output

from cityseg.components import container_images


@container_images.component
def train(
    *,
    shards: Input[Dataset],
    model: Output[Model],
    model_name: str,
    loss: str,
    augment: str,
    epochs: int,
    early_stopping_patience: int,
    batch_size: int,
    learning_rate: float,
    class_weighting: str,
    height: int,
    width: int,
    seed: int,
    workers: int,
    gpus_per_worker: int,
    launcher: str,
    image: str,
    checkpoint_root: str,
    mlflow_tracking_uri: str,
    mlflow_experiment: str,
    run_id: str,
    parent_run_id: str,
) -> None:
    """Train a segmentation model (Keras) on the shards, tracked in MLflow; resumes from its checkpoints.

    Args:
        shards: the TFRecord shards.
        model: model.keras, saved_model/, tflite/, history.json, curves.png and train_info.json.
        model_name: unet_mini, unet, mobilenetv2_unet or deeplabv3plus.
        loss: ce, dice, ce_dice or focal.
        epochs: training epochs (at most, with early stopping).
        early_stopping_patience: stop when select_mean_dice has not improved for this many epochs; 0 never.
        batch_size: the global batch, split between the replicas.
        height: training height.
        width: training width.
        learning_rate: initial learning rate (cosine decay).
        class_weighting: none, median or inverse_log, from the shards' category pixel counts.
        workers: training workers (MultiWorkerMirroredStrategy when more than one).
        gpus_per_worker: GPUs per worker of a TFJob.
        launcher: "local" runs workers as processes here, "tfjob" as a Kubeflow TFJob.
        image: the image TFJob workers run.
        checkpoint_root: volume shared across retries; empty keeps the checkpoints in the output.
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
        mlflow_experiment: MLflow experiment name.
        seed: random seed.
        run_id: the KFP run id, tagged on the MLflow run and naming the checkpoint folder.
        augment: comma-separated augmentations (flip, scale_crop, color_jitter, noise, rotate).
        parent_run_id: MLflow run this run nests under (a comparison sweep's parent run); empty for none.
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.train.config import TrainConfig
    from cityseg.components.train.launch import Launch, train_model

    launch = Launch(workers, launcher, gpus_per_worker, image, checkpoint_root, shards.uri)
    config = step_config(
        TrainConfig,
        params,
        rename={"model_name": "model"},
        others=("workers", "launcher", "gpus_per_worker", "image", "checkpoint_root"),
        data=shards.path,
        out=model.path,
        augment=tuple(name for name in augment.split(",") if name),
    )
    info = train_model(config, launch)
    model.metadata.update(
        {key: info[key] for key in ("model", "loss", "num_params", "epochs_run", "training_time_s")}
    )
