"""The remap step's configuration: the Cityscapes source, the category masks' folder, the workers."""

import dataclasses
from pathlib import Path

from cityseg.components.runner import RunnerConfig


@dataclasses.dataclass(frozen=True)
class RemapConfig:
    """Where the Cityscapes source is, where the category masks go, and how many processes work.

    `workers` None means one per core. `runner` names the engine (`local` pool, `beam`, `dataflow`).
    """

    cityscapes: str | Path
    out: str | Path
    workers: int | None = None
    runner: RunnerConfig = dataclasses.field(default_factory=RunnerConfig)
