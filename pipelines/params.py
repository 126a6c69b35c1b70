"""The pipelines' run-time parameters, with defaults read from the steps' config dataclasses.

A pipeline's signature is built from these groups when the pipeline is built (`build_pipeline`), so
a default has one home, the step's dataclass, and both pipelines share the groups they have in
common. `cityseg.components.defaults.OVERRIDES` lists every default that deliberately differs.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace

from kfp import dsl

from cityseg.components.defaults import defaults
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.push.config import PushConfig
from cityseg.components.runner import RunnerConfig
from cityseg.components.shard.config import ShardConfig
from cityseg.components.sweep.presets import DEFAULT_PRESET, preset_params
from cityseg.components.synth.config import SynthConfig
from cityseg.components.train.config import TrainConfig
from cityseg.components.train.launch import Launch
from cityseg.components.validate.config import ValidateConfig

# A sweep's parent and child runs get an experiment of their own (see `OVERRIDES`).
SWEEP_EXPERIMENT = "cityseg-compare"


class PipelineParams(SimpleNamespace):
    """The parameters of a pipeline run as attributes, one KFP channel each: `p.epochs` is `epochs`.

    `build_pipeline` hands one to the pipeline's `wire(p)`, which threads it through the wiring.
    """


@dataclass(frozen=True)
class Param:
    """One pipeline parameter: name, KFP type, default and the description the KFP UI shows."""

    name: str
    type: type
    default: object
    help: str


def data_params() -> tuple[Param, ...]:
    """Where the data comes from and the size it is sharded at: shared by every pipeline."""
    synth, shard, train = defaults(SynthConfig), defaults(ShardConfig), defaults(TrainConfig)
    return (
        Param(
            "data",
            str,
            "",
            "Cityscapes folder, folder of the official zips, or gs:// prefix; empty: a synthetic set.",
        ),
        Param(
            "synthetic_frames",
            int,
            synth.cities * synth.frames_per_city,
            "frames of the synthetic set (split by city into train/val/test) when data is empty.",
        ),
        Param("synthetic_height", int, synth.height, "height the synthetic frames are rendered at."),
        Param("synthetic_width", int, synth.width, "width the synthetic frames are rendered at."),
        Param(
            "height", int, shard.height, "shard, training and evaluation height (a multiple of the stride)."
        ),
        Param("width", int, shard.width, "shard, training and evaluation width (a multiple of the stride)."),
        Param("shards", int, shard.shards, "TFRecord shards per split."),
        Param("select_fraction", float, shard.select_fraction, "share of train frames in the select split."),
        Param("seed", int, train.seed, "seed of the synthetic data and of training."),
        *runner_params(),
    )


def runner_params() -> tuple[Param, ...]:
    """Which engine runs remap, shard and the statistics, and the Dataflow job's settings (docs/beam.md)."""
    runner = RunnerConfig()
    return (
        Param(
            "data_runner", str, runner.runner, "data steps' engine: local (process pool), beam or dataflow."
        ),
        Param(
            "dataflow_project",
            str,
            runner.project,
            "GCP project of the Dataflow jobs (data_runner dataflow).",
        ),
        Param("dataflow_region", str, runner.region, "region of the Dataflow jobs."),
        Param(
            "dataflow_temp_location",
            str,
            runner.temp_location,
            "gs:// prefix for Dataflow's temporary files.",
        ),
        Param("dataflow_machine_type", str, runner.machine_type, "machine type of the Dataflow workers."),
        Param("dataflow_max_workers", int, runner.max_workers, "most Dataflow workers per job."),
        Param("dataflow_image", str, runner.sdk_container_image, "Dataflow workers' image: the data image."),
        Param("dataflow_service_account", str, runner.service_account, "Dataflow workers' service account."),
    )


def shared_training_params() -> tuple[Param, ...]:
    """What every training run of a pipeline shares: epochs, batch, learning rate, weighting, GPUs."""
    train, launch = defaults(TrainConfig), defaults(Launch)
    return (
        Param("epochs", int, train.epochs, "training epochs (at most, with early stopping)."),
        Param(
            "early_stopping_patience",
            int,
            train.early_stopping_patience,
            "stop a training when select_mean_dice has not improved for this many epochs; 0: never.",
        ),
        Param("batch_size", int, train.batch_size, "batch size per training replica."),
        Param("learning_rate", float, train.learning_rate, "initial learning rate (cosine decay)."),
        Param(
            "class_weighting",
            str,
            train.class_weighting,
            "loss weights per category from pixel counts: none, median or inverse_log.",
        ),
        Param("gpus_per_worker", int, launch.gpus_per_worker, "GPUs per training worker on the cluster."),
        Param(
            "corruptions",
            bool,
            defaults(EvaluateConfig).corruptions,
            "also score the val split under noise, motion blur, darkness, fog and JPEG (3 severities each).",
        ),
    )


def push_params(experiment: str) -> tuple[Param, ...]:
    """The MLflow store and experiment, and the push gate."""
    push, deploy = defaults(PushConfig), defaults(DeployConfig)
    return (
        Param(
            "min_dice",
            float,
            push.min_dice,
            "absolute gate: a model is blessed only with at least this mean_dice.",
        ),
        Param("min_improvement", float, push.min_improvement, "required mean_dice gain over the champion."),
        Param(
            "max_int8_iou_drop",
            float,
            -1.0 if push.max_int8_iou_drop is None else push.max_int8_iou_drop,
            "int8 gate: the most mean_iou the int8 TFLite export may lose; negative: off.",
        ),
        Param("registered_model", str, push.name, "MLflow registered model name."),
        Param(
            "serving_dir", str, "", "folder or gs:// prefix that receives a blessed SavedModel; empty: none."
        ),
        Param(
            "mlflow_tracking_uri",
            str,
            "",
            "MLflow tracking server; empty: MLFLOW_TRACKING_URI or the local store.",
        ),
        Param("mlflow_experiment", str, experiment, "MLflow experiment of the training runs."),
        Param(
            "canary_traffic_percent",
            int,
            deploy.canary_traffic_percent,
            "deploy: share of the traffic a blessed version gets on KServe until it is Ready.",
        ),
        Param(
            "ready_timeout_s",
            float,
            deploy.ready_timeout_s,
            "deploy: seconds the canary may take to become Ready before it is rolled back.",
        ),
    )


def validate_params(*, skip: bool) -> tuple[Param, ...]:
    """The data validation parameters; `skip` adds `skip_unchanged` (the training pipeline's)."""
    validate = defaults(ValidateConfig)
    params = (
        Param(
            "min_frames",
            int,
            validate.min_frames,
            "validation: train and val need at least this many frames.",
        ),
        Param(
            "max_void_share",
            float,
            validate.max_void_share,
            "validation: no train or val frame may be more void than this share.",
        ),
        Param("drift_metric", str, validate.drift_metric, "validation: js or linf, between category shares."),
        Param(
            "drift_threshold",
            float,
            validate.drift_threshold,
            "validation: distance to the champion's data above which the data has drifted.",
        ),
        Param("drift_policy", str, validate.drift_policy, "validation: on drift, warn and go on, or fail."),
    )
    if not skip:
        return params
    return (
        *params,
        Param(
            "skip_unchanged",
            bool,
            validate.skip_unchanged,
            "end the run after validation when the data is unchanged since the champion was trained.",
        ),
    )


def training_params() -> tuple[Param, ...]:
    """The training pipeline's parameters, in the order the KFP UI and `cityseg run --help` show them."""
    train, launch = defaults(TrainConfig), defaults(Launch)
    return (
        *data_params(),
        Param("model", str, train.model, "model name: unet_mini, unet, mobilenetv2_unet or deeplabv3plus."),
        Param("loss", str, train.loss, "loss name: ce, dice, ce_dice or focal."),
        Param(
            "augment",
            str,
            ",".join(train.augment),
            "comma-separated augmentations (flip, scale_crop, color_jitter, noise, rotate); empty for none.",
        ),
        *shared_training_params(),
        Param(
            "workers",
            int,
            launch.workers,
            "training workers; on the cluster the run's training is a TFJob of that many GPU workers.",
        ),
        *validate_params(skip=True),
        *push_params(train.experiment),
    )


def sweep_params(preset: str = DEFAULT_PRESET) -> tuple[Param, ...]:
    """The comparison sweep's parameters: the grid, then what every configuration shares.

    Defaults: what `preset` sets (`cityseg.components.sweep.presets`; the default preset is
    SweepConfig's own defaults), else the training pipeline's.
    """
    chosen = preset_params(preset)

    def preset_default(params: tuple[Param, ...]) -> tuple[Param, ...]:
        return tuple(replace(p, default=chosen.get(p.name, p.default)) for p in params)

    return (
        *preset_default(data_params()),
        Param("models", list, chosen["models"], "models to compare (the first is the reference)."),
        Param("losses", list, chosen["losses"], "losses to compare."),
        Param(
            "augment",
            list,
            chosen["augment"],
            "augmentation settings to compare: none, all, a technique, or several joined by +.",
        ),
        Param("seeds", list, chosen["seeds"], "seeds; every configuration trains once per seed."),
        Param(
            "crossed",
            bool,
            chosen["crossed"],
            "every model x loss x augment setting, instead of one factor at a time around the reference.",
        ),
        *preset_default(shared_training_params()),
        *validate_params(skip=False),
        *push_params(SWEEP_EXPERIMENT),
    )


def build_pipeline(
    name: str,
    description: str,
    params: tuple[Param, ...],
    wire: Callable[[PipelineParams], object],
    returns: type = inspect.Signature.empty,
):
    """A KFP pipeline named `name` whose signature is `params`; `wire(p)` builds the DAG from `p.<name>`."""
    names = [param.name for param in params]

    def pipeline(*args):
        # KFP calls a pipeline function with one channel per parameter, in signature order.
        return wire(PipelineParams(**dict(zip(names, args, strict=True))))

    pipeline.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default, annotation=p.type
            )
            for p in params
        ],
        return_annotation=returns,
    )
    pipeline.__doc__ = "\n".join([description, "", "Args:", *(f"    {p.name}: {p.help}" for p in params)])
    pipeline.__name__ = pipeline.__qualname__ = name.replace("-", "_")
    return dsl.pipeline(name=name, description=description)(pipeline)
