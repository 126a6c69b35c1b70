"""Where a training step's work runs: in the task's own process, as local worker processes, or as a TFJob.

A `Trainer` is what the launcher needs of a step: its in-process train function, its workers'
command line for a config, and the names of its TFJob and its folder. The segmentation trainer is
`SEGMENTATION` here; the object classifier's is `cityseg.components.objects.launch.TRAINER`.

The step's checkpoints must outlive a retried task, which gets a fresh output folder: with a
`checkpoint_root` (a volume shared across pods, see manifests/) training writes to
`<checkpoint_root>/<run id>/<trainer folder>` and the finished model folder is copied into the
Model artifact.

With the "tfjob" launcher every worker, even a single one, is a TFJob pod: the KFP task only
submits the job and waits, so it asks for no GPU (pipelines/steps.py). A retried task adopts or
replaces the job its earlier attempt left (see `tfjob_client`).
"""

import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cityseg.components.train import tfjob, tfjob_client
from cityseg.components.train.worker_command import launch_local

log = logging.getLogger(__name__)

LAUNCHERS = ("local", "tfjob")
# A trainer's name in its TFJob's, `cityseg-<name>-<run id>`: a Kubernetes name is lowercase
# letters, digits and dashes, and at most 63 characters, 18 for the name beside a 36-character id.
TRAINER_NAME = re.compile(r"[a-z][a-z0-9-]{0,17}")
RUN_ID_CHARS = 36


@dataclass(frozen=True)
class Launch:
    """How many workers, on what, and where the retry-proof checkpoints live."""

    workers: int = 1
    launcher: str = "local"
    gpus_per_worker: int = 1
    image: str = ""
    checkpoint_root: str = ""
    data_uri: str = ""


@dataclass(frozen=True)
class Trainer:
    """A training step the launcher can run, in this process or as workers running its command.

    Attributes:
        name: names its TFJob, `cityseg-<name>-<run id>`, and its log lines (see `TRAINER_NAME`).
        folder: its work folder under `<checkpoint_root>/<run id>/`.
        train: config -> train_info, training in this process.
        argv: config -> the `cityseg ...` arguments that every worker runs to train `config`.
    """

    name: str
    folder: str
    train: Callable[..., dict]
    argv: Callable[..., list[str]]

    def __post_init__(self):
        if not TRAINER_NAME.fullmatch(self.name):
            raise ValueError(
                f"trainer name {self.name!r}: lowercase letters, digits and dashes, at most 18 characters"
            )


def _train_segmentation(config) -> dict:
    # The train command's core (and TensorFlow behind it) loads only when a training runs, not
    # when the pipelines read `Launch`'s defaults.
    from cityseg.components.train.core import train

    return train(config)


def _segmentation_argv(config) -> list[str]:
    from cityseg.components.train.cli import train_argv

    return train_argv(config)


SEGMENTATION = Trainer("train", "train", _train_segmentation, _segmentation_argv)


def tfjob_name(trainer: Trainer, run_id: str | None) -> str:
    """The TFJob of `trainer` in KFP run `run_id`: fixed per run, so a retried task finds its job."""
    return f"cityseg-{trainer.name}-{(run_id or 'manual')[:RUN_ID_CHARS]}".lower()


def _tfjob(config, launch: Launch, trainer: Trainer) -> dict:
    if not launch.checkpoint_root:
        raise ValueError("a TFJob writes its model to a shared volume: set checkpoint_root")
    # The pods read the data at its URI (gs://), not at the path the KFP task's own mount gives it.
    command = ["cityseg", *trainer.argv(replace(config, data=launch.data_uri or config.data))]
    spec = tfjob.TFJobSpec(
        name=tfjob_name(trainer, config.kfp_run_id),
        image=launch.image,
        command=command,
        workers=launch.workers,
        gpus_per_worker=launch.gpus_per_worker,
        namespace=tfjob_client.current_namespace(),
    )
    return tfjob.build_tfjob(spec)


def train_model(
    config,
    launch: Launch,
    trainer: Trainer = SEGMENTATION,
    *,
    run_job: Callable[[dict], None] = tfjob_client.run_tfjob,
) -> dict:
    """Train `config` with `trainer` per `launch` and leave the model folder at `config.out`.

    Args:
        config: the trainer's config; its `out` is the model folder (the KFP Model artifact).
        launch: workers, launcher and the shared checkpoint root.
        trainer: the training step to run.
        run_job: submits a TFJob object and waits until it succeeds (`tfjob_client.run_tfjob`).

    Returns:
        The model folder's train_info.

    Raises:
        ValueError: an unknown launcher, fewer than one worker, or a TFJob without a shared checkpoint root.
    """
    if launch.launcher not in LAUNCHERS:
        raise ValueError(f"launcher: unknown value {launch.launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if launch.workers < 1:
        raise ValueError(f"workers must be at least 1, got {launch.workers}")
    model_dir = Path(config.out)
    if launch.checkpoint_root:
        work = Path(launch.checkpoint_root, config.kfp_run_id or "manual", trainer.folder)
        config = replace(config, out=str(work))
    log.info(
        "training %s with %d worker(s), launcher %s, in %s",
        trainer.name,
        launch.workers,
        launch.launcher,
        config.out,
    )
    if launch.launcher == "tfjob":
        run_job(_tfjob(config, launch, trainer))
    elif launch.workers == 1:
        trainer.train(config)
    else:
        launch_local(trainer.argv(config), launch.workers, Path(config.out).parent / "logs")
    if Path(config.out) != model_dir:
        shutil.copytree(config.out, model_dir, ignore=shutil.ignore_patterns("backup"), dirs_exist_ok=True)
    return json.loads((model_dir / "train_info.json").read_text())
