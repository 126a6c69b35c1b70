"""Builders for the evaluation and push tests: shards from arrays, and models whose predictions we choose.

`decoder_model` reads the predicted category straight from one colour channel of the image
(value round(7 * x)), so a test decides pixel by pixel what a model predicts by writing that channel.
"""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from cityseg.components import tfrecord
from cityseg.components.labels import CATEGORY_NAMES, NUM_CLASSES, label_table_version


def encode_categories(categories: np.ndarray) -> np.ndarray:
    """Category ids 0..7 -> uint8 channel values that `decoder_model` decodes back exactly."""
    return np.round(np.asarray(categories, np.float64) * 255 / 7).astype(np.uint8)


def corrupt(mask: np.ndarray, share: float, seed: int) -> np.ndarray:
    """`mask` with about `share` of its pixels set to another, random category."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(mask.shape) < share
    shifted = (mask.astype(np.int64) + rng.integers(1, NUM_CLASSES, mask.shape)) % NUM_CLASSES
    return np.where(wrong, shifted, mask).astype(np.uint8)


def write_shards(out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], source: str = "tests") -> Path:
    """One `{split}-00000-of-00001.tfrecord` per split of (RGB images, masks) arrays, and a manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    height, width = next(iter(splits.values()))[1].shape[1:3]
    digest = hashlib.sha256()
    manifest_splits = {}
    for split, (images, masks) in splits.items():
        records = []
        for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
            image_png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
            mask_png = cv2.imencode(".png", mask)[1].tobytes()
            records.append(tfrecord.encode_example(image_png, mask_png, f"{split}_{i:06d}", height, width))
        tfrecord.write_records(out / f"{split}-00000-of-00001.tfrecord", records)
        for record in records:
            digest.update(record)
        manifest_splits[split] = {
            "examples": len(records),
            "shards": [len(records)],
            "category_pixels": np.bincount(masks.ravel(), minlength=NUM_CLASSES).tolist(),
        }
    manifest = {
        "height": int(height),
        "width": int(width),
        "num_classes": NUM_CLASSES,
        "categories": list(CATEGORY_NAMES),
        "splits": manifest_splits,
        "source": source,
        "label_table_version": label_table_version(),
        "content_hash": digest.hexdigest(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def decoder_model(
    height: int | None = None, width: int | None = None, channel: int = 0, classes: int = NUM_CLASSES
):
    """A 1x1 convolution whose argmax is round(7 * image[..., channel]): logits_c = 2cv - c^2 with v = 7x.

    That is -(v - c)^2 up to a term shared by every c, so the nearest category wins.
    """
    import keras

    inputs = keras.Input((height, width, 3))
    layer = keras.layers.Conv2D(classes, 1, name="decoder")
    outputs = layer(inputs)
    kernel = np.zeros((1, 1, 3, classes), np.float32)
    c = np.arange(classes, dtype=np.float32)
    kernel[0, 0, channel] = 14.0 * c
    layer.set_weights([kernel, -(c**2)])
    return keras.Model(inputs, outputs, name=f"decoder_ch{channel}")


def model_folder(model, folder: Path, *, run_id: str | None = None, saved_model: bool = False) -> Path:
    """A model folder as `cityseg train` writes it: model.keras, train_info.json, optionally saved_model/."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    if saved_model:
        model.export(str(folder / "saved_model"), verbose=False)
    height, width = model.input_shape[1:3]
    info = {"model": model.name, "height": height, "width": width, "mlflow_run_id": run_id}
    (folder / "train_info.json").write_text(json.dumps(info))
    return folder


def logged_model_folder(model, folder: Path, *, experiment: str = "cityseg-tests", saved_model: bool = False):
    """Log `model` to a new MLflow run the way `cityseg train` does and write its model folder.

    Returns:
        (model folder, run id).
    """
    import mlflow

    mlflow.set_experiment(experiment)
    sample = np.zeros((1, *(d or 16 for d in model.input_shape[1:3]), 3), np.float32)
    signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
    with mlflow.start_run() as run:
        # Pinned requirements skip MLflow's requirement inference, which takes seconds per model.
        mlflow.keras.log_model(model, name="model", signature=signature, pip_requirements=["tensorflow-cpu"])
    return model_folder(model, folder, run_id=run.info.run_id, saved_model=saved_model), run.info.run_id


def blocks(
    rng: np.random.Generator, count: int, height: int, width: int, values, *, block: int = 2
) -> np.ndarray:
    """`count` masks of `block`x`block` squares drawn from `values` (uint8 NxHxW)."""
    cells = rng.choice(np.asarray(values, np.uint8), size=(count, height // block, width // block))
    return np.kron(cells, np.ones((1, block, block), np.uint8))


def graded_split(count: int = 7, height: int = 16, width: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Masks and images whose channels encode predictions of three qualities.

    Channel 0 holds the true categories, channel 1 the truth with 20% of pixels wrong, channel 2 with
    50% wrong, so `decoder_model(channel=k)` is a perfect, a good and a poor model on these images.
    """
    rng = np.random.default_rng(seed)
    masks = blocks(rng, count, height, width, range(NUM_CLASSES))
    predictions = [masks, corrupt(masks, 0.2, seed + 1), corrupt(masks, 0.5, seed + 2)]
    images = np.stack([encode_categories(p) for p in predictions], axis=-1)
    return {"images": images, "masks": masks, "good": predictions[1], "poor": predictions[2]}
