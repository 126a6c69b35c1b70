"""Where the train step's work runs: in the task's own process, as local worker processes, or as a TFJob.

The step's checkpoints must outlive a retried task, which gets a fresh output folder: with a
`checkpoint_root` (a volume shared across pods, see manifests/) training writes to
`<checkpoint_root>/<run id>/train` and the finished model folder is copied into the Model artifact.
"""

import json
import logging
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from cityseg.components.train import tfjob

log = logging.getLogger(__name__)

LAUNCHERS = ("local", "tfjob")


@dataclass(frozen=True)
class Launch:
    """How many workers, on what, and where the retry-proof checkpoints live."""

    workers: int = 1
    launcher: str = "local"
    gpus_per_worker: int = 1
    image: str = ""
    checkpoint_root: str = ""
    data_uri: str = ""


def train_argv(config) -> list[str]:
    """The `cityseg train ...` arguments for `config`: what every worker, local or TFJob pod, runs.

    Built from the train command's own options, so a new TrainConfig field with a flag travels too.
    """
    import click

    from cityseg.components.train.cli import train as train_command

    argv = ["train"]
    for param in train_command.params:
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


def launch_local(config, workers: int, log_dir: Path) -> None:
    """Train `config` as `workers` local processes on 127.0.0.1, each with its log in `log_dir`.

    Raises:
        cityseg.components.train.distribute.WorkerFailedError: a worker failed.
    """
    from cityseg.components.train.distribute import launch_local_workers

    # This interpreter, not a `cityseg` script on PATH: the task may run outside the venv's bin.
    cityseg = [sys.executable, "-c", "from cityseg.cli import main; main()"]
    launch_local_workers([*cityseg, *train_argv(config)], workers, log_dir)


def _tfjob_name(run_id: str | None) -> str:
    # Kubernetes names: lowercase, at most 63 characters.
    return f"cityseg-train-{(run_id or 'manual')[:36]}".lower()


def train_model(config, launch: Launch) -> dict:
    """Train per `launch` and leave the model folder at `config.out`; returns its train_info.

    Raises:
        ValueError: an unknown launcher, fewer than one worker, or a TFJob without a shared checkpoint root.
    """
    from cityseg.components.train.core import train

    if launch.launcher not in LAUNCHERS:
        raise ValueError(f"launcher: unknown value {launch.launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if launch.workers < 1:
        raise ValueError(f"workers must be at least 1, got {launch.workers}")
    model_dir = Path(config.out)
    if launch.checkpoint_root:
        config = replace(
            config, out=str(Path(launch.checkpoint_root, config.kfp_run_id or "manual", "train"))
        )
    log.info(
        "training %s with %d worker(s), launcher %s, in %s",
        config.model,
        launch.workers,
        launch.launcher,
        config.out,
    )
    if launch.workers == 1:
        train(config)
    elif launch.launcher == "local":
        launch_local(config, launch.workers, Path(config.out).parent / "logs")
    else:
        if not launch.checkpoint_root:
            raise ValueError("a TFJob writes its model to a shared volume: set checkpoint_root")
        command = ["cityseg", *train_argv(replace(config, data=launch.data_uri or config.data))]
        spec = tfjob.TFJobSpec(
            name=_tfjob_name(config.kfp_run_id),
            image=launch.image,
            command=command,
            workers=launch.workers,
            gpus_per_worker=launch.gpus_per_worker,
            namespace=tfjob.current_namespace(),
        )
        tfjob.run_tfjob(tfjob.build_tfjob(spec))
    if Path(config.out) != model_dir:
        shutil.copytree(config.out, model_dir, ignore=shutil.ignore_patterns("backup"), dirs_exist_ok=True)
    return json.loads((model_dir / "train_info.json").read_text())
