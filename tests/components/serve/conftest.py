"""Serve fixtures: a tiny Cityscapes folder with hand-drawn labels, constant models, a running API."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import free_port, start_server, stop_server, wait_for_http

BIN = Path(sys.executable).parent
HEIGHT, WIDTH = 32, 64
# labelIds drawn by hand: row 0 unlabeled (0 -> void), rows 1-9 sky (23), the rest road (7 -> flat),
# with a car (26 -> vehicle) in rows 20-31, columns 30-39.
VAL_IDS = ("aachen_000000_000000", "aachen_000000_000001", "aachen_000001_000000")
TRAIN_ID = "bonn_000000_000000"


def label_ids() -> np.ndarray:
    labels = np.full((HEIGHT, WIDTH), 7, np.uint8)
    labels[1:10] = 23
    labels[20:, 30:40] = 26
    labels[0] = 0
    return labels


def frame_image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def write_frame(root: Path, split: str, stem: str, image: np.ndarray, labels: np.ndarray) -> None:
    city = stem.split("_", maxsplit=1)[0]
    image_dir = root / "leftImg8bit" / split / city
    label_dir = root / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image_dir / f"{stem}_leftImg8bit.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(label_dir / f"{stem}_gtFine_labelIds.png"), labels)


def start_serve(argv: list[str], url: str, log: Path, timeout_s: float = 120):
    """`cityseg serve` started, once /readyz answers and, with --objects-model, the classifier is ready.

    /readyz is the segmenter's readiness; the classifier loads beside it with its own ready route.
    """
    process = start_server(argv, f"{url}/readyz", log, timeout_s=timeout_s)
    if "--objects-model" in argv:
        name = argv[argv.index("--objects-name") + 1] if "--objects-name" in argv else "cityseg-objects"
        wait_for_http(f"{url}/v2/models/{name}/ready", process, timeout_s, log)
    return process


def constant_model(category: int, height: int = HEIGHT, width: int = WIDTH):
    """A Keras model (input (H, W, 3) in [0, 1], 8 logits out) that predicts `category` everywhere."""
    import keras

    bias = np.zeros(8, np.float32)
    bias[category] = 5.0
    inputs = keras.Input((height, width, 3), name="image")
    logits = keras.layers.Conv2D(
        8,
        1,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(bias),
        name="classifier",
    )(inputs)
    return keras.Model(inputs, logits, name=f"constant_{category}")


def constant_classifier(class_index: int, size: int = 16):
    """A Keras object classifier (size x size x 3 crops in, 8 logits out) that predicts `class_index`."""
    import keras

    bias = np.zeros(8, np.float32)
    bias[class_index] = 5.0
    inputs = keras.Input((size, size, 3), name="crop")
    dense = keras.layers.Dense(
        8, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias)
    )
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, dense(pooled), name=f"constant_class_{class_index}")


def classifier_folder(model, folder: Path, margin: float = 0.3) -> Path:
    """A classifier model folder as the objects step writes it: model.keras, train_info.json's crop margin."""
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    (folder / "train_info.json").write_text(json.dumps({"crop_margin": margin}))
    return folder


@pytest.fixture(scope="session")
def cityscapes_dir(tmp_path_factory) -> Path:
    """Three val frames (city aachen) and one train frame (city bonn), 32x64, with `label_ids()`."""
    root = tmp_path_factory.mktemp("cityscapes")
    for seed, stem in enumerate(VAL_IDS):
        write_frame(root, "val", stem, frame_image(seed), label_ids())
    write_frame(root, "train", TRAIN_ID, frame_image(9), label_ids())
    return root


@pytest.fixture(scope="session")
def flat_model_path(tmp_path_factory) -> Path:
    """A .keras file of a model that predicts flat (1) everywhere."""
    path = tmp_path_factory.mktemp("models") / "flat.keras"
    constant_model(1).save(path)
    return path


@pytest.fixture(scope="session")
def api_url(tmp_path_factory, cityscapes_dir, flat_model_path):
    """A real `cityseg serve` on 127.0.0.1 with the flat model, the val split and a 256 KiB upload limit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    argv = [
        str(BIN / "cityseg"), "serve", "--model", str(flat_model_path), "--images", str(cityscapes_dir),
        "--images-split", "val", "--port", str(port), "--max-upload-mb", "0.25", "--max-megapixels", "1",
    ]  # fmt: skip
    process = start_server(argv, f"{url}/readyz", log, timeout_s=120)
    yield url
    stop_server(process)
