"""The `cityseg` command line: one subcommand per pipeline step, each a thin launcher over its `core`."""

import importlib
import logging

import click

# Subcommand name -> "module:attribute" of its click command. Modules load on first use, so
# `cityseg synth --help` does not pay for importing TensorFlow or MLflow.
COMMANDS = {
    "synth": "cityseg.synth.cli:synth",
    "remap": "cityseg.remap.cli:remap",
    "shard": "cityseg.shard.cli:shard",
    "train": "cityseg.train.cli:train",
    "evaluate": "cityseg.evaluate.cli:evaluate",
    "push": "cityseg.push.cli:push",
    "promote": "cityseg.push.cli:promote",
    "rollback": "cityseg.push.cli:rollback",
    "serve": "cityseg.serve.cli:serve",
    "app": "cityseg.serve.cli:app",
    "run": "cityseg.pipelines.cli:run",
    "compile": "cityseg.pipelines.cli:compile_",
    "submit": "cityseg.pipelines.cli:submit",
    "schedule": "cityseg.pipelines.cli:schedule",
    "compare": "cityseg.compare.cli:compare",
    "report": "cityseg.compare.cli:report",
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
