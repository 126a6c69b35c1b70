"""`cityseg serve` (the prediction API) and `cityseg app` (the web app), both on uvicorn."""

from pathlib import Path

import click

from cityseg.components import storage
from cityseg.components.modelstore import is_mlflow_uri
from cityseg.components.serve.config import REQUEST_BYTES_PER_PIXEL, ServeConfig, WebAppConfig


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
    default=ServeConfig.model,
    show_default=True,
    callback=_check_model,
    help="Model folder, .keras file, gs:// folder, or MLflow URI; a models:/NAME@ALIAS URI is followed.",
)
@click.option(
    "--images",
    callback=_check_images,
    help="Cityscapes root (folder, official zips or gs://) whose frames /images serves, e.g. a val split.",
)
@click.option(
    "--images-split",
    default=ServeConfig.images_split,
    show_default=True,
    help="The split of --images that /images lists, or `all` (training images flatter the model).",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container)."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--poll-seconds",
    default=ServeConfig.poll_seconds,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="How often to ask the registry where the alias points.",
)
@click.option(
    "--max-upload-mb",
    default=ServeConfig.max_upload_mb,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Larger request bodies get 413.",
)
@click.option(
    "--max-megapixels",
    default=ServeConfig.max_megapixels,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Images with more pixels get 413, before they are decoded.",
)
@click.option(
    "--max-concurrent",
    default=ServeConfig.max_concurrent,
    show_default=True,
    type=click.IntRange(min=1),
    help=f"Requests that decode and predict at once; the others wait. Each holds at most "
    f"{REQUEST_BYTES_PER_PIXEL} bytes per pixel of --max-megapixels plus --max-upload-mb, so the memory "
    f"limit must be at least the idle size (runtime and model, about 1 GB) + max-concurrent x that: "
    f"1 + {ServeConfig.max_concurrent} x {ServeConfig().request_memory_bytes / 1e9:.2f} GB at the defaults.",
)
@click.option(
    "--max-probability-megapixels",
    default=ServeConfig.max_probability_megapixels,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest image whose FP32 `probabilities` /v2 returns (8 floats per pixel).",
)
@click.option(
    "--objects-model",
    callback=lambda ctx, param, value: value if value is None else _check_model(ctx, param, value),
    help="Object classifier served at /v2/models/OBJECTS-NAME, e.g. models:/cityseg-objects@champion.",
)
@click.option(
    "--explain-timeout-s",
    default=ServeConfig.explain_timeout_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="POST /explain stops with 504 after this many seconds.",
)
@click.option(
    "--objects-name",
    default=ServeConfig.objects_name,
    show_default=True,
    help="The classifier's model name under /v2/models.",
)
@click.option(
    "--tracking-uri", help="MLflow tracking/registry URI (default: MLFLOW_TRACKING_URI, else ./work)."
)
@click.option(
    "--cache-dir",
    default=ServeConfig.cache_dir,
    show_default=True,
    help="Where MLflow and gs:// models are downloaded.",
)
def serve(host: str, port: int, **options) -> None:
    """Serve the prediction API: POST /predict, GET /images, /model, /healthz, /readyz, /metrics, and /v2.

    /v2 is the Open Inference Protocol (KServe v2 REST) that tritonclient and KServe speak.
    """
    import uvicorn

    from cityseg.components.serve.api import create_app

    # Every other option is a ServeConfig field of the same name.
    if options["images_split"] == "all":
        options["images_split"] = None
    config = ServeConfig(**options)
    try:
        app = create_app(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"cityseg API on http://{host}:{port} (docs at /docs), model {config.model}")
    uvicorn.run(app, host=host, port=port, log_level="info")


@click.command()
@click.option("--api", default=WebAppConfig.api, show_default=True, help="URL of a running `cityseg serve`.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--max-upload-mb",
    default=WebAppConfig.max_upload_mb,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Larger uploads get 413 before they are buffered; keep it equal to the API's --max-upload-mb.",
)
@click.option(
    "--connect-timeout",
    "connect_timeout_s",
    default=WebAppConfig.connect_timeout_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to connect to the API before answering 502.",
)
@click.option(
    "--read-timeout",
    "read_timeout_s",
    default=WebAppConfig.read_timeout_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for the API's answer before answering 504.",
)
@click.option(
    "--max-in-flight",
    default=WebAppConfig.max_in_flight,
    show_default=True,
    type=click.IntRange(min=1),
    help="Calls that may wait on the API at once; more get 503 at once (the page itself is always served).",
)
def app(host: str, port: int, **options) -> None:
    """Serve the web app: browse the API's images and compare true and predicted masks."""
    import uvicorn

    from cityseg.components.serve.webapp import create_webapp

    # Every other option is a WebAppConfig field of the same name.
    try:
        config = WebAppConfig(**options)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--api") from err
    click.echo(f"cityseg web app on http://{host}:{port}, talking to {config.api}")
    uvicorn.run(create_webapp(config), host=host, port=port, log_level="info")
