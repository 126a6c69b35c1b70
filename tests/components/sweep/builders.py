"""Hand-made sweeps: child runs logged to MLflow the way train and evaluate log them, or built in memory."""

import zlib
from pathlib import Path

import mlflow
import numpy as np

from cityseg.components.evaluate import frame_matrices
from cityseg.components.evaluate.corruptions import CORRUPTIONS, SEVERITIES, metric_key
from cityseg.components.labels import NUM_CLASSES
from cityseg.components.sweep.config import SweepConfig
from cityseg.components.sweep.core import augmentation_list, start_parent_run
from cityseg.components.sweep.results import EVALUATED_CATEGORIES, ConfigResult

SWEEP = SweepConfig(
    models=("unet_mini", "unet"),
    losses=("ce", "ce_dice"),
    augment=("none", "flip", "noise"),
    seeds=(0, 1),
)
# (model, loss, augment) -> per seed (mean_dice, corrupt_mean_iou); training time follows the model.
SCORES = {
    ("unet_mini", "ce_dice", "flip"): [(0.70, 0.33), (0.72, 0.34)],
    ("unet", "ce_dice", "flip"): [(0.80, 0.40), (0.83, 0.41)],
    ("unet_mini", "ce", "flip"): [(0.69, 0.32), (0.74, 0.35)],
    ("unet_mini", "ce_dice", "none"): [(0.60, 0.30), (0.61, 0.31)],
    ("unet_mini", "ce_dice", "noise"): [(0.59, 0.45), (0.66, 0.47)],
}
SECONDS = {"unet_mini": 20.0, "unet": 60.0}
PARAMS = {"unet_mini": 482_152, "unet": 1_945_640}


def category_iou(dice: float, index: int) -> float:
    return round(dice - 0.05 * index, 6)


def robustness_metrics(corrupted: float, clean: float) -> dict[str, float]:
    """Per corruption and severity figures whose means come out at exactly `corrupted`."""
    metrics = {}
    for offset, name in zip((-0.02, -0.01, 0.0, 0.01, 0.02), CORRUPTIONS, strict=True):
        for severity, step in zip(SEVERITIES, (0.05, 0.0, -0.05), strict=True):
            metrics[f"eval_{metric_key(name, severity)}"] = corrupted + offset + step
        metrics[f"eval_{metric_key(name)}"] = corrupted + offset
    metrics.update(
        eval_corrupt_mean_iou=corrupted, eval_clean_mean_iou=clean, eval_relative_robustness=corrupted / clean
    )
    return metrics


FRAMES, PIXELS = 20, 100


def frame_stack(correct) -> np.ndarray:
    """One frame per entry: each of the 7 categories has PIXELS pixels, `correct` of them right.

    The wrong ones go to the next category, so a frame's Dice of every category is correct / PIXELS
    and its IoU correct / (2 PIXELS - correct); summed over frames, the same with the sums.
    """
    stack = np.zeros((len(correct), NUM_CLASSES, NUM_CLASSES), np.int64)
    for index, right in enumerate(correct):
        for category in range(1, NUM_CLASSES):
            stack[index, category, category] = right
            stack[index, category, category % (NUM_CLASSES - 1) + 1] = PIXELS - right
    return stack


def spread(base: int, key: str) -> list[int]:
    """FRAMES counts around `base` that sum to exactly FRAMES * base, in a pattern drawn from `key`."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    steps = rng.integers(0, 6, FRAMES // 2)
    return [base + sign * int(step) for step in steps for sign in (1, -1)]


def frame_confusions(label: str, dice: float, corrupted: float) -> dict[str, np.ndarray]:
    """Per-frame confusions: clean sums to mean_dice `dice`, each corrupted one to mean_iou ~ `corrupted`."""
    stacks = {frame_matrices.CLEAN: frame_stack(spread(round(PIXELS * dice), label))}
    right = round(2 * PIXELS * corrupted / (1 + corrupted))  # IoU right / (2 PIXELS - right) = corrupted
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            key = frame_matrices.setting_key(name, severity)
            stacks[key] = frame_stack(spread(right, f"{label}/{key}"))
    return stacks


def log_sweep(
    experiment_id: str, tmp_path: Path, scores=SCORES, sweep=SWEEP, with_frames: bool = False
) -> tuple[str, dict]:
    """A parent run and one child run per configuration and seed; returns the parent id and run ids.

    With `with_frames`, each child also logs evaluation/frame_confusions.npz as the evaluate step does.
    """
    parent_id = start_parent_run(experiment_id, "sweep-fixture", sweep, {"height": 64, "width": 128}, {})
    run_ids = {}
    for (model, loss, augment), per_seed in scores.items():
        for seed, (dice, corrupted) in enumerate(per_seed):
            with mlflow.start_run(experiment_id=experiment_id, parent_run_id=parent_id) as run:
                mlflow.log_params(
                    {
                        "model": model,
                        "loss": loss,
                        "augment": augmentation_list(augment) or "none",
                        "seed": seed,
                        "class_weighting": "median",
                        "learning_rate": 0.003,
                        "epochs": sweep.budget.max_epochs,
                    }
                )
                for epoch in range(3 + seed):
                    mlflow.log_metric("select_mean_dice", dice - 0.1 / (epoch + 1), step=epoch)
                mlflow.log_metrics(
                    {
                        "num_params": PARAMS[model],
                        "training_time_s": SECONDS[model] + seed,
                        "train_images_per_s": 100.0,
                        "eval_mean_dice": dice,
                        # The fixture's selection split ranks the runs as val does.
                        "kept_select_mean_dice": dice,
                        "eval_mean_iou": dice - 0.1,
                        "eval_latency_ms_per_image": SECONDS[model] / 10,
                        **{
                            f"eval_iou_{n}": category_iou(dice, i) for i, n in enumerate(EVALUATED_CATEGORIES)
                        },
                        **robustness_metrics(corrupted, dice - 0.1),
                    }
                )
                if with_frames:
                    npz = tmp_path / run.info.run_id / frame_matrices.FRAME_CONFUSIONS
                    npz.parent.mkdir(parents=True)
                    label = f"{model}/{loss}/{augment}/{seed}"
                    npz.write_bytes(frame_matrices.to_npz(frame_confusions(label, dice, corrupted)))
                    mlflow.log_artifact(str(npz), artifact_path="evaluation")
            run_ids[(model, loss, augment, seed)] = run.info.run_id
    return parent_id, run_ids


def result(model: str, loss: str, augment: str, seed: int, dice: float | None, **fields) -> ConfigResult:
    """A ConfigResult in memory, for the pure analysis and conclusion tests."""
    values = {
        "run_id": f"{model}-{loss}-{augment}-s{seed}",
        "run_name": f"{model}-{loss}-{augment}-s{seed}",
        "model": model,
        "loss": loss,
        "augment": augment,
        "seed": seed,
        "num_params": PARAMS.get(model, 1000),
        "mean_dice": dice,
        "mean_iou": None if dice is None else dice - 0.1,
        "select_mean_dice": dice,
        "iou": {
            name: None if dice is None else category_iou(dice, i)
            for i, name in enumerate(EVALUATED_CATEGORIES)
        },
        "training_time_s": SECONDS.get(model, 10.0),
        "train_images_per_s": None,
        "latency_ms_per_image": None,
        "tflite_mb": None,
        "epochs": 3,
    }
    return ConfigResult(**{**values, **fields})


def results_of(scores=SCORES, with_frames: bool = False) -> list[ConfigResult]:
    """The SCORES as in-memory results, robustness figures (and per-frame confusions) included."""
    return [
        result(
            model,
            loss,
            augment,
            seed,
            dice,
            robustness={
                k.removeprefix("eval_"): v for k, v in robustness_metrics(corrupted, dice - 0.1).items()
            },
            frame_confusions=(
                frame_confusions(f"{model}/{loss}/{augment}/{seed}", dice, corrupted) if with_frames else None
            ),
        )
        for (model, loss, augment), per_seed in scores.items()
        for seed, (dice, corrupted) in enumerate(per_seed)
    ]
