"""Evaluation benchmarks: scoring vs the inference floor; our confusion matrix vs the official one; LiteRT."""

import copy
from pathlib import Path

import cv2
import numpy as np

from cityseg.components.labels import category_lut
from cityseg.components.metrics import confusion_matrix
from tests.benchmarks.common import Result, machine, timed
from tests.components.evaluate.builders import blocks, graded_split, model_folder, write_shards

EVAL_SIZE = (128, 256)
EVAL_IMAGES = 16
BATCH = 8
FULL_SIZE = (1024, 2048)
FULL_FRAMES = 4
LITERT_IMAGES = 8


def _inference_floor(model, images: np.ndarray) -> None:
    """The model alone on batches already in memory: what scoring a split cannot beat."""
    for start in range(0, len(images), BATCH):
        model(images[start : start + BATCH], training=False).numpy()


def bench_throughput(work: Path) -> Result:
    from cityseg.components.evaluate.core import score
    from cityseg.components.modelstore import load
    from cityseg.components.train.models import build_model

    split = graded_split(count=EVAL_IMAGES, height=EVAL_SIZE[0], width=EVAL_SIZE[1])
    shards = write_shards(work / "eval_shards", {"val": (split["images"], split["masks"])})
    loaded = load(model_folder(build_model("unet_mini", *EVAL_SIZE), work / "unet_mini"))
    images = split["images"].astype(np.float32) / 255
    _inference_floor(loaded.model, images)  # trace once, outside the timing
    floor_s, _ = timed(_inference_floor, loaded.model, images, repeat=3)
    ours_s, metrics = timed(score, loaded, str(shards), "val", BATCH, repeat=3)
    return Result(
        name=f"evaluate images/s, unet_mini at {EVAL_SIZE[0]}x{EVAL_SIZE[1]}, batch {BATCH}",
        value=EVAL_IMAGES / ours_s,
        unit="images/s",
        baseline_name="floor: the model alone on batches already in memory",
        baseline_value=EVAL_IMAGES / floor_s,
        goal="ratio >= 0.8 (reading shards, argmax and the confusion matrix add under 20%)",
        command="cityseg evaluate --data SHARDS --model MODEL --out DIR --batch-size 8",
        machine=machine(),
        detail=f"{EVAL_IMAGES} images, whole pass of evaluate.core.score incl. graph tracing, best of 3; "
        f"its inference-only figures: {metrics['images_per_s']:.1f} images/s, "
        f"{metrics['latency_ms_per_image']:.1f} ms/image",
    )


def _official_pairs(files: list[tuple[str, str]]) -> np.ndarray:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    args = copy.copy(official.args)
    args.evalInstLevelScore, args.quiet = False, True
    matrix = official.generateMatrix(args)
    for prediction, gt in files:
        official.evaluatePair(prediction, gt, matrix, {}, {}, args)
    return matrix


def _ours_pairs(files: list[tuple[str, str]]) -> np.ndarray:
    lut = category_lut()
    cm = np.zeros((8, 8), np.int64)
    for prediction, gt in files:
        true = lut[cv2.imread(gt, cv2.IMREAD_UNCHANGED)]
        predicted = lut[cv2.imread(prediction, cv2.IMREAD_UNCHANGED)]
        cm += confusion_matrix(true, predicted)
    return cm


def bench_confusion(work: Path) -> Result:
    rng = np.random.default_rng(0)
    evaluated = [0, 7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    truth = blocks(rng, FULL_FRAMES, *FULL_SIZE, evaluated, block=16)
    noisy = np.where(rng.random(truth.shape) < 0.3, rng.choice(evaluated, truth.shape), truth).astype(
        np.uint8
    )
    files = []
    for i, (gt, prediction) in enumerate(zip(truth, noisy, strict=True)):
        gt_path, prediction_path = work / f"frame{i}_gtFine_labelIds.png", work / f"frame{i}_pred.png"
        cv2.imwrite(str(gt_path), gt)
        cv2.imwrite(str(prediction_path), prediction)
        files.append((str(prediction_path), str(gt_path)))
    ours_s, _ = timed(_ours_pairs, files, repeat=3)
    official_s, _ = timed(_official_pairs, files, repeat=2)
    return Result(
        name=f"scoring frames/s at {FULL_SIZE[0]}x{FULL_SIZE[1]} (read PNGs + confusion matrix)",
        value=FULL_FRAMES / ours_s,
        unit="frames/s",
        baseline_name="cityscapesscripts evaluatePair (pure-Python path, as pip installs it)",
        baseline_value=FULL_FRAMES / official_s,
        goal="ratio > 1 (faster)",
        command="python -m tests.benchmarks --only evaluate",
        machine=machine(),
        detail=f"{FULL_FRAMES} label-id frame pairs; ours maps ids to categories and uses one bincount, "
        "theirs np.unique over encoded pairs into a 34x34 matrix",
    )


def _keras_per_image(model, images: np.ndarray) -> None:
    for image in images:
        model(image[np.newaxis], training=False).numpy()


def _litert_per_image(model, images: np.ndarray) -> None:
    for image in images:
        model.logits(image)


def bench_litert(work: Path) -> list[Result]:
    """int8 and float16 LiteRT ms/image (1 thread, 1 image per call) against the Keras model on the CPU."""
    from cityseg.components.evaluate.litert import TfliteModel, tflite_path
    from cityseg.components.modelstore import load
    from cityseg.components.train.export import export_model
    from cityseg.components.train.models import build_model

    split = graded_split(count=LITERT_IMAGES, height=EVAL_SIZE[0], width=EVAL_SIZE[1])
    images = split["images"].astype(np.float32) / 255
    folder = work / "unet_mini_tflite"
    if not tflite_path(folder, "int8").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        export_model(build_model("unet_mini", *EVAL_SIZE), folder, images[:4])
    keras_model = load(folder).model
    _keras_per_image(keras_model, images[:1])  # trace once, outside the timing
    keras_s, _ = timed(_keras_per_image, keras_model, images, repeat=3)
    keras_ms = 1000 * keras_s / LITERT_IMAGES
    results = []
    for variant in ("int8", "float16"):
        path = tflite_path(folder, variant)
        model = TfliteModel(path, threads=1)
        seconds, _ = timed(_litert_per_image, model, images, repeat=3)
        results.append(
            Result(
                name=f"LiteRT {variant} ms/image, unet_mini at {EVAL_SIZE[0]}x{EVAL_SIZE[1]}, 1 thread",
                value=1000 * seconds / LITERT_IMAGES,
                unit="ms/image",
                baseline_name="the Keras float32 model, 1 image per call, TensorFlow's default threads",
                baseline_value=keras_ms,
                goal="ratio < 1 is faster than Keras; the embedded target runs the LiteRT file",
                command="cityseg evaluate (scores tflite/model_{float16,int8}.tflite beside the model)",
                machine=machine(),
                detail=f"{LITERT_IMAGES} images, best of 3; file {path.stat().st_size / 1e3:.0f} kB",
            )
        )
    return results


def run(work_dir: Path) -> list[Result]:
    """The evaluation figures."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return [bench_throughput(work_dir), bench_confusion(work_dir), *bench_litert(work_dir)]
