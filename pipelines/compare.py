"""The model-comparison sweep: data -> shards -> ParallelFor(train -> evaluate) -> report -> push the best.

Every configuration (model x loss x augmentation on/off) trains and evaluates on the same shards,
as an MLflow child run of one parent run; the report step compares them, logs the report to the
parent run, and hands the best configuration by mean_dice to the push gate. `compare_pipeline(...)`
is a pure factory like `cityseg.pipelines.training.create_pipeline`, built from the same step components.
"""

from pathlib import Path
from typing import Literal, NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Model

from cityseg.components import images, tracking
from cityseg.components.compare import component as compare_component
from cityseg.components.compare.core import SweepConfig, expand_sweep, parse_augment
from cityseg.pipelines.local import LocalRun, run_in_kfp_local
from cityseg.pipelines.training import Cluster, Steps, TaskSettings, prepare_data, push_model
from cityseg.pipelines.validation import ParameterError, validate_params

PIPELINE_NAME = "cityseg-compare"
# Configurations training at once: the cluster's GPU quota; one at a time locally, where two
# trainings would share 2 cores and make the training times of the report meaningless.
PARALLELISM = {"gke": 4, "local": 1}


class CompareOutputs(NamedTuple):
    report: HTML
    best_model: Model
    best_evaluation: Dataset
    parent_run_id: str
    best_run_id: str
    best_config: str
    best_mean_dice: float
    blessed: bool
    version: str
    aliases: str
    reason: str


def compare_pipeline(
    *,
    registry: str = images.DEFAULT_REGISTRY,
    tag: str = images.DEFAULT_TAG,
    platform: Literal["gke", "local"] = "gke",
    cluster: Cluster | None = None,
    name: str = PIPELINE_NAME,
    parallelism: int | None = None,
):
    """The comparison sweep pipeline for `platform`: "gke" adds GPUs, node pool and secrets, "local" does not.

    Args:
        cluster: GPU and secret settings; default `Cluster()`.
        parallelism: configurations that train at once; default PARALLELISM[platform].
    """
    cluster = cluster or Cluster()
    steps = Steps.build(registry, tag)
    start_sweep = images.rebase(compare_component.start_sweep, "compare", registry, tag)
    finish_sweep = images.rebase(compare_component.finish_sweep, "compare", registry, tag)

    configure = TaskSettings(platform == "gke", cluster)

    @dsl.pipeline(name=name, description="Compare segmentation models, losses and augmentation side by side.")
    def sweep_pipeline(
        data: str = "",
        synthetic_frames: int = 240,
        models: list = ["unet_mini", "unet"],  # noqa: B006 (KFP reads the default from the signature)
        losses: list = ["ce_dice"],  # noqa: B006
        augment: list = ["on", "off"],  # noqa: B006
        augmentations: str = "flip,scale_crop",
        epochs: int = 12,
        batch_size: int = 8,
        learning_rate: float = 0.002,
        height: int = 128,
        width: int = 256,
        shards: int = 4,
        gpus_per_worker: int = 1,
        min_dice: float = 0.8,
        min_improvement: float = 0.0,
        registered_model: str = "cityseg",
        mlflow_tracking_uri: str = "",
        mlflow_experiment: str = "cityseg-compare",
        serving_dir: str = "",
        seed: int = 0,
    ) -> CompareOutputs:
        """Compare segmentation models, losses and augmentation side by side; push the best.

        Args:
            data: Cityscapes source: a folder, the official zips, gs://; empty: synthetic.
            synthetic_frames: frames of the synthetic set when no data is given.
            models: models to compare: unet_mini, unet, mobilenetv2_unet, deeplabv3plus.
            losses: losses to compare: ce, dice, ce_dice, focal.
            augment: "on" and/or "off": train each model and loss with augmentation, without, or both.
            augmentations: what "on" applies: flip, scale_crop, color_jitter, noise, rotate (comma-separated).
            epochs: training epochs of every configuration.
            batch_size: batch size of every configuration.
            learning_rate: initial learning rate (cosine decay).
            height: training and evaluation height (a multiple of every model's stride).
            width: training and evaluation width (a multiple of every model's stride).
            shards: TFRecord shards per split.
            gpus_per_worker: GPUs per training task on the cluster.
            min_dice: absolute gate: the best configuration is blessed only with mean_dice at least this.
            min_improvement: change gate: required mean_dice gain over the current champion.
            registered_model: MLflow registered model name.
            mlflow_tracking_uri: MLflow tracking server; empty uses MLFLOW_TRACKING_URI or the local store.
            mlflow_experiment: MLflow experiment of the sweep's parent run and its child runs.
            serving_dir: folder or gs:// prefix that receives a blessed SavedModel; empty skips the copy.
            seed: seed of the synthetic data and of training.
        """
        shard_task = prepare_data(
            steps,
            configure,
            data=data,
            synthetic_frames=synthetic_frames,
            synthetic_size=(height, width),
            height=height,
            width=width,
            shards=shards,
            seed=seed,
        )
        shards_artifact = shard_task.outputs["shards"]

        # A new parent run each time: never served from the cache.
        sweep_task = start_sweep(
            models=models,
            losses=losses,
            augment=augment,
            augmentations=augmentations,
            epochs=epochs,
            batch_size=batch_size,
            height=height,
            width=width,
            mlflow_tracking_uri=mlflow_tracking_uri,
            mlflow_experiment=mlflow_experiment,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        ).set_caching_options(False)
        configure(sweep_task, cpu="1", memory="2Gi")

        with dsl.ParallelFor(
            sweep_task.output, name="configurations", parallelism=parallelism or PARALLELISM[platform]
        ) as config:
            # One worker and checkpoints in the task's own output: the configurations of one KFP run
            # would otherwise share the run-id-named checkpoint folder and TFJob name.
            train_task = steps.train(
                shards=shards_artifact,
                model_name=config.model,
                loss=config.loss,
                augment=config.augmentations,
                parent_run_id=config.parent_run_id,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                height=height,
                width=width,
                workers=1,
                gpus_per_worker=gpus_per_worker,
                launcher="local",
                mlflow_tracking_uri=mlflow_tracking_uri,
                mlflow_experiment=mlflow_experiment,
                seed=seed,
                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            )
            train_task.set_caching_options(False).set_retry(
                num_retries=3, backoff_duration="60s", backoff_factor=2.0
            )
            configure(train_task, cpu="4", memory="16Gi", gpus=gpus_per_worker)
            evaluate_task = steps.evaluate(
                shards=shards_artifact,
                model=train_task.outputs["model"],
                split="val",
                mlflow_tracking_uri=mlflow_tracking_uri,
            ).set_caching_options(False)
            configure(evaluate_task, cpu="4", memory="8Gi", gpus=1)

        finish_task = finish_sweep(
            sweep=sweep_task.output,
            models=dsl.Collected(train_task.outputs["model"]),
            evaluations=dsl.Collected(evaluate_task.outputs["evaluation"]),
            mlflow_tracking_uri=mlflow_tracking_uri,
        ).set_caching_options(False)
        configure(finish_task, cpu="1", memory="4Gi")

        push_task = push_model(
            steps,
            configure,
            model=finish_task.outputs["best_model"],
            evaluation=finish_task.outputs["best_evaluation"],
            shards=shards_artifact,
            registered_model=registered_model,
            min_dice=min_dice,
            min_improvement=min_improvement,
            serving_dir=serving_dir,
            mlflow_tracking_uri=mlflow_tracking_uri,
        )

        return CompareOutputs(
            report=finish_task.outputs["report"],
            best_model=finish_task.outputs["best_model"],
            best_evaluation=finish_task.outputs["best_evaluation"],
            parent_run_id=finish_task.outputs["parent_run_id"],
            best_run_id=finish_task.outputs["best_run_id"],
            best_config=finish_task.outputs["best_config"],
            best_mean_dice=finish_task.outputs["best_mean_dice"],
            blessed=push_task.outputs["blessed"],
            version=push_task.outputs["version"],
            aliases=push_task.outputs["aliases"],
            reason=push_task.outputs["reason"],
        )

    return sweep_pipeline


def pipeline_inputs() -> dict:
    """The sweep pipeline's parameters: name -> KFP InputSpec (type, default, description)."""
    return dict(compare_pipeline(platform="local").component_spec.inputs)


def validate_sweep_params(params: dict) -> None:
    """Check the sweep's arguments: every model and loss against the training checks, and the grid itself.

    Raises:
        ParameterError: names the first parameter that is wrong and what is wrong with it.
    """
    for model in params["models"]:
        for loss in params["losses"]:
            try:
                # The sweep trains on one worker without class weights, and hands `augmentations`
                # to every configuration whose augmentation is on.
                validate_params(
                    {
                        **params,
                        "model": model,
                        "loss": loss,
                        "workers": 1,
                        "class_weighting": "none",
                        "augment": params["augmentations"],
                    }
                )
            except ParameterError as err:
                # The sweep's parameters are the plural lists the training pipeline's checks do not know.
                plural = {"model": "models", "loss": "losses", "augment": "augmentations"}.get(
                    err.param, err.param
                )
                raise ParameterError(plural, str(err).split(": ", 1)[1]) from err
    try:
        expand_sweep(
            SweepConfig(
                models=tuple(params["models"]),
                losses=tuple(params["losses"]),
                augment=parse_augment(params["augment"]),
                augmentations=tuple(name for name in params["augmentations"].split(",") if name),
            )
        )
    except ValueError as err:
        field, _, message = str(err).partition(": ")
        raise ParameterError(field, message) from err


# What a local sweep produced: the same record as any pipeline run in kfp.local.
SweepRun = LocalRun


def run_local_sweep(params: dict, work_dir: Path = tracking.DEFAULT_WORK_DIR) -> SweepRun:
    """Validate `params` and run the sweep in kfp.local under `work_dir` (see `run_in_kfp_local`)."""
    return run_in_kfp_local(
        lambda: compare_pipeline(platform="local"), params, work_dir, validate_sweep_params
    )
