"""The training pipeline: (synth | check source) -> remap -> shard -> validate -> train -> evaluate -> push.

When validate finds the data unchanged since `@champion`, skip_training stands in for the last three.

`create_pipeline(...)` is a pure factory: where it runs (images, platform, cluster settings) is an
explicit `Target`, the parameters and their defaults come from `params.training_params()`, and
`wire` only connects the shared steps of `cityseg.pipelines.steps`.
"""

from typing import NamedTuple

from kfp.dsl import Dataset

from cityseg.pipelines.data import prepare_data, unless_unchanged, validate_data
from cityseg.pipelines.params import PipelineParams, build_pipeline, training_params
from cityseg.pipelines.steps import GKE, Target, Trainee, push_model, train_and_evaluate

PIPELINE_NAME = "cityseg-training"
DESCRIPTION = "Train, evaluate and push a Cityscapes street-scene segmentation model."
PUSH_OUTPUTS = ("blessed", "version", "aliases", "reason")


class TrainingOutputs(NamedTuple):
    shards: Dataset
    statistics: Dataset
    retrain: bool
    outcome: str
    blessed: bool
    version: str
    aliases: str
    reason: str


def create_pipeline(target: Target = GKE, name: str = PIPELINE_NAME):
    """The training pipeline for `target`; on "gke", `workers > 1` trains as a TFJob, locally as processes."""
    steps, configure = target.wiring()

    def wire(p: PipelineParams) -> TrainingOutputs:
        shard_task, fingerprint = prepare_data(steps, configure, p)
        shards = shard_task.outputs["shards"]
        validate_task = validate_data(
            steps, configure, p, shards=shards, fingerprint=fingerprint, skip_unchanged=p.skip_unchanged
        )
        statistics = validate_task.outputs["statistics"]

        def train():
            trainee = Trainee(p.model, p.loss, p.augment, p.seed)
            train_task, evaluate_task = train_and_evaluate(
                steps, configure, p, shards, trainee, workers=p.workers, one_per_run=True
            )
            return push_model(
                steps,
                configure,
                p,
                model=train_task.outputs["model"],
                evaluation=evaluate_task.outputs["evaluation"],
                shards=shards,
                statistics=statistics,
                pipeline_name=name,
                pipeline_version=steps.tag,
            )

        return TrainingOutputs(
            shards=shards,
            statistics=statistics,
            retrain=validate_task.outputs["retrain"],
            outcome=validate_task.outputs["outcome"],
            **unless_unchanged(steps, configure, validate_task, train, PUSH_OUTPUTS),
        )

    return build_pipeline(name, DESCRIPTION, training_params(), wire, TrainingOutputs)
