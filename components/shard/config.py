"""The shard step's configuration: sources, output folder, shards per split and stored size."""

import dataclasses
from pathlib import Path

from cityseg.components.defaults import RECIPE
from cityseg.components.runner import RunnerConfig


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """Image source, category masks (remap output), output folder, shards per split and stored size.

    `workers` None means one per core. `select_fraction` is the share of the source's train frames
    written as the `select` split instead (`cityseg.components.splits.assign_split`). `runner` names
    the engine that writes the shards (`local` pool, `beam`, `dataflow`).
    """

    cityscapes: str | Path
    categories: str | Path
    out: str | Path
    shards: int = 4
    height: int = RECIPE.height
    width: int = RECIPE.width
    workers: int | None = None
    select_fraction: float = RECIPE.select_fraction
    runner: RunnerConfig = dataclasses.field(default_factory=RunnerConfig)

    def __post_init__(self):
        for name in ("shards", "height", "width", "workers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.select_fraction < 1:
            raise ValueError(f"select_fraction must be in [0, 1), got {self.select_fraction}")
