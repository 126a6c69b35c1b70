"""`cityseg objects train | evaluate | push`: the object classifier's steps from the command line.

This module owns the classifier's worker command line: `train_argv` turns an ObjectsTrainConfig
back into `cityseg objects train` arguments, which every worker runs, a local process
(`--workers N`) or a TFJob pod (`cityseg.components.objects.launch`).
"""

import json
from pathlib import Path

import click

from cityseg.components.defaults import defaults
from cityseg.components.objects.config import (
    AUGMENTATIONS,
    ObjectsEvaluateConfig,
    ObjectsPushConfig,
    ObjectsTrainConfig,
)
from cityseg.components.train.launch import Launch
from cityseg.components.train.worker_command import command_argv, launch_local

TRAIN, EVALUATE, PUSH = (
    defaults(ObjectsTrainConfig),
    defaults(ObjectsEvaluateConfig),
    defaults(ObjectsPushConfig),
)


def _config(config_class, **fields):
    try:
        return config_class(**fields)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _augmentations(ctx, param, value: str) -> tuple[str, ...]:
    # Unknown names are the config's to refuse; "none" is how `train_argv` writes an empty list.
    if value.strip().lower() == "none":
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


@click.group()
def objects() -> None:
    """Train, evaluate and push the object-type classifier on crops written by `cityseg crops`."""


@objects.command()
@click.option("--data", required=True, help="Crop shards written by `cityseg crops`.")
@click.option("--out", required=True, help="Model folder to write.")
@click.option("--epochs", type=click.IntRange(min=1), default=TRAIN.epochs, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=TRAIN.batch_size, show_default=True)
@click.option("--learning-rate", type=float, default=TRAIN.learning_rate, show_default=True)
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=TRAIN.width,
    show_default=True,
    help="First stage's channels.",
)
@click.option(
    "--augment",
    default=",".join(TRAIN.augment),
    show_default=True,
    callback=_augmentations,
    help=f"Comma-separated: {', '.join(AUGMENTATIONS)}; or none.",
)
@click.option(
    "--class-weighting",
    type=click.Choice(["none", "balanced"]),
    default=TRAIN.class_weighting,
    show_default=True,
)
@click.option("--seed", type=int, default=TRAIN.seed, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=defaults(Launch).workers,
    show_default=True,
    help="Local worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy), as a TFJob would run them.",
)
@click.option(
    "--mlflow-tracking-uri", "tracking_uri", default=None, help="MLflow server; default: the local store."
)
@click.option("--experiment", default=TRAIN.experiment, show_default=True, help="MLflow experiment name.")
@click.option("--kfp-run-id", help="KFP run id to tag the MLflow run with.")
@click.option(
    "--work-dir", default=TRAIN.work_dir, show_default=True, help="Work folder for the local MLflow store."
)
def train(workers: int, **options) -> None:
    """Train the classifier and write OUT/model.keras, history.json and train_info.json."""
    from cityseg.components.objects.train import train as train_classifier
    from cityseg.components.objects.train import validate
    from cityseg.components.tracking import TrackingUnavailableError, connect
    from cityseg.components.train.distribute import WorkerFailedError

    config = _config(ObjectsTrainConfig, **options)
    try:
        if workers > 1:
            validate(config)
            # Fail on an unreachable MLflow server before the workers start TensorFlow.
            connect(config.tracking_uri, work_dir=config.work_dir)
            launch_local(train_argv(config), workers, Path(config.out) / "logs")
            info = json.loads((Path(config.out) / "train_info.json").read_text())
        else:
            info = train_classifier(config)
    except (ValueError, TrackingUnavailableError, WorkerFailedError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"val accuracy {info['val_accuracy']:.3f}, {info['epochs']} epochs in "
        f"{info['training_time_s']:.0f} s ({info['strategy']} x{info['replicas']}), model folder {config.out}"
    )


def train_argv(config: ObjectsTrainConfig) -> list[str]:
    """The `cityseg objects train ...` arguments for `config`: what every worker, local or TFJob pod, runs.

    Built from the command's own options, so a new ObjectsTrainConfig field with a flag travels too.
    """
    return command_argv(["objects", "train"], train, config)


@objects.command()
@click.option("--model", required=True, help="Model folder, .keras file, runs:/ or models:/ URI.")
@click.option("--data", required=True, help="Crop shards written by `cityseg crops`.")
@click.option("--out", required=True, help="Folder for metrics.json and report.html.")
@click.option("--split", default=EVALUATE.split, show_default=True)
@click.option(
    "--mlflow-tracking-uri", "tracking_uri", default=None, help="MLflow server; default: the local store."
)
def evaluate(**options) -> None:
    """Score the classifier on a split: accuracy, macro-F1, per-class precision and recall."""
    from cityseg.components.objects.evaluate import evaluate as score

    try:
        result = score(_config(ObjectsEvaluateConfig, **options))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{'class':<12}{'precision':>10}{'recall':>10}{'crops':>8}")
    for name, entry in result["per_class"].items():
        recall = "n/a" if entry["recall"] is None else f"{entry['recall']:.3f}"
        click.echo(f"{name:<12}{entry['precision']:>10.3f}{recall:>10}{entry['support']:>8}")
    click.echo(f"accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}")


@objects.command()
@click.option("--model", required=True, help="Model folder, runs:/ or models:/ URI.")
@click.option(
    "--metrics", required=True, help="metrics.json written by `cityseg objects evaluate` for this model."
)
@click.option("--data", required=True, help="The crop shards the metrics were computed on.")
@click.option("--name", default=PUSH.name, show_default=True, help="Registered model.")
@click.option("--min-macro-f1", type=click.FloatRange(0, 1), default=PUSH.min_macro_f1, show_default=True)
@click.option(
    "--min-improvement", type=click.FloatRange(-1, 1), default=PUSH.min_improvement, show_default=True
)
@click.option(
    "--mlflow-tracking-uri", "tracking_uri", default=None, help="MLflow server; default: the local store."
)
def push(**options) -> None:
    """Register the classifier; make it @champion only when it passes the gates."""
    from cityseg.components.objects.push import push as push_classifier

    try:
        result = push_classifier(_config(ObjectsPushConfig, **options))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        json.dumps(
            {
                "blessed": result.blessed,
                "version": result.version,
                "aliases": list(result.aliases),
                "reason": result.reason,
            }
        )
    )
