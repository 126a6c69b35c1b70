"""`cityseg train`: argv -> TrainConfig -> core.train, or N local workers running this same command.

This module owns the worker command line: `train_argv` turns a TrainConfig back into this command's
arguments, which every worker runs, a local process (`worker_command.launch_local`) or a TFJob pod
(`cityseg.components.train.launch`).
"""

import json
from pathlib import Path

import click

from cityseg.components.defaults import defaults
from cityseg.components.train.config import (
    AUGMENTATIONS,
    CLASS_WEIGHTINGS,
    LOSS_NAMES,
    LR_SCHEDULES,
    MODEL_STRIDES,
    ConfigError,
    TrainConfig,
    check_config,
)
from cityseg.components.train.worker_command import command_argv, launch_local

DEFAULTS = defaults(TrainConfig)


def _augmentations(ctx, param, value: str) -> tuple[str, ...]:
    # Unknown names are `check_config`'s to refuse, like every other name.
    if value.strip().lower() == "none":
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


@click.command()
@click.option("--data", required=True, help="Shard folder (or gs:// prefix) written by `cityseg shard`.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--model", type=click.Choice(list(MODEL_STRIDES)), default=DEFAULTS.model, show_default=True)
@click.option("--loss", type=click.Choice(LOSS_NAMES), default=DEFAULTS.loss, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULTS.epochs, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULTS.batch_size,
    show_default=True,
    help="The global batch, whatever the workers or GPUs: each of N replicas takes 1/N of it.",
)
@click.option("--height", type=click.IntRange(min=1), help="Training height (default: the shards' height).")
@click.option("--width", type=click.IntRange(min=1), help="Training width (default: the shards' width).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy), as a TFJob would run them.",
)
@click.option(
    "--augment",
    default=",".join(DEFAULTS.augment),
    show_default=True,
    callback=_augmentations,
    help=f"Comma list of {', '.join(AUGMENTATIONS)}, or none.",
)
@click.option(
    "--mixed-precision/--no-mixed-precision",
    default=None,
    help="low-precision compute, float32 weights: float16 on a GPU, bfloat16 on a CPU "
    "[default: on where the hardware computes it natively].",
)
@click.option(
    "--lr",
    "learning_rate",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.learning_rate,
    show_default=True,
)
@click.option(
    "--lr-schedule", type=click.Choice(LR_SCHEDULES), default=DEFAULTS.lr_schedule, show_default=True
)
@click.option(
    "--early-stopping-patience",
    type=click.IntRange(min=0),
    default=DEFAULTS.early_stopping_patience,
    show_default=True,
    help="Epochs without a better select_mean_dice (the selection split) before stopping; 0 turns it off.",
)
@click.option(
    "--class-weighting",
    type=click.Choice(CLASS_WEIGHTINGS),
    default=DEFAULTS.class_weighting,
    show_default=True,
)
@click.option(
    "--ignore-void/--no-ignore-void",
    default=DEFAULTS.ignore_void,
    show_default=True,
    help="Give void pixels loss weight 0 (the Cityscapes convention).",
)
@click.option(
    "--weights", type=click.Choice(["imagenet"]), help="Pretrained MobileNetV2 encoder (downloads)."
)
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--experiment", default=DEFAULTS.experiment, show_default=True, help="MLflow experiment name.")
@click.option(
    "--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI, else work/mlflow/mlflow.db]."
)
@click.option(
    "--work-dir", default=DEFAULTS.work_dir, show_default=True, help="Work folder for the local MLflow store."
)
@click.option("--kfp-run-id", help="KFP run id to tag the MLflow run with.")
@click.option(
    "--tflite/--no-tflite",
    default=DEFAULTS.tflite,
    show_default=True,
    help="Also export TFLite float16 and int8.",
)
def train(workers: int, **kwargs) -> None:
    """Train a segmentation model on shards and write the model folder (tracked in MLflow)."""
    # TensorFlow loads here, when a training runs, not for --help or for the pipelines' argv.
    from cityseg.components.tracking import TrackingUnavailableError, connect
    from cityseg.components.train.core import train as run_training
    from cityseg.components.train.core import validate
    from cityseg.components.train.distribute import WorkerFailedError

    config = TrainConfig(**kwargs)
    try:
        check_config(config)
    except ConfigError as err:
        flags = " / ".join("--" + part.replace("_", "-") for part in err.field.split("/"))
        raise click.BadParameter(err.message, param_hint=flags) from err
    try:
        validate(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    # Errors past validation are bugs or infrastructure failures: they keep their traceback.
    try:
        if workers > 1:
            connect(config.tracking_uri, work_dir=config.work_dir)
            launch_local(train_argv(config), workers, Path(config.out) / "logs")
            info = json.loads((Path(config.out) / "train_info.json").read_text())
            info["history"] = json.loads((Path(config.out) / "history.json").read_text())
        else:
            info = run_training(config)
    except (TrackingUnavailableError, WorkerFailedError) as err:
        raise click.ClickException(str(err)) from err
    # A TFJob's non-chief pod has no history.json of its own: every worker returns the history.
    dice = info["history"].get("select_mean_dice", [])
    click.echo(
        f"{info['model']}: {info['num_params']:,} params, {info['epochs_run']} epochs in "
        f"{info['training_time_s']:.1f} s ({info['train_images_per_s']:.1f} images/s), "
        f"select_mean_dice {dice[-1]:.4f}, model folder {config.out}"
    )


def train_argv(config: TrainConfig) -> list[str]:
    """The `cityseg train ...` arguments for `config`: what every worker, local or TFJob pod, runs.

    Built from the train command's own options, so a new TrainConfig field with a flag travels too.
    """
    return command_argv(["train"], train, config)
