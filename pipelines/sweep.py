"""The model-comparison sweep: data -> shards -> ParallelFor(train -> evaluate) -> report -> push the best.

Every configuration trains and evaluates on the same shards, as an MLflow child run of one parent
run; the report step compares them, logs the report to the parent run, and hands the best
configuration by the select split's mean_dice to the push gate, which judges it on val.
`create_pipeline(...)` is a pure factory like `cityseg.pipelines.training.create_pipeline`, wired
from the same steps.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Model

from cityseg.components.sweep.presets import DEFAULT_PRESET
from cityseg.pipelines.data import prepare_data, validate_data
from cityseg.pipelines.params import PipelineParams, build_pipeline, sweep_params
from cityseg.pipelines.steps import (
    GKE,
    Target,
    Trainee,
    push_model,
    settings,
    train_and_evaluate,
)
from cityseg.pipelines.training import PUSH_OUTPUTS

PIPELINE_NAME = "cityseg-compare"
DESCRIPTION = "Compare segmentation models, losses and augmentation side by side; push the best."
# Configurations training at once: the cluster's GPU quota; one at a time locally, where two
# trainings would share 2 cores and make the training times of the report meaningless.
PARALLELISM = {"gke": 4, "local": 1}
# What the parent run records of the settings every configuration shares.
SWEEP_SETTINGS = (
    "seeds",
    "crossed",
    "epochs",
    "early_stopping_patience",
    "batch_size",
    "height",
    "width",
    "mlflow_tracking_uri",
    "mlflow_experiment",
)
# The preset whose values a pipeline's parameters default to: the cluster runs the full sweep.
PRESET = {"gke": "full", "local": DEFAULT_PRESET}


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


def create_pipeline(target: Target = GKE, name: str = PIPELINE_NAME, parallelism: int | None = None):
    """The comparison sweep for `target`; `parallelism` configurations train at once (PARALLELISM's)."""
    steps, configure = target.wiring()
    limit = parallelism or PARALLELISM[target.platform]

    def wire(p: PipelineParams) -> CompareOutputs:
        shard_task, fingerprint = prepare_data(steps, configure, p)
        shards = shard_task.outputs["shards"]
        # A sweep compares models on purpose: it validates the data but never skips unchanged data.
        validate_task = validate_data(
            steps, configure, p, shards=shards, fingerprint=fingerprint, skip_unchanged=False
        )
        # A new parent run each time: never served from the cache.
        sweep_task = steps.start_sweep(
            models=p.models,
            losses=p.losses,
            augment=p.augment,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            **settings(p, SWEEP_SETTINGS),
        )
        configure(sweep_task, "start_sweep", cache=False).after(validate_task)
        with dsl.ParallelFor(sweep_task.output, name="configurations", parallelism=limit) as config:
            trainee = Trainee(config.model, config.loss, config.augmentations, config.seed)
            train_task, evaluate_task = train_and_evaluate(
                steps,
                configure,
                p,
                shards,
                trainee,
                workers=1,
                one_per_run=False,
                parent_run_id=config.parent_run_id,
            )
        finish_task = steps.finish_sweep(
            sweep=sweep_task.output,
            models=dsl.Collected(train_task.outputs["model"]),
            evaluations=dsl.Collected(evaluate_task.outputs["evaluation"]),
            mlflow_tracking_uri=p.mlflow_tracking_uri,
        )
        configure(finish_task, "finish_sweep", cache=False)
        best = {key: finish_task.outputs[key] for key in CompareOutputs._fields[:7]}
        push_task = push_model(
            steps,
            configure,
            p,
            model=best["best_model"],
            evaluation=best["best_evaluation"],
            shards=shards,
            statistics=validate_task.outputs["statistics"],
            pipeline_name=name,
            pipeline_version=steps.tag,
        )
        return CompareOutputs(**best, **{key: push_task.outputs[key] for key in PUSH_OUTPUTS})

    return build_pipeline(name, DESCRIPTION, sweep_params(PRESET[target.platform]), wire, CompareOutputs)
