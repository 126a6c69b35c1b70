"""Tiny crop shards for the object classifier's tests: cut from a small synthetic object set."""

from pathlib import Path

import pytest

from cityseg.components.crops.config import CropsConfig
from cityseg.components.crops.core import write_crops
from cityseg.components.synth.config import SynthConfig
from cityseg.components.synth.core import generate


@pytest.fixture(scope="session")
def crops(tmp_path_factory) -> Path:
    """16x16 crops of 9 synthetic frames at 128x256, every class in every split."""
    root = tmp_path_factory.mktemp("objects")
    generate(
        SynthConfig(out=str(root / "src"), cities=3, frames_per_city=3, height=128, width=256, objects=True)
    )
    write_crops(CropsConfig(root / "src", root / "crops", size=16, min_box=8, min_pixels=20, workers=1))
    return root / "crops"
