"""`cityseg train`: argv -> TrainConfig -> core.train, or N local workers running this same command."""

import json
import sys
from pathlib import Path

import click

from cityseg.components.train.core import AUGMENTATIONS, LR_SCHEDULES, TrainConfig, validate
from cityseg.components.train.core import train as run_training
from cityseg.components.train.losses import CLASS_WEIGHTINGS, LOSSES
from cityseg.components.train.models import MODELS

DEFAULTS = TrainConfig(data="", out="")


def _augmentations(ctx, param, value: str) -> tuple[str, ...]:
    if value.strip().lower() == "none":
        return ()
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise click.BadParameter(
            f"unknown augmentation {', '.join(unknown)}; "
            f"use a comma list of {', '.join(AUGMENTATIONS)}, or none"
        )
    return names


def _worker_argv(ctx: click.Context) -> list[str]:
    """This command's own argv without --workers: what each local worker (or TFJob pod) runs."""
    argv = [sys.executable, "-c", "from cityseg.cli import main; main()", "train"]
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if param.name == "workers" or value is None or not isinstance(param, click.Option):
            continue
        flag = param.opts[0]
        if param.is_flag:
            argv.append(flag if value else param.secondary_opts[0])
        elif param.name == "augment":
            argv += [flag, ",".join(value) or "none"]
        else:
            argv += [flag, str(value)]
    return argv


@click.command()
@click.option("--data", required=True, help="Shard folder (or gs:// prefix) written by `cityseg shard`.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--model", type=click.Choice(list(MODELS)), default=DEFAULTS.model, show_default=True)
@click.option("--loss", type=click.Choice(list(LOSSES)), default=DEFAULTS.loss, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULTS.epochs, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULTS.batch_size,
    show_default=True,
    help="Per replica; the global batch is this times the number of replicas.",
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
    help="float16 compute with float32 weights [default: on when a GPU is present].",
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
    help="Epochs without a better val_mean_dice before stopping; 0 turns it off.",
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
@click.pass_context
def train(ctx: click.Context, workers: int, **kwargs) -> None:
    """Train a segmentation model on shards and write the model folder (tracked in MLflow)."""
    from cityseg.components.tracking import TrackingUnavailableError, connect
    from cityseg.components.train.distribute import WorkerFailedError, launch_local_workers

    config = TrainConfig(**kwargs)
    try:
        validate(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    # Errors past validation are bugs or infrastructure failures: they keep their traceback.
    try:
        if workers > 1:
            connect(config.tracking_uri, work_dir=config.work_dir)
            launch_local_workers(_worker_argv(ctx), workers, Path(config.out) / "logs")
            info = json.loads((Path(config.out) / "train_info.json").read_text())
            info["history"] = json.loads((Path(config.out) / "history.json").read_text())
        else:
            info = run_training(config)
    except (TrackingUnavailableError, WorkerFailedError) as err:
        raise click.ClickException(str(err)) from err
    # A TFJob's non-chief pod has no history.json of its own: every worker returns the history.
    dice = info["history"].get("val_mean_dice", [])
    click.echo(
        f"{info['model']}: {info['num_params']:,} params, {info['epochs_run']} epochs in "
        f"{info['training_time_s']:.1f} s ({info['train_images_per_s']:.1f} images/s), "
        f"val_mean_dice {dice[-1]:.4f}, model folder {config.out}"
    )
