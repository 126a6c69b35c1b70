"""`cityseg evaluate`: the launcher over `cityseg.components.evaluate.core.evaluate`."""

import click

from cityseg.components.defaults import defaults
from cityseg.components.evaluate.config import EvaluateConfig

DEFAULTS = defaults(EvaluateConfig)


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
@click.option("--split", default=DEFAULTS.split, show_default=True, help="Split to score.")
@click.option("--batch-size", default=DEFAULTS.batch_size, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--samples",
    default=DEFAULTS.samples,
    show_default=True,
    type=click.IntRange(min=0),
    help="Triptychs in the report.",
)
@click.option(
    "--mlflow/--no-mlflow",
    "log_to_mlflow",
    default=DEFAULTS.log_to_mlflow,
    show_default=True,
    help="Log eval_* metrics and the report to the model's MLflow run.",
)
@click.option(
    "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or work/mlflow)."
)
@click.option(
    "--corruptions/--no-corruptions",
    default=DEFAULTS.corruptions,
    show_default=True,
    help="Also score under Gaussian noise, motion blur, darkness, fog and JPEG at 3 severities each.",
)
def evaluate(**options):
    """Score a model on one split: Cityscapes category IoU/Dice from one confusion matrix."""
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
    for variant in ("float16", "int8"):
        if f"tflite_{variant}_mean_iou" in scores:
            click.echo(
                f"LiteRT {variant}: mean IoU {_fmt(scores[f'tflite_{variant}_mean_iou'])} "
                f"(change {_fmt(scores[f'tflite_{variant}_mean_iou_delta'])}), "
                f"{scores[f'tflite_{variant}_ms_per_image']:.1f} ms/image on 1 thread"
            )
    if options["corruptions"]:
        from cityseg.components.evaluate.corruptions import format_robustness

        click.echo(format_robustness(scores))


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
