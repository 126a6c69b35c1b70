"""`cityseg deploy`: the launcher over `cityseg.components.deploy.core`."""

import click

from cityseg.components.defaults import defaults
from cityseg.components.deploy.config import TARGETS, DeployConfig

DEFAULTS = defaults(DeployConfig)


@click.command()
@click.option("--version", "version", required=True, help="Registered model version to serve.")
@click.option("--name", default=DEFAULTS.name, show_default=True, help="Registered model name.")
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default=DEFAULTS.target,
    show_default=True,
    help="kserve: a soaked canary on the InferenceService; local: the `cityseg serve` at --local-url.",
)
@click.option("--service", default=DEFAULTS.service, show_default=True, help="InferenceService name.")
@click.option("--namespace", default=DEFAULTS.namespace, help="Its namespace (default: this pod's).")
@click.option(
    "--canary-traffic-percent",
    type=click.IntRange(1, 100),
    default=DEFAULTS.canary_traffic_percent,
    show_default=True,
    help="Traffic share of the new revision during its soak; 100 rolls out at once.",
)
@click.option(
    "--ready-timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.ready_timeout_s,
    show_default=True,
    help="How long the canary may take to become Ready before it is rolled back.",
)
@click.option(
    "--poll-s",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.poll_s,
    show_default=True,
    help="How often the InferenceService's status is read.",
)
@click.option(
    "--soak-s",
    type=click.FloatRange(min=0),
    default=DEFAULTS.soak_s,
    show_default=True,
    help="How long the canary serves beside the stable revision before it is judged.",
)
@click.option(
    "--soak-min-requests",
    type=click.IntRange(min=0),
    default=DEFAULTS.soak_min_requests,
    show_default=True,
    help="Prediction requests the canary must serve in the soak to be judged.",
)
@click.option(
    "--max-error-rate-increase",
    type=click.FloatRange(min=0),
    default=DEFAULTS.max_error_rate_increase,
    show_default=True,
    help="How far the canary's 5xx share may exceed the stable revision's (0.01: one point).",
)
@click.option(
    "--max-p95-ratio",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS.max_p95_ratio,
    show_default=True,
    help="How many times the stable revision's p95 latency the canary's may reach.",
)
@click.option(
    "--serving-dir", default=DEFAULTS.serving_dir, help="Push's serving folder (STORAGE_URI predictors)."
)
@click.option("--local-url", default=DEFAULTS.local_url, show_default=True, help="The local `cityseg serve`.")
@click.option("--tracking-uri", default=None, help="MLflow server (default: MLFLOW_TRACKING_URI).")
@click.option("--api-host", default=None, help="Kubernetes API URL (default: the in-cluster configuration).")
def deploy(**options) -> None:
    """Serve a blessed version: on KServe behind a canary that is promoted or rolled back."""
    from cityseg.components.deploy.core import deploy as deploy_version
    from cityseg.components.deploy.kube import KubeError
    from cityseg.components.deploy.result import DeployError

    try:
        result = deploy_version(DeployConfig(**options))
    except (ValueError, DeployError, KubeError, ConnectionError, TimeoutError) as err:
        raise click.ClickException(str(err)) from err
    if not result.url:
        where = options["local_url"]
        click.echo(f"{options['name']} v{result.version} was not deployed: no server answers at {where}")
        return
    click.echo(f"{options['name']} v{result.version} ({result.model_ref}) served at {result.url}")
    if result.traffic:
        click.echo("traffic: " + ", ".join(f"{rev} {pct}%" for rev, pct in sorted(result.traffic.items())))
