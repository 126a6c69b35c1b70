"""The data steps' engine on the command line: `--runner` and the Dataflow settings, as one decorator.

`cityseg remap|shard|validate --runner dataflow --dataflow-project ...` builds the same RunnerConfig
as the pipelines' data-runner parameters. Imports no Beam: `--runner local` needs none.
"""

import click

from cityseg.components.runner import RUNNERS, RunnerConfig

# Option -> RunnerConfig field; an option left out keeps the field's default.
OPTIONS = {
    "runner": "runner",
    "dataflow_project": "project",
    "dataflow_region": "region",
    "dataflow_temp_location": "temp_location",
    "dataflow_machine_type": "machine_type",
    "dataflow_max_workers": "max_workers",
    "dataflow_image": "sdk_container_image",
    "dataflow_service_account": "service_account",
}


def runner_options(command):
    """Add `--runner` and the `--dataflow-*` options (docs/beam.md) to a step command."""
    decorators = [
        click.option(
            "--runner",
            type=click.Choice(RUNNERS),
            help="Engine of the per-frame work: the local process pool, Beam's DirectRunner, or Dataflow.",
        ),
        click.option("--dataflow-project", help="GCP project of the Dataflow job."),
        click.option("--dataflow-region", help="Dataflow region, e.g. europe-west4."),
        click.option(
            "--dataflow-temp-location", help="gs:// prefix for Dataflow's staging and temporary files."
        ),
        click.option("--dataflow-machine-type", help="Machine type of the Dataflow workers."),
        click.option("--dataflow-max-workers", type=click.IntRange(min=1), help="Most Dataflow workers."),
        click.option("--dataflow-image", help="Container image of the Dataflow workers (the data image)."),
        click.option("--dataflow-service-account", help="Service account e-mail of the Dataflow workers."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def pop_runner(options: dict) -> RunnerConfig:
    """The RunnerConfig of the runner options in `options` (removed from it), given ones over defaults.

    Raises:
        click.BadParameter: the settings do not make a runner (e.g. dataflow without a project).
    """
    given = {field: options.pop(option) for option, field in OPTIONS.items()}
    try:
        return RunnerConfig(**{field: value for field, value in given.items() if value is not None})
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--runner") from None
