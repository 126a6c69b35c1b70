"""`cityseg run | compile | submit | schedule`: the pipeline commands, thin over local.py and client.py.

`cityseg run` takes every pipeline parameter as a flag of the same name (underscores become
dashes); the flags, defaults and help texts come from the pipeline definition itself.
"""

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from cityseg.components import container_images, tracking
from cityseg.pipelines.client import PIPELINES, ScheduleConfig
from cityseg.pipelines.local import RUNNERS

# KFP parameter types as the pipelines' InputSpecs name them; lists are given comma-separated.
CLICK_TYPES = {"String": str, "Integer": int, "Float": float, "Boolean": bool}


def _inputs() -> dict:
    from cityseg.pipelines.local import pipeline_inputs

    return pipeline_inputs()


def _click_type(spec) -> type:
    return CLICK_TYPES[spec.type]


def _split(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise click.BadParameter("give at least one value, comma-separated")
    return items


def _parameter_option(name: str, spec):
    flag = "--" + name.replace("_", "-")
    if spec.type == "List":
        return click.option(
            flag,
            name,
            default=",".join(map(str, spec.default)),
            show_default=True,
            callback=_split,
            help=f"{spec.description} Comma-separated.",
        )
    return click.option(
        flag, name, type=_click_type(spec), default=spec.default, show_default=True, help=spec.description
    )


def parameter_options(inputs: Callable[[], dict]):
    """A decorator adding one `--name` option per parameter of `inputs()`, with default and description."""

    def decorate(command):
        for name, spec in reversed(inputs().items()):
            command = _parameter_option(name, spec)(command)
        return command

    return decorate


# One `--name` option per training pipeline parameter.
pipeline_options = parameter_options(_inputs)

verbose_option = click.option(
    "--verbose", is_flag=True, help="Print every task's full output, not one line per task start and end."
)
work_dir_option = click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=tracking.DEFAULT_WORK_DIR,
    show_default=True,
    help="Folder for the runs (artifacts and task logs), the local cache and the MLflow store.",
)


@contextlib.contextmanager
def local_run_errors(*failures: type[Exception]) -> Iterator[None]:
    """Turn a bad pipeline parameter into a usage error on its flag, and a failed run into a clean error.

    Args:
        failures: more exception types, besides a failed step and an unreachable MLflow, that end the run.
    """
    from cityseg.components.train.config import ConfigError

    try:
        yield
    except ConfigError as err:
        flags = " / ".join("--" + part.replace("_", "-") for part in err.field.split("/"))
        raise click.BadParameter(err.message, param_hint=flags) from err
    except (RuntimeError, tracking.TrackingUnavailableError, *failures) as err:
        raise click.ClickException(str(err)) from err


def parse_params(pairs: tuple[str, ...], inputs: dict | None = None) -> dict:
    """`k=v` pairs -> typed arguments of the pipeline whose parameters are `inputs` (default: training).

    Raises:
        click.BadParameter: a pair without `=`, an unknown parameter, or a value of the wrong type.
    """
    inputs = _inputs() if inputs is None else inputs
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        if key not in inputs:
            raise click.BadParameter(
                f"unknown pipeline parameter {key!r}; known: {', '.join(inputs)}", param_hint="--param"
            )
        kind = _click_type(inputs[key])
        try:
            params[key] = kind(value) if kind is not bool else value.lower() in ("1", "true", "yes")
        except ValueError as err:
            raise click.BadParameter(
                f"{key}: {value!r} is not a {kind.__name__}", param_hint="--param"
            ) from err
    return params


@click.command()
@pipeline_options
@work_dir_option
@verbose_option
@click.option(
    "--runner",
    type=click.Choice(RUNNERS),
    default=RUNNERS[0],
    show_default=True,
    help="subprocess: every task in this Python; docker: every task in its own image, hardened as on "
    "the cluster (build them with `make images CPU_ONLY=1`; needs an MLflow server's URL).",
)
@click.option(
    "--pipeline",
    type=click.Choice(["training", "objects"]),
    default="training",
    show_default=True,
    help="objects: the object classifier's pipeline, with its own defaults; of the flags above it takes "
    "those it shares (data, seed, epochs, ...) when given, and any of its parameters as --param KEY=VALUE.",
)
@click.option("--param", "pairs", multiple=True, metavar="KEY=VALUE", help="An objects pipeline argument.")
def run(work_dir: Path, verbose: bool, runner: str, pipeline: str, pairs: tuple[str, ...], **params) -> None:
    """Run the whole training pipeline locally (kfp.local) and print a summary."""
    from cityseg.pipelines.local import run_local
    from cityseg.pipelines.summary import format_summary

    if pipeline == "objects":
        from cityseg.pipelines import objects
        from cityseg.pipelines.objects_cli import command_line_params

        inputs = objects.pipeline_inputs()
        chosen = {**command_line_params(params, inputs), **parse_params(pairs, inputs)}
        with local_run_errors(ValueError):
            click.echo(objects.format_run(objects.run_local(chosen, work_dir, verbose, runner)))
        return
    if pairs:
        raise click.UsageError("--param is for --pipeline objects; the training pipeline takes its flags")

    with local_run_errors(ValueError):
        summary = run_local(params, work_dir, verbose, runner)
    click.echo(format_summary(summary))


def named_inputs(name: str) -> dict:
    """The parameters of pipeline `name`: name -> KFP InputSpec."""
    from cityseg.pipelines.client import load_pipeline

    return dict(load_pipeline(name).component_spec.inputs)


def _registry_options(command):
    command = click.option(
        "--tag", default=container_images.DEFAULT_TAG, show_default=True, help="Image tag."
    )(command)
    return click.option(
        "--registry",
        default=container_images.DEFAULT_REGISTRY,
        show_default=True,
        help="Registry of the component images.",
    )(command)


@click.command("compile")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("pipeline.yaml"), show_default=True
)
@click.option("--pipeline", "name", type=click.Choice(PIPELINES), default="training", show_default=True)
@_registry_options
def compile_(out: Path, name: str, registry: str, tag: str) -> None:
    """Compile a pipeline to the IR YAML that the KFP UI uploads."""
    from cityseg.pipelines.client import compile_pipeline

    click.echo(f"wrote {compile_pipeline(name, out, registry, tag)}")


def _package(package: Path | None, name: str, registry: str, tag: str, tmp: str) -> Path:
    if package is not None:
        return package
    from cityseg.pipelines.client import compile_pipeline

    return compile_pipeline(name, Path(tmp) / "pipeline.yaml", registry, tag)


_host = click.option("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080.")
_params = click.option(
    "--param", "pairs", multiple=True, metavar="KEY=VALUE", help="A pipeline argument; repeatable."
)
_experiment = click.option("--experiment", default="cityseg", show_default=True, help="KFP experiment.")
_pipeline = click.option(
    "--pipeline", "name", type=click.Choice(PIPELINES), default="training", show_default=True
)
_package_option = click.option(
    "--package",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A compiled pipeline YAML; default: compile --pipeline now.",
)


@click.command()
@_host
@_params
@_experiment
@_pipeline
@_package_option
@click.option("--run-name", default=None, help="Display name of the run.")
@_registry_options
def submit(*, host, pairs, experiment, name, package, run_name, registry, tag) -> None:
    """Start a run of the pipeline on a KFP cluster."""
    from cityseg.pipelines.client import submit as submit_run

    params = parse_params(pairs, named_inputs(name))
    with tempfile.TemporaryDirectory() as tmp:
        run_id = submit_run(host, _package(package, name, registry, tag, tmp), params, experiment, run_name)
    click.echo(f"submitted run {run_id}: {host.rstrip('/')}/#/runs/details/{run_id}")


@click.command()
@_host
@click.option("--cron", help='6 fields, seconds first: "0 0 3 * * 1" is every Monday at 03:00.')
@click.option("--list", "list_", is_flag=True, help="List the recurring runs.")
@click.option("--delete", "delete_id", metavar="ID", help="Delete the recurring run ID.")
@click.option(
    "--name", "job_name", default="cityseg-retraining", show_default=True, help="Recurring run name."
)
@_params
@_experiment
@_pipeline
@_package_option
@_registry_options
@click.option(
    "--enabled/--disabled",
    default=ScheduleConfig.enabled,
    show_default=True,
    help="Whether the schedule starts runs right away.",
)
def schedule(
    *, host, cron, list_, delete_id, job_name, pairs, experiment, name, package, registry, tag, enabled
) -> None:
    """Schedule recurring retraining on a KFP cluster, list the schedules, or delete one."""
    from cityseg.pipelines import client

    if sum(bool(x) for x in (cron, list_, delete_id)) != 1:
        raise click.UsageError("give exactly one of --cron, --list and --delete")
    if list_:
        for item in client.list_schedules(host):
            click.echo(f"{item['id']}  {item['name']}  {item['cron']}  {item['status']}")
        return
    if delete_id:
        client.delete_schedule(host, delete_id)
        click.echo(f"deleted recurring run {delete_id}")
        return
    try:
        cron = client.validate_cron(cron)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--cron") from err
    params = parse_params(pairs, named_inputs(name))
    with tempfile.TemporaryDirectory() as tmp:
        scheduled = client.schedule(
            host,
            _package(package, name, registry, tag, tmp),
            cron,
            params=params,
            experiment=experiment,
            name=job_name,
            config=ScheduleConfig(enabled=enabled),
        )
    click.echo(
        f"scheduled {job_name} ({cron}): recurring run {scheduled.recurring_run_id}, {scheduled.state}, "
        f"max_concurrency {scheduled.max_concurrency}, no_catchup {str(scheduled.no_catchup).lower()}"
    )
