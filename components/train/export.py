"""The model folder, written whole or not at all: exports, history, curves and train_info.

Exports are `.keras`, SavedModel, and TFLite float16 / int8 for the embedded target.
"""

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np

from cityseg.components.train.models import build_model
from cityseg.components.train.progress import plot_curves

log = logging.getLogger(__name__)

STAGING = ".export-staging"
TRAIN_INFO = "train_info.json"
# The model folder's contract, in the order it is moved into place: train_info.json last.
MODEL_FILES = ("model.keras", "saved_model", "tflite", "history.json", "curves.png", TRAIN_INFO)


def float32_model(name: str, height: int, width: int) -> keras.Model:
    """A new float32 model `name`, outside any distribution strategy and mixed-precision policy."""
    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        return build_model(name, height, width)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)


def float32_copy(model: keras.Model, name: str, height: int, width: int) -> keras.Model:
    """The same weights in a float32 model, outside any distribution strategy.

    Mixed precision keeps float32 master weights, so nothing is lost; float32 graphs are what
    CPUs serve fastest and what the TFLite converter quantises.
    """
    copy = float32_model(name, height, width)
    copy.set_weights(model.get_weights())
    return copy


def float32_weights_sha256(model: keras.Model) -> str:
    """A checksum of every weight's values as float32, in order, to compare replicas without files."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _tflite(saved_model: Path, representative: list[np.ndarray] | None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if representative is None:
        converter.target_spec.supported_types = [tf.float16]
    else:
        # Full-integer kernels inside, float32 at the edges so callers feed the same images as to Keras.
        converter.representative_dataset = lambda: ([image[np.newaxis]] for image in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def export_model(
    model: keras.Model, folder: Path, representative: Iterable[np.ndarray], tflite: bool = True
) -> None:
    """Write model.keras, saved_model/ and tflite/model_{float16,int8}.tflite into `folder`."""
    model.save(folder / "model.keras")
    model.export(str(folder / "saved_model"), verbose=False)
    if tflite:
        (folder / "tflite").mkdir()
        samples = [np.asarray(image, dtype=np.float32) for image in representative]
        (folder / "tflite" / "model_float16.tflite").write_bytes(_tflite(folder / "saved_model", None))
        (folder / "tflite" / "model_int8.tflite").write_bytes(_tflite(folder / "saved_model", samples))


def write_model_folder(
    model: keras.Model,
    out: Path,
    representative: list[np.ndarray],
    *,
    history: dict,
    info: dict,
    tflite: bool = True,
) -> None:
    """Write the model folder: exports, history.json, curves.png and train_info.json.

    Everything is written to `out/.export-staging` first and then renamed into place, train_info.json
    last: `out` holds a whole export or none, and its train_info.json vouches for a complete folder.
    A kill at any point leaves either the old folder or the staging folder, which the next export
    replaces.
    """
    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    export_model(model, staging, representative, tflite=tflite)
    (staging / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
    plot_curves(history, staging / "curves.png")
    (staging / TRAIN_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    # An earlier train_info.json would vouch for a folder that is now half old, half new.
    (out / TRAIN_INFO).unlink(missing_ok=True)
    for name in MODEL_FILES:
        source, target = staging / name, out / name
        if target.is_dir():
            shutil.rmtree(target)
        if source.exists():
            source.replace(target)
        else:
            target.unlink(missing_ok=True)
    staging.rmdir()
    log.info("exported %s", ", ".join(name for name in MODEL_FILES if (out / name).exists()))
