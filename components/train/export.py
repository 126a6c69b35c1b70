"""Model exports: `.keras`, SavedModel, and TFLite float16 / int8 for the embedded target."""

import hashlib
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np

from cityseg.components.train.models import build_model

log = logging.getLogger(__name__)


def float32_copy(model: keras.Model, name: str, height: int, width: int) -> keras.Model:
    """The same weights in a float32 model, outside any distribution strategy.

    Mixed precision keeps float32 master weights, so nothing is lost; float32 graphs are what
    CPUs serve fastest and what the TFLite converter quantises.
    """
    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        copy = build_model(name, height, width)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


def weights_sha256(model: keras.Model) -> str:
    """A checksum of every weight in order, to compare replicas without files."""
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
    model: keras.Model, out: Path, representative: Iterable[np.ndarray], tflite: bool = True
) -> list[Path]:
    """Write model.keras, saved_model/ and tflite/model_{float16,int8}.tflite into `out`.

    Everything is written to a staging folder first and then moved into place, so `out` never
    holds a half-written export.

    Returns:
        The paths written.
    """
    staging = out / ".export-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save(staging / "model.keras")
    model.export(str(staging / "saved_model"), verbose=False)
    if tflite:
        (staging / "tflite").mkdir()
        samples = [np.asarray(image, dtype=np.float32) for image in representative]
        (staging / "tflite" / "model_float16.tflite").write_bytes(_tflite(staging / "saved_model", None))
        (staging / "tflite" / "model_int8.tflite").write_bytes(_tflite(staging / "saved_model", samples))
    written = []
    for item in sorted(staging.iterdir()):
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
        written.append(target)
    staging.rmdir()
    log.info("exported %s", ", ".join(p.name for p in written))
    return written
