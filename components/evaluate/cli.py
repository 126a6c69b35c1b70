"""`cityseg evaluate`: the launcher over `cityseg.components.evaluate.core.evaluate`."""

import click


@click.command()
@click.option("--data", required=True, help="Shards folder (local or gs://) with manifest.json.")
@click.option(
    "--model",
    required=True,
    help="Model folder, .keras file, models:/name@alias, models:/name/N or runs:/id/model.",
)
@click.option(
    "--out", required=True, help="Folder (local or gs://) for metrics.json, the PNGs and report.html."
)
@click.option("--split", default="val", show_default=True, help="Split to score.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--samples", default=6, show_default=True, type=click.IntRange(min=0), help="Triptychs in the report."
)
@click.option(
    "--mlflow/--no-mlflow",
    "log_to_mlflow",
    default=True,
    show_default=True,
    help="Log eval_* metrics and the report to the model's MLflow run.",
)
@click.option(
    "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or work/mlflow)."
)
def evaluate(**options):
    """Score a model on one split: Cityscapes category IoU/Dice from one confusion matrix."""
    from cityseg.components.evaluate.core import EvaluateConfig
    from cityseg.components.evaluate.core import evaluate as run_evaluation
    from cityseg.components.tracking import TrackingUnavailableError

    try:
        scores = run_evaluation(EvaluateConfig(**options))
    except (ValueError, TrackingUnavailableError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(
        f"{scores['examples']} {scores['split']} images: mean Dice {_fmt(scores['mean_dice'])}, "
        f"mean IoU {_fmt(scores['mean_iou'])}, {scores['images_per_s']:.1f} images/s -> {options['out']}"
    )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
