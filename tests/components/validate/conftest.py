"""Shard folders for the validate tests, built from hand-made Cityscapes sources."""

from pathlib import Path

import pytest

from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from cityseg.components.shard.config import ShardConfig
from cityseg.components.shard.core import write_shards
from tests.builders import write_cityscapes

HEIGHT, WIDTH = 32, 64


def shard_source(source: Path, root: Path, select_fraction: float = 0.0) -> Path:
    """remap + shard `source` at its own size (no resizing), below `root`; returns the shard folder.

    No select split unless asked for: the checks are stated for the source's own splits.
    """
    remap(RemapConfig(cityscapes=source, out=root / "categories", workers=1))
    write_shards(
        ShardConfig(
            source, root / "categories", root / "shards", shards=2, height=HEIGHT, width=WIDTH, workers=1,
            select_fraction=select_fraction,
        )
    )  # fmt: skip
    return root / "shards"


@pytest.fixture
def source(tmp_path) -> Path:
    return write_cityscapes(tmp_path / "cityscapes", height=HEIGHT, width=WIDTH, frames_per_city=2)
