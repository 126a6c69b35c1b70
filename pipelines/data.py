"""The data half of both pipelines: (synth | check source) -> remap -> shard -> validate, and the skip.

The source step (or synth) fingerprints the data from its listing, and remap and shard take the
fingerprint as an input, so the KFP cache serves them exactly when the data is unchanged. Validate
then checks the shards before any training, and the training pipeline trains only when validate
says the data changed since `@champion`; otherwise `skip_training` stands in for the push step.
"""

from kfp import dsl

from cityseg.components.defaults import defaults
from cityseg.components.runner import RUNNER_PARAMS
from cityseg.components.synth.config import SynthConfig
from cityseg.components.validate.config import ValidateConfig
from cityseg.pipelines.params import PipelineParams
from cityseg.pipelines.steps import DATA_WORKERS, Steps, TaskSettings


def runner_args(p: PipelineParams) -> dict:
    """The pipeline's data-runner parameters, passed on to each data step (remap, shard, validate)."""
    return {name: getattr(p, name) for name in RUNNER_PARAMS}


def prepare_data(steps: Steps, configure: TaskSettings, p: PipelineParams):
    """Wire (synth | check source) -> remap -> shard; returns the shard task and the source fingerprint.

    Remap and shard are cached with the fingerprint in their key: unchanged data reuses their
    outputs, and a frame added, removed or rewritten runs them again.
    """
    with dsl.If(p.data == "", name="no-data-given"):
        synth_task = steps.synth(
            cities=defaults(SynthConfig).cities,
            frames=p.synthetic_frames,
            height=p.synthetic_height,
            width=p.synthetic_width,
            seed=p.seed,
            workers=DATA_WORKERS,
        )
        configure(synth_task, "synth", cache=True)
    with dsl.Else(name="data-given"):
        # Not cached: the source may have changed since the last run, and listing it is cheap.
        source_task = configure(steps.check_source(data=p.data), "check_source", cache=False)
    source = dsl.OneOf(synth_task.outputs["data"], source_task.outputs["data"])
    fingerprint = dsl.OneOf(synth_task.outputs["fingerprint"], source_task.outputs["fingerprint"])

    remap_task = steps.remap(
        cityscapes=source, fingerprint=fingerprint, workers=DATA_WORKERS, **runner_args(p)
    )
    configure(remap_task, "remap", cache=True)
    shard_task = steps.shard(
        cityscapes=source,
        fingerprint=fingerprint,
        categories=remap_task.outputs["categories"],
        num_shards=p.shards,
        height=p.height,
        width=p.width,
        select_fraction=p.select_fraction,
        **runner_args(p),
    )
    return configure(shard_task, "shard", cache=True), fingerprint


def validate_data(
    steps: Steps, configure: TaskSettings, p: PipelineParams, *, shards, fingerprint, skip_unchanged
):
    """Wire validate after shard: statistics, schema checks and drift; returns the validate task.

    Never cached: the champion it compares with (and may find the data unchanged since) moves.
    """
    task = steps.validate(
        shards=shards,
        fingerprint=fingerprint,
        min_frames=p.min_frames,
        max_void_share=p.max_void_share,
        min_image_std=defaults(ValidateConfig).min_image_std,
        drift_metric=p.drift_metric,
        drift_threshold=p.drift_threshold,
        drift_policy=p.drift_policy,
        skip_unchanged=skip_unchanged,
        registered_model=p.registered_model,
        mlflow_tracking_uri=p.mlflow_tracking_uri,
        mlflow_experiment=p.mlflow_experiment,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        **runner_args(p),
    )
    return configure(task, "validate", cache=False)


def unless_unchanged(steps: Steps, configure: TaskSettings, validate_task, train, outputs: tuple[str, ...]):
    """Wire `train()` (train, evaluate, push; it returns the push task) only when validate says retrain,
    else skip_training; returns the push task's `outputs` from either branch.

    kfp.local resolves a dsl.OneOf of parameters only, so the trained model's artifacts are not
    returned through the branches (the run folder holds them).
    """
    with dsl.If(validate_task.outputs["retrain"] == True, name="data-changed"):  # noqa: E712
        push_task = train()
    with dsl.Else(name="data-unchanged"):
        skip_task = steps.skip_training(outcome=validate_task.outputs["outcome"])
        configure(skip_task, "skip_training", cache=False)
    return {key: dsl.OneOf(push_task.outputs[key], skip_task.outputs[key]) for key in outputs}
