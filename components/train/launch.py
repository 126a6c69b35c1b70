"""Where the train step's work runs: in the task's own process, as local worker processes, or as a TFJob.

The step's checkpoints must outlive a retried task, which gets a fresh output folder: with a
`checkpoint_root` (a volume shared across pods, see manifests/) training writes to
`<checkpoint_root>/<run id>/train` and the finished model folder is copied into the Model artifact.

With the "tfjob" launcher every worker, even a single one, is a TFJob pod: the KFP task only
submits the job and waits, so it asks for no GPU (pipelines/steps.py). A retried task adopts or
replaces the job its earlier attempt left (see `tfjob_client`).
"""

import json
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from cityseg.components.train import tfjob, tfjob_client

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


def _tfjob_name(run_id: str | None) -> str:
    # Kubernetes names: lowercase, at most 63 characters.
    return f"cityseg-train-{(run_id or 'manual')[:36]}".lower()


def _run_tfjob(config, launch: Launch) -> None:
    from cityseg.components.train.cli import train_argv

    if not launch.checkpoint_root:
        raise ValueError("a TFJob writes its model to a shared volume: set checkpoint_root")
    command = ["cityseg", *train_argv(replace(config, data=launch.data_uri or config.data))]
    spec = tfjob.TFJobSpec(
        name=_tfjob_name(config.kfp_run_id),
        image=launch.image,
        command=command,
        workers=launch.workers,
        gpus_per_worker=launch.gpus_per_worker,
        namespace=tfjob_client.current_namespace(),
    )
    tfjob_client.run_tfjob(tfjob.build_tfjob(spec))


def train_model(config, launch: Launch) -> dict:
    """Train per `launch` and leave the model folder at `config.out`; returns its train_info.

    Raises:
        ValueError: an unknown launcher, fewer than one worker, or a TFJob without a shared checkpoint root.
    """
    # The train command (and TensorFlow behind it) loads only when a training runs, not when the
    # pipelines read `Launch`'s defaults.
    from cityseg.components.train.cli import launch_local
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
    if launch.launcher == "tfjob":
        _run_tfjob(config, launch)
    elif launch.workers == 1:
        train(config)
    else:
        launch_local(config, launch.workers, Path(config.out).parent / "logs")
    if Path(config.out) != model_dir:
        shutil.copytree(config.out, model_dir, ignore=shutil.ignore_patterns("backup"), dirs_exist_ok=True)
    return json.loads((model_dir / "train_info.json").read_text())
