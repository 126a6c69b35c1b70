"""Sources for the agreement tests: the synthetic data, and a hand-made folder of odd cases."""

from pathlib import Path

import numpy as np
import pytest

from cityseg.components import labels
from cityseg.components.synth.config import SynthConfig
from cityseg.components.synth.core import generate
from tests.builders import image_path, label_path, write_png

HEIGHT, WIDTH = 32, 64


def every_label_id() -> np.ndarray:
    """A HEIGHTxWIDTH label mask holding every id 0..33: columns cycle through them."""
    return (np.arange(WIDTH)[None, :].repeat(HEIGHT, axis=0) % labels.NUM_LABEL_IDS).astype(np.uint8)


def write_frame(root: Path, split: str, city: str, frame: int, ids: np.ndarray) -> None:
    image = np.dstack([ids * 7, np.full_like(ids, 90 + frame), 255 - ids * 3]).astype(np.uint8)
    write_png(image_path(root, split, city, frame), image)
    write_png(label_path(root, split, city, frame), ids)


def write_odd_cases(root: Path) -> Path:
    """A frame with every label id, an all-void frame, an empty city, a one-frame split, a uniform image."""
    write_frame(root, "train", "aachen", 0, every_label_id())
    write_frame(root, "train", "aachen", 1, np.zeros((HEIGHT, WIDTH), np.uint8))
    for top in ("leftImg8bit", "gtFine"):
        (root / top / "train" / "erfurt").mkdir(parents=True)  # a city without frames
    write_frame(root, "train", "bremen", 0, np.full((HEIGHT, WIDTH), 26, np.uint8))  # all car
    write_frame(root, "val", "lindau", 0, every_label_id()[:, ::-1].copy())
    write_frame(root, "test", "berlin", 0, np.full((HEIGHT, WIDTH), 7, np.uint8))  # all road
    return root


@pytest.fixture(scope="module", params=["synthetic", "odd cases"])
def source(request, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp(request.param.replace(" ", "_"))
    if request.param == "odd cases":
        return write_odd_cases(root / "cityscapes")
    generate(
        SynthConfig(out=str(root / "cityscapes"), cities=3, frames_per_city=2, height=HEIGHT, width=WIDTH)
    )
    return root / "cityscapes"
