"""Robustness under common corruptions: ImageNet-C's noise, blur, weather and digital families.

The anchors are Hendrycks & Dietterich (ImageNet-C) and Kamann & Rother (Cityscapes-C): a model is
scored on the validation split again with each corruption applied at increasing severity. Every
corruption is an albumentations transform with its parameter pinned per severity, seeded, so the
same split gives the same corrupted pixels on every run. Severities 1..3 take ImageNet-C's levels
1, 3 and 5 where the two libraries share a parameter.
"""

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable

import numpy as np

from cityseg.components import inference, metrics
from cityseg.components.evaluate import frame_matrices
from cityseg.components.labels import NUM_CLASSES

log = logging.getLogger(__name__)

SEVERITIES = (1, 2, 3)


@dataclasses.dataclass(frozen=True)
class Corruption:
    """One corruption: what it stands for and its albumentations parameter at severities 1, 2, 3."""

    name: str
    stands_for: str
    levels: tuple[float, float, float]
    unit: str


CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption("gaussian_noise", "sensor noise", (0.08, 0.18, 0.38), "noise std / 255"),
        Corruption("motion_blur", "ego-motion blur", (0.03, 0.06, 0.12), "horizontal kernel / image width"),
        Corruption("darkness", "night", (0.5, 0.3, 0.15), "brightness factor"),
        Corruption("fog", "contrast loss (fog)", (0.5, 0.3, 0.15), "contrast kept"),
        Corruption("jpeg", "JPEG compression", (25, 15, 7), "JPEG quality"),
    )
}


def _check(name: str, severity: int) -> Corruption:
    if name not in CORRUPTIONS:
        raise ValueError(f"corruption: unknown {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"corruption {name}: severity must be one of {SEVERITIES}, got {severity}")
    return CORRUPTIONS[name]


def _albumentations():
    # Its import asks PyPI for a newer version unless told not to: no network call from a pipeline step.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


def blur_length(width: int, fraction: float) -> int:
    """The odd motion-blur kernel length for an image `width` pixels wide, at least 3."""
    return max(3, 2 * round(width * fraction / 2) + 1)


def transform(name: str, severity: int, width: int):
    """The albumentations transform of corruption `name` at `severity` for images `width` pixels wide.

    Raises:
        ValueError: an unknown corruption or severity.
    """
    A = _albumentations()

    level = _check(name, severity).levels[severity - 1]
    if name == "gaussian_noise":
        return A.GaussNoise(std_range=(level, level), mean_range=(0.0, 0.0), per_channel=True, p=1.0)
    if name == "motion_blur":
        length = blur_length(width, level)
        return A.MotionBlur(blur_limit=(length, length), angle_range=(0, 0), allow_shifted=False, p=1.0)
    if name == "darkness":
        return A.ColorJitter(brightness=(level, level), contrast=(1, 1), saturation=(1, 1), hue=(0, 0), p=1.0)
    if name == "fog":
        # alpha * x + (1 - alpha) * mean(x): ImageNet-C's contrast, the image flattened toward its mean.
        return A.RandomBrightnessContrast(
            brightness_limit=(1 - level, 1 - level),
            contrast_limit=(level - 1, level - 1),
            brightness_by_max=False,
            p=1.0,
        )
    return A.ImageCompression(compression_type="jpeg", quality_range=(int(level), int(level)), p=1.0)


def corrupter(name: str, severity: int, width: int, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A function: uint8 images (N, H, W, 3) -> the same images corrupted, reproducible from `seed`."""
    A = _albumentations()

    pipeline = A.Compose([transform(name, severity, width)], seed=seed)

    def corrupt(images: np.ndarray) -> np.ndarray:
        return np.stack([pipeline(image=image)["image"] for image in images]) if len(images) else images

    return corrupt


def metric_key(name: str, severity: int | None = None) -> str:
    """`corrupt_<name>_<severity>_mean_iou`, or `corrupt_<name>_mean_iou` (mean over severities)."""
    return f"corrupt_{name}_mean_iou" if severity is None else f"corrupt_{name}_{severity}_mean_iou"


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def frame_confusions(
    predict: Callable[[np.ndarray], np.ndarray],
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    names: Iterable[str] = tuple(CORRUPTIONS),
    seed: int = 0,
) -> dict[tuple[str, int] | None, np.ndarray]:
    """Per-frame confusion matrices of `predict` on clean (key None) and corrupted copies of every batch.

    Args: as `robustness`.
    Returns:
        None and each (corruption, severity) -> int64 (frames, 8, 8) in batch order.
    """
    names = tuple(names)
    for name in names:
        _check(name, SEVERITIES[0])
    settings = [(name, severity) for name in names for severity in SEVERITIES]
    per_frame: dict = {setting: [] for setting in [None, *settings]}
    corrupters: dict = {}
    for batch_images, batch_masks in batches:
        images, masks = np.asarray(batch_images), np.asarray(batch_masks)
        per_frame[None].append(metrics.frame_confusions(masks, np.asarray(predict(images))))
        pixels = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
        for index, setting in enumerate(settings):
            if setting not in corrupters:
                corrupters[setting] = corrupter(*setting, width=pixels.shape[2], seed=seed + index)
            corrupted = corrupters[setting](pixels).astype(np.float32) / 255.0
            per_frame[setting].append(metrics.frame_confusions(masks, np.asarray(predict(corrupted))))
    empty = np.zeros((0, NUM_CLASSES, NUM_CLASSES), np.int64)
    return {setting: np.concatenate(stack) if stack else empty for setting, stack in per_frame.items()}


def robustness_scores(confusion: dict[tuple[str, int] | None, np.ndarray]) -> dict[str, float | None]:
    """The robustness figures from one split-wide confusion matrix per setting (None = clean).

    Returns:
        See `robustness`: the mean over severities per corruption, then the mean over corruptions.
    """
    names = tuple(dict.fromkeys(setting[0] for setting in confusion if setting is not None))
    scores = {"clean_mean_iou": metrics.scores(confusion[None])["mean_iou"]}
    for name in names:
        per_severity = [metrics.scores(confusion[(name, s)])["mean_iou"] for s in SEVERITIES]
        scores.update({metric_key(name, s): value for s, value in zip(SEVERITIES, per_severity, strict=True)})
        scores[metric_key(name)] = _mean(per_severity)
    scores["corrupt_mean_iou"] = _mean([scores[metric_key(name)] for name in names])
    clean, corrupted = scores["clean_mean_iou"], scores["corrupt_mean_iou"]
    scores["relative_robustness"] = corrupted / clean if clean and corrupted is not None else None
    return scores


def robustness(
    predict: Callable[[np.ndarray], np.ndarray],
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    names: Iterable[str] = tuple(CORRUPTIONS),
    seed: int = 0,
) -> dict[str, float | None]:
    """Score `predict` on clean and corrupted copies of every batch, one confusion matrix each.

    Args:
        predict: float32 images (N, H, W, 3) in [0, 1] -> category ids (N, H, W).
        batches: (images float32 in [0, 1], true category ids) pairs, e.g. a validation split.
        names: the corruptions to apply, each at every severity.
        seed: seed of the random corruptions (noise).
    Returns:
        `clean_mean_iou`; `metric_key(name, severity)` per corruption and severity;
        `metric_key(name)` the mean over severities; `corrupt_mean_iou` the mean over corruptions;
        `relative_robustness` = corrupt_mean_iou / clean_mean_iou.
    """
    per_frame = frame_confusions(predict, batches, names, seed)
    return robustness_scores({setting: stack.sum(axis=0) for setting, stack in per_frame.items()})


def score_split(
    loaded, data: str, split: str = "val", batch_size: int = 8, seed: int = 0
) -> tuple[dict, dict[str, np.ndarray]]:
    """`robustness` of a loaded model (see `cityseg.components.modelstore`) on one split of the shards.

    Returns:
        The robustness figures, and the corrupted per-frame confusions keyed `<corruption>_<severity>`
        (`cityseg.components.evaluate.frame_matrices`).

    Raises:
        ValueError: the shards have no such split, or it is empty.
    """
    from cityseg.components.dataset import load_manifest, make_dataset

    manifest = load_manifest(data)
    if not manifest.get("splits", {}).get(split, {}).get("examples"):
        raise ValueError(f"{data}: no examples in split {split!r} to corrupt")
    predict = inference.predictor(loaded.model, (int(manifest["height"]), int(manifest["width"])))
    batches = ((images.numpy(), masks.numpy()) for images, masks in make_dataset(data, split, batch_size))
    log.info("scoring %s under %d corruptions x %d severities", loaded.ref, len(CORRUPTIONS), len(SEVERITIES))
    per_frame = frame_confusions(lambda images: predict(images).numpy(), batches, seed=seed)
    scores = robustness_scores({setting: stack.sum(axis=0) for setting, stack in per_frame.items()})
    corrupted = {
        frame_matrices.setting_key(*setting): stack for setting, stack in per_frame.items() if setting
    }
    return scores, corrupted


def format_robustness(scores: dict) -> str:
    """The robustness figures as an aligned table for the terminal: mean_iou per corruption and severity."""

    def cell(value) -> str:
        return "   n/a" if value is None else f"{value:6.4f}"

    header = f"{'corruption':<16}" + "".join(f" {'sev ' + str(s):>6}" for s in SEVERITIES) + f" {'mean':>6}"
    lines = [header, "-" * len(header)]
    for name in CORRUPTIONS:
        values = [scores.get(metric_key(name, s)) for s in SEVERITIES] + [scores.get(metric_key(name))]
        lines.append(f"{name:<16}" + "".join(f" {cell(value)}" for value in values))
    lines.append(
        f"mean_iou clean {cell(scores.get('clean_mean_iou'))}, under corruptions "
        f"{cell(scores.get('corrupt_mean_iou'))}, relative {cell(scores.get('relative_robustness'))}"
    )
    return "\n".join(lines)
