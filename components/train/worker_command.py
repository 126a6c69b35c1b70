"""The command line every training worker runs, a local process or a TFJob pod, built from a config.

A trainer's click command (`cityseg train`, `cityseg objects train`) is also its workers' entry
point. `command_argv` turns a config back into that command's arguments, read from the command's
own options, so a new config field with a flag travels to the workers too; `launch_local` runs the
command as N processes on 127.0.0.1, each with the `TF_CONFIG` a TFJob's pod would get.
"""

import sys
from collections.abc import Sequence
from pathlib import Path

import click


def command_argv(path: Sequence[str], command: click.Command, config) -> list[str]:
    """`path` (the subcommand, e.g. ["objects", "train"]) and the options of `command` that rebuild `config`.

    Every option named like a field of `config` travels: a `--x/--no-x` pair as one of its two
    flags, a tuple as a comma list ("none" when empty), anything else as its text. A field that is
    None stays out, so the command's own default (None) applies again.
    """
    argv = list(path)
    for param in command.params:
        value = getattr(config, param.name or "", None)
        if not isinstance(param, click.Option) or value is None:
            continue
        flag = param.opts[0]
        if param.is_flag:
            argv.append(flag if value else param.secondary_opts[0])
        elif isinstance(value, tuple):
            argv += [flag, ",".join(value) or "none"]
        else:
            argv += [flag, str(value)]
    return argv


def launch_local(argv: Sequence[str], workers: int, log_dir: Path) -> None:
    """Run `cityseg <argv>` as `workers` local processes on 127.0.0.1, each with its log in `log_dir`.

    Raises:
        cityseg.components.train.distribute.WorkerFailedError: a worker failed.
    """
    from cityseg.components.train.distribute import launch_local_workers

    # This interpreter, not a `cityseg` script on PATH: the task may run outside the venv's bin.
    cityseg = [sys.executable, "-c", "from cityseg.cli import main; main()"]
    launch_local_workers([*cityseg, *argv], workers, log_dir)
