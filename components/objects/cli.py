"""`cityseg objects train | evaluate | push`: the object classifier's steps from the command line."""

import json

import click

from cityseg.components.defaults import defaults
from cityseg.components.objects.config import (
    AUGMENTATIONS,
    ObjectsEvaluateConfig,
    ObjectsPushConfig,
    ObjectsTrainConfig,
)

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
    help=f"Comma-separated: {', '.join(AUGMENTATIONS)}.",
)
@click.option(
    "--class-weighting",
    type=click.Choice(["none", "balanced"]),
    default=TRAIN.class_weighting,
    show_default=True,
)
@click.option("--seed", type=int, default=TRAIN.seed, show_default=True)
@click.option(
    "--mlflow-tracking-uri", "tracking_uri", default=None, help="MLflow server; default: the local store."
)
def train(augment: str, **options) -> None:
    """Train the classifier and write OUT/model.keras, history.json and train_info.json."""
    from cityseg.components.objects.train import train as train_classifier

    names = tuple(name.strip() for name in augment.split(",") if name.strip())
    config = _config(ObjectsTrainConfig, augment=names, **options)
    try:
        info = train_classifier(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"val accuracy {info['val_accuracy']:.3f}, {info['epochs']} epochs in {info['training_time_s']:.0f} s"
    )


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
