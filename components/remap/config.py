"""The remap step's configuration: the Cityscapes source, the category masks' folder, the workers."""

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class RemapConfig:
    """Where the Cityscapes source is, where the category masks go, and how many processes work.

    `workers` None means one per core.
    """

    cityscapes: str | Path
    out: str | Path
    workers: int | None = None
