"""`cityseg serve` (the prediction API) and `cityseg app` (the web app), both on uvicorn."""

from pathlib import Path

import click

from cityseg.components import storage
from cityseg.components.modelstore import DEFAULT_CACHE_DIR, is_mlflow_uri
from cityseg.components.serve.core import ServeConfig


def _check_model(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not (is_mlflow_uri(value) or storage.is_gcs(value) or Path(value).exists()):
        raise click.BadParameter(f"{value}: no such model file or folder, and not a models:/ or runs:/ URI")
    return value


def _check_images(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not storage.is_gcs(value) and not Path(value).is_dir():
        raise click.BadParameter(f"{value}: no such folder")
    return value


@click.command()
@click.option(
    "--model",
    default="models:/cityseg@champion",
    show_default=True,
    callback=_check_model,
    help="Model folder, .keras file, gs:// folder, or MLflow URI; a models:/NAME@ALIAS URI is followed.",
)
@click.option(
    "--images",
    callback=_check_images,
    help="Cityscapes root (folder, official zips or gs://) whose frames /images serves, e.g. a val split.",
)
@click.option("--images-split", help="Serve only this split of --images (default: every split).")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container)."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--poll-seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="How often to ask the registry where the alias points.",
)
@click.option(
    "--max-upload-mb",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Larger request bodies get 413.",
)
@click.option(
    "--max-megapixels",
    default=64.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Images with more pixels get 413, before they are decoded.",
)
@click.option(
    "--tracking-uri", help="MLflow tracking/registry URI (default: MLFLOW_TRACKING_URI, else ./work)."
)
@click.option(
    "--cache-dir",
    default=str(DEFAULT_CACHE_DIR),
    show_default=True,
    help="Where MLflow and gs:// models are downloaded.",
)
def serve(host: str, port: int, **options) -> None:
    """Serve the prediction API: POST /predict, GET /images, /model, /healthz, /readyz, /metrics."""
    import uvicorn

    from cityseg.components.serve.api import create_app

    # Every other option is a ServeConfig field of the same name.
    config = ServeConfig(**options)
    try:
        app = create_app(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"cityseg API on http://{host}:{port} (docs at /docs), model {config.model}")
    uvicorn.run(app, host=host, port=port, log_level="info")


@click.command()
@click.option(
    "--api", default="http://127.0.0.1:8000", show_default=True, help="URL of a running `cityseg serve`."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
def app(api: str, host: str, port: int) -> None:
    """Serve the web app: browse the API's images and compare true and predicted masks."""
    import uvicorn

    from cityseg.components.serve.webapp import create_webapp

    if not api.startswith(("http://", "https://")):
        raise click.BadParameter(
            f"{api}: the API URL must start with http:// or https://", param_hint="--api"
        )
    click.echo(f"cityseg web app on http://{host}:{port}, talking to {api}")
    uvicorn.run(create_webapp(api), host=host, port=port, log_level="info")
