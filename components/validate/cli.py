"""`cityseg validate`: argv -> ValidateConfig -> validate, then the outcome."""

import dataclasses

import click

from cityseg.components.beam.cli import pop_runner, runner_options
from cityseg.components.validate.config import DRIFT_METRICS, DRIFT_POLICIES, ValidateConfig

_DEFAULTS = {field.name: field.default for field in dataclasses.fields(ValidateConfig)}


@click.command()
@click.option("--shards", required=True, help="Shard folder written by `cityseg shard` (or gs://).")
@click.option("--out", required=True, help="Folder for statistics.json, anomalies.json and statistics.md.")
@click.option("--fingerprint", default="", help="Source fingerprint; equal to the champion's means skip.")
@click.option("--min-frames", type=click.IntRange(min=1), default=_DEFAULTS["min_frames"], show_default=True)
@click.option(
    "--min-select-frames",
    type=click.IntRange(min=0),
    default=_DEFAULTS["min_select_frames"],
    show_default=True,
    help="Frames the select split needs (training chooses its kept weights on it); 0: none.",
)
@click.option(
    "--max-void-share",
    type=click.FloatRange(0, 1, min_open=True),
    default=_DEFAULTS["max_void_share"],
    show_default=True,
    help="No train/val frame may be more void than this.",
)
@click.option(
    "--min-image-std",
    type=click.FloatRange(min=0),
    default=_DEFAULTS["min_image_std"],
    show_default=True,
    help="Grey-level std (0..255) below which an image is constant.",
)
@click.option(
    "--drift-metric", type=click.Choice(DRIFT_METRICS), default=_DEFAULTS["drift_metric"], show_default=True
)
@click.option(
    "--drift-threshold", type=click.FloatRange(min=0), default=_DEFAULTS["drift_threshold"], show_default=True
)
@click.option(
    "--drift-policy", type=click.Choice(DRIFT_POLICIES), default=_DEFAULTS["drift_policy"], show_default=True
)
@click.option(
    "--max-brightness-shift",
    type=click.FloatRange(min=0),
    default=_DEFAULTS["max_brightness_shift"],
    show_default=True,
    help="Change of a split's mean luma (grey levels) from the champion's data that is drift.",
)
@click.option(
    "--max-colour-shift",
    type=click.FloatRange(min=0),
    default=_DEFAULTS["max_colour_shift"],
    show_default=True,
    help="Change of one channel's share of R+G+B from the champion's data that is drift.",
)
@click.option(
    "--max-contrast-shift",
    type=click.FloatRange(min=0),
    default=_DEFAULTS["max_contrast_shift"],
    show_default=True,
    help="Relative change of the channels' std from the champion's data that is drift.",
)
@click.option("--skip-unchanged/--no-skip-unchanged", default=_DEFAULTS["skip_unchanged"], show_default=True)
@click.option("--name", "registered_model", default=_DEFAULTS["registered_model"], show_default=True)
@click.option(
    "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or work/mlflow)."
)
@click.option("--experiment", default=_DEFAULTS["experiment"], show_default=True)
@runner_options
def validate(**options) -> None:
    """Check the shards before training: statistics, schema checks, drift against the champion's data."""
    from cityseg.components import tracking
    from cityseg.components.validate.core import validate as validate_data

    runner = pop_runner(options)
    try:
        result = validate_data(ValidateConfig(**options, runner=runner))
    except (ValueError, tracking.TrackingUnavailableError) as err:
        raise click.ClickException(str(err)) from None
    for anomaly in result.anomalies:
        click.echo(f"{anomaly.severity}: {anomaly.description}")
    click.echo(result.outcome)
