"""The crops step's configuration: source, output folder, crop size and margin, and the instance filters."""

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class CropsConfig:
    """Where the Cityscapes source is, where the crop shards go, how crops are cut and which are kept.

    Attributes:
        size: the side of the stored square crops, pixels.
        margin: context around an instance's box on each side, as a share of the box's longer side.
        min_box: instances whose visible box has a longer side under this many source pixels are dropped.
        min_pixels: instances with fewer visible pixels are dropped.
        min_visible: instances whose visible pixels are under this share of their polygon's are
            dropped as mostly occluded.
        shards: shards per split (fewer for a split with fewer crops).
        workers: processes reading frames; None means one per core.
    """

    cityscapes: str | Path
    out: str | Path
    size: int = 48
    margin: float = 0.3
    min_box: int = 16
    min_pixels: int = 80
    min_visible: float = 0.5
    shards: int = 2
    workers: int | None = None

    def __post_init__(self):
        for name in ("size", "min_box", "shards", "workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.min_pixels < 0:
            raise ValueError(f"min_pixels must be non-negative, got {self.min_pixels}")
        if not 0 <= self.margin <= 2:
            raise ValueError(f"margin must lie in [0, 2], got {self.margin}")
        if not 0 <= self.min_visible <= 1:
            raise ValueError(f"min_visible must lie in [0, 1], got {self.min_visible}")
