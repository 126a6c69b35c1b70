"""The embedded exports, scored: the float16 and int8 TFLite files run by LiteRT on one split.

`cityseg train` writes `tflite/model_float16.tflite` and `tflite/model_int8.tflite` beside the Keras
model. The embedded team ships the int8 file, so `evaluate` scores both the way it scores the Keras
model (one confusion matrix over the split, the same resizing to and from the model's input size)
and records what quantization costs: `tflite_<variant>_mean_iou`, `_mean_dice`, their change from
the float32 Keras model (`_mean_iou_delta`, `_mean_dice_delta`, negative when the export loses),
milliseconds per image on one CPU thread, one image per call as on a device, and the file size.
"""

import logging
import time
from pathlib import Path

import numpy as np

from cityseg.components import inference, metrics
from cityseg.components.labels import NUM_CLASSES

log = logging.getLogger(__name__)

TFLITE_DIR = "tflite"
VARIANTS = ("float16", "int8")
# The figures of one export in metrics.json, each as `tflite_<variant>_<figure>`.
FIGURES = ("mean_iou", "mean_dice", "mean_iou_delta", "mean_dice_delta", "ms_per_image", "size_bytes")


def tflite_path(model_dir: Path, variant: str) -> Path:
    """Where `cityseg train` writes the `variant` export of the model folder `model_dir`."""
    return Path(model_dir) / TFLITE_DIR / f"model_{variant}.tflite"


def interpreter(path: Path, threads: int = 1):
    """A LiteRT interpreter for the TFLite file `path`, tensors allocated.

    Raises:
        ValueError: the file is not a TFLite model LiteRT can run.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        runner = Interpreter(model_path=str(path), num_threads=threads)
        runner.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: LiteRT cannot load this TFLite model: {err}") from err
    return runner


class TfliteModel:
    """One TFLite export: float images (H, W, 3) in [0, 1] -> logits (H, W, classes), one image per call."""

    def __init__(self, path: Path, threads: int = 1):
        self.path = Path(path)
        self._runner = interpreter(self.path, threads)
        self._input = self._runner.get_input_details()[0]
        self._output = self._runner.get_output_details()[0]
        shape = self._input["shape"]
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"{path}: input is {shape.tolist()}; cityseg exports take (1, H, W, 3) images")
        self.input_size = (int(shape[1]), int(shape[2]))

    def logits(self, image: np.ndarray) -> np.ndarray:
        """The logits of one image at the export's input size."""
        dtype = self._input["dtype"]
        scale, zero = self._input["quantization"]
        if np.issubdtype(dtype, np.integer) and scale:
            # Exports quantized at the edges take integers: quantize as the converter calibrated.
            info = np.iinfo(dtype)
            image = np.clip(np.round(image / scale + zero), info.min, info.max)
        self._runner.set_tensor(self._input["index"], image[np.newaxis].astype(dtype))
        self._runner.invoke()
        return self._runner.get_tensor(self._output["index"])[0]


def _classes(model: TfliteModel, images: np.ndarray, label_size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Category ids at label size for a batch, and the seconds spent inside the interpreter."""
    import tensorflow as tf

    model_size = model.input_size
    resize = model_size != tuple(label_size)
    if resize:
        images = inference.resize_to_model(images, model_size).numpy()
    seconds, predicted = 0.0, []
    for image in np.asarray(images, np.float32):
        start = time.perf_counter()
        logits = model.logits(image)
        seconds += time.perf_counter() - start
        predicted.append(np.argmax(logits, axis=-1).astype(np.uint8))
    classes = np.stack(predicted)
    if resize:
        classes = tf.image.resize(classes[..., None], label_size, method="nearest")[..., 0].numpy()
    return classes.astype(np.uint8), seconds


def score_export(path: Path, data: str, split: str, batch_size: int = 8) -> dict:
    """mean_iou, mean_dice, ms per image (one thread) and the file size of one TFLite export on `split`."""
    from cityseg.components.dataset import load_manifest, make_dataset

    manifest = load_manifest(data)
    label_size = (int(manifest["height"]), int(manifest["width"]))
    model = TfliteModel(path, threads=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    examples, seconds = 0, 0.0
    for images, masks in make_dataset(data, split, batch_size):
        predicted, spent = _classes(model, images.numpy(), label_size)
        confusion += metrics.confusion_matrix(masks.numpy(), predicted)
        examples += len(predicted)
        seconds += spent
    scored = metrics.scores(confusion)
    return {
        "mean_iou": scored["mean_iou"],
        "mean_dice": scored["mean_dice"],
        "ms_per_image": 1000.0 * seconds / max(examples, 1),
        "size_bytes": path.stat().st_size,
    }


def _delta(export: float | None, reference: float | None) -> float | None:
    return None if export is None or reference is None else export - reference


def score_exports(model_dir: Path, data: str, split: str, reference: dict, batch_size: int = 8) -> dict:
    """`tflite_<variant>_<figure>` for every export present in `model_dir`; {} when it has none.

    Args:
        reference: the Keras model's scores on the same split (mean_iou, mean_dice).
    """
    found = {}
    for variant in VARIANTS:
        path = tflite_path(model_dir, variant)
        if not path.is_file():
            continue
        log.info("scoring the %s export %s with LiteRT on %s/%s", variant, path, data, split)
        figures = score_export(path, data, split, batch_size)
        figures["mean_iou_delta"] = _delta(figures["mean_iou"], reference.get("mean_iou"))
        figures["mean_dice_delta"] = _delta(figures["mean_dice"], reference.get("mean_dice"))
        found.update({f"tflite_{variant}_{name}": figures[name] for name in FIGURES})
    return found


def int8_iou_drop(scores: dict) -> float | None:
    """How much mean_iou the int8 export loses against the Keras model; None when it was not scored."""
    delta = scores.get("tflite_int8_mean_iou_delta")
    return None if delta is None else -float(delta)
