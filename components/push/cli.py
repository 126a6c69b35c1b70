"""`cityseg push`, `promote` and `rollback`: launchers over `push.core` and `push.registry`."""

import click

from cityseg.components.defaults import defaults
from cityseg.components.push.config import PushConfig

DEFAULTS = defaults(PushConfig)
_ERRORS = (ValueError, ConnectionError, TimeoutError)


def _aliases(aliases: dict[str, str]) -> str:
    return ", ".join(f"@{alias} -> v{version}" for alias, version in sorted(aliases.items())) or "no aliases"


@click.command()
@click.option(
    "--model", required=True, help="Model folder from `cityseg train`, or runs:/id/model, models:/name/N."
)
@click.option("--metrics", required=True, help="metrics.json written by `cityseg evaluate`.")
@click.option(
    "--data", required=True, help="The shards the metrics came from; the champion is re-scored on them."
)
@click.option("--name", default=DEFAULTS.name, show_default=True, help="Registered model name.")
@click.option(
    "--min-dice",
    default=DEFAULTS.min_dice,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Absolute gate.",
)
@click.option(
    "--min-improvement",
    default=DEFAULTS.min_improvement,
    show_default=True,
    type=click.FloatRange(-1, 1),
    help="Change gate: required mean_dice gain over @champion.",
)
@click.option(
    "--serving-dir", default=None, help="Folder or gs:// prefix for the blessed SavedModel (<version>/)."
)
@click.option("--kfp-run-id", default=None, help="Tagged on the version (default: KFP_RUN_ID).")
@click.option(
    "--max-int8-iou-drop",
    default=DEFAULTS.max_int8_iou_drop,
    type=click.FloatRange(0, 1),
    help="Refuse a model whose int8 TFLite export loses more mean_iou than this (default: off).",
)
@click.option(
    "--infra-validation/--no-infra-validation",
    default=DEFAULTS.infra_validation,
    show_default=True,
    help="Serve the candidate and check its /v2 answers before any alias moves.",
)
@click.option(
    "--infra-images",
    default=DEFAULTS.infra_images,
    show_default=True,
    type=click.IntRange(min=1),
    help="Validation images sent through /v2/models/<name>/infer.",
)
@click.option(
    "--infra-load-timeout-s",
    default=DEFAULTS.infra_load_timeout_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="The served model must be ready within this.",
)
@click.option(
    "--infra-max-p95-ms",
    default=DEFAULTS.infra_max_p95_ms,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="p95 latency limit of the infra-validation requests.",
)
@click.option(
    "--infra-min-agreement",
    default=DEFAULTS.infra_min_agreement,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of pixels where served masks must equal the evaluated model's predictions.",
)
@click.option("--batch-size", default=DEFAULTS.batch_size, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or work/mlflow)."
)
@click.option(
    "--statistics",
    default=None,
    help="Folder written by `cityseg validate`: its fingerprint and statistics become lineage tags.",
)
def push(statistics: str | None, **options):
    """Register a model and make it @champion only if it passes the absolute and the change gate."""
    from cityseg.components.container_images import DEFAULT_TAG
    from cityseg.components.lineage.core import lineage_tags
    from cityseg.components.push.core import push as push_model

    try:
        lineage = {}
        if statistics:
            lineage = lineage_tags(statistics, pipeline_name="cityseg push", pipeline_version=DEFAULT_TAG)
        result = push_model(PushConfig(**options, lineage=tuple(lineage.items())))
    except _ERRORS as err:
        raise click.ClickException(str(err)) from err
    verdict = "BLESSED" if result.blessed else "NOT BLESSED (aliases unchanged)"
    click.echo(f"{options['name']} v{result.version}: {verdict}: {result.reason}")
    click.echo(f"aliases: {_aliases(result.model_aliases)}")
    if result.serving_path:
        click.echo(f"serving copy: {result.serving_path}")


@click.command()
@click.option(
    "--version", "version", required=True, type=click.IntRange(min=1), help="Version to make @champion."
)
@click.option("--reason", required=True, help="Why, recorded as a tag.")
@click.option(
    "--user", default=None, help="Who, recorded as a tag (default: CITYSEG_USER or the login name)."
)
@click.option("--name", default=DEFAULTS.name, show_default=True, help="Registered model name.")
@click.option(
    "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or work/mlflow)."
)
def promote(version, reason, user, name, tracking_uri):
    """Make a registered version @champion by hand; the old champion becomes @previous."""
    from cityseg.components import tracking
    from cityseg.components.push.registry import promote as promote_version

    try:
        tracking.connect(tracking_uri)
        aliases = promote_version(name, version, reason=reason, user=user)
    except _ERRORS as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{name}: {_aliases(aliases)}")


@click.command()
@click.option("--reason", required=True, help="Why, recorded as a tag.")
@click.option(
    "--user", default=None, help="Who, recorded as a tag (default: CITYSEG_USER or the login name)."
)
@click.option("--name", default=DEFAULTS.name, show_default=True, help="Registered model name.")
@click.option(
    "--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or work/mlflow)."
)
def rollback(reason, user, name, tracking_uri):
    """Put @champion back on @previous (the demoted version becomes @previous)."""
    from cityseg.components import tracking
    from cityseg.components.push.registry import rollback as rollback_champion

    try:
        tracking.connect(tracking_uri)
        aliases = rollback_champion(name, reason=reason, user=user)
    except _ERRORS as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{name}: {_aliases(aliases)}")
