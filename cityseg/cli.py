"""The `cityseg` command line: one subcommand per pipeline step, each a thin launcher over its `core`."""

import importlib
import logging

import click

from cityseg.components import registry

# Subcommand name -> "module:attribute" of its click command: the steps' commands come from their
# table (`cityseg.components.registry`), the rest are serving, lineage and the pipelines. Modules
# load on first use, so `cityseg synth --help` does not pay for importing TensorFlow or MLflow.
COMMANDS = {
    **registry.commands(),
    "serve": "cityseg.components.serve.cli:serve",
    "app": "cityseg.components.serve.cli:app",
    "lineage": "cityseg.components.lineage.cli:lineage",
    "run": "cityseg.pipelines.cli:run",
    "compile": "cityseg.pipelines.cli:compile_",
    "submit": "cityseg.pipelines.cli:submit",
    "schedule": "cityseg.pipelines.cli:schedule",
    "compare": "cityseg.pipelines.sweep_cli:compare",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when they are invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """Train, evaluate and ship Cityscapes street-scene segmentation models."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
