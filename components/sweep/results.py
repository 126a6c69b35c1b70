"""A sweep's results read back from MLflow alone: the parent run's definition and every child run.

Everything the report shows comes from here, so a report can be rebuilt long after the pipeline's
local files are gone: params and metrics that the train step logs, the evaluate step's `eval_*`
metrics (with `--corruptions`, its robustness figures too) and its per-frame confusion matrices
(`evaluation/frame_confusions.npz`; None for runs evaluated before it existed), and the parent
run's sweep params.
"""

import dataclasses
import itertools
import math

import mlflow
import numpy as np
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from cityseg.components import tracking
from cityseg.components.evaluate import frame_matrices
from cityseg.components.evaluate.core import MLFLOW_ARTIFACT_DIR
from cityseg.components.labels import CATEGORY_NAMES, VOID
from cityseg.components.sweep.config import Budget, SweepConfig
from cityseg.components.sweep.core import PARENT_TAG, setting_of

# The categories that mean_iou / mean_dice average (void is ignored, Cityscapes convention).
EVALUATED_CATEGORIES: tuple[str, ...] = tuple(name for c, name in enumerate(CATEGORY_NAMES) if c != VOID)
ROBUSTNESS_PREFIX = "eval_corrupt_"
FRAME_CONFUSIONS_ARTIFACT = f"{MLFLOW_ARTIFACT_DIR}/{frame_matrices.FRAME_CONFUSIONS}"


@dataclasses.dataclass(frozen=True)
class ConfigResult:
    """One child run (a configuration and a seed), as the report shows it; None where it lacks a score."""

    run_id: str
    run_name: str
    model: str
    loss: str
    augment: str
    seed: int
    num_params: int | None
    mean_dice: float | None
    mean_iou: float | None
    # The selection split's mean Dice of the weights the run kept: what the sweep chooses on. The
    # other scores are the evaluate step's, on val, which no choice has read.
    select_mean_dice: float | None
    iou: dict[str, float | None]
    training_time_s: float | None
    train_images_per_s: float | None
    latency_ms_per_image: float | None
    tflite_mb: float | None
    epochs: int | None
    # `corrupt_<name>_<severity>_mean_iou`, `corrupt_<name>_mean_iou`, `corrupt_mean_iou`,
    # `relative_robustness`, `clean_mean_iou` (cityseg.components.evaluate.corruptions); empty without.
    robustness: dict[str, float] = dataclasses.field(default_factory=dict)
    # Every param the train step logged: the report shows which all runs share and which vary.
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    # `clean` and `<corruption>_<severity>` -> int64 (frames, 8, 8) in split order
    # (cityseg.components.evaluate.frame_matrices); None when the evaluation did not log them.
    frame_confusions: dict[str, np.ndarray] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    @property
    def recipe(self) -> tuple[str, str, str]:
        """(model, loss, augmentation setting): what the seeds of one configuration share."""
        return self.model, self.loss, self.augment

    @property
    def label(self) -> str:
        """Short name of the configuration, e.g. `unet_mini/ce_dice/flip`."""
        return "/".join(self.recipe)


def _number(value: float | str | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _tflite_mb(client: MlflowClient, run: Run) -> float | None:
    # The train step logs its TFLite exports under tflite/; the listing carries their sizes.
    files = {info.path: info.file_size for info in client.list_artifacts(run.info.run_id, "tflite")}
    size = files.get("tflite/model_float16.tflite")
    return None if size is None else size / 2**20


def _frame_confusions(run_id: str) -> dict[str, np.ndarray] | None:
    data = tracking.read_artifact(run_id, FRAME_CONFUSIONS_ARTIFACT)
    return (
        None if data is None else frame_matrices.from_npz(data, f"run {run_id} {FRAME_CONFUSIONS_ARTIFACT}")
    )


def config_result(client: MlflowClient, run: Run, with_frames: bool = True) -> ConfigResult:
    """Read one child run's params, metrics and (`with_frames`) per-frame confusions into a `ConfigResult`.

    Raises:
        ValueError: the run's frame_confusions.npz is not one (the message names the run).
    """
    params, metrics = run.data.params, run.data.metrics
    num_params = metrics.get("num_params")
    epochs = client.get_metric_history(run.info.run_id, "select_mean_dice")
    return ConfigResult(
        run_id=run.info.run_id,
        run_name=run.info.run_name or run.info.run_id,
        model=params.get("model", "?"),
        loss=params.get("loss", "?"),
        augment=setting_of(params.get("augment", "")),
        seed=int(params.get("seed", 0)),
        num_params=None if num_params is None else int(float(num_params)),
        mean_dice=_number(metrics.get("eval_mean_dice")),
        mean_iou=_number(metrics.get("eval_mean_iou")),
        select_mean_dice=_number(metrics.get("kept_select_mean_dice")),
        iou={name: _number(metrics.get(f"eval_iou_{name}")) for name in EVALUATED_CATEGORIES},
        training_time_s=_number(metrics.get("training_time_s")),
        train_images_per_s=_number(metrics.get("train_images_per_s")),
        latency_ms_per_image=_number(metrics.get("eval_latency_ms_per_image")),
        tflite_mb=_tflite_mb(client, run),
        epochs=len(epochs) or None,
        robustness={
            key.removeprefix("eval_"): value
            for key, value in metrics.items()
            if key.startswith(ROBUSTNESS_PREFIX) or key in ("eval_relative_robustness", "eval_clean_mean_iou")
        },
        params=dict(params),
        frame_confusions=_frame_confusions(run.info.run_id) if with_frames else None,
    )


def parent_run(parent_run_id: str) -> Run:
    """The sweep's parent run.

    Raises:
        ValueError: no run with that id.
    """
    try:
        return MlflowClient().get_run(parent_run_id)
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"parent run {parent_run_id!r} not found in {mlflow.get_tracking_uri()}") from err


def sweep_of(parent: Run) -> SweepConfig:
    """The SweepConfig that the parent run's params record (see `core.sweep_params`).

    Raises:
        ValueError: the parent run was not opened by a sweep of this version.
    """
    params = parent.data.params
    try:
        model, loss, augment = params["sweep_reference"].split("/")
        return SweepConfig(
            models=tuple(params["sweep_models"].split(",")),
            losses=tuple(params["sweep_losses"].split(",")),
            augment=tuple(params["sweep_augment"].split(",")),
            reference_model=model,
            reference_loss=loss,
            reference_augment=augment,
            seeds=tuple(int(seed) for seed in params["sweep_seeds"].split(",")),
            crossed=params["sweep_crossed"] == "True",
            budget=Budget(int(params["budget_max_epochs"]), int(params["budget_patience"])),
        )
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"parent run {parent.info.run_id} does not record a sweep (params sweep_* and budget_*): {err}"
        ) from err


def _one_shared_seed(runs: list[Run]) -> bool:
    """Whether two configurations share exactly one seed: only such a pair bootstraps over frames."""
    seeds: dict[tuple, set] = {}
    for run in runs:
        params = run.data.params
        seeds.setdefault((params.get("model"), params.get("loss"), params.get("augment")), set()).add(
            params.get("seed")
        )
    return any(len(a & b) == 1 for a, b in itertools.combinations(seeds.values(), 2))


def collect_results(parent_run_id: str) -> list[ConfigResult]:
    """Every child run of the parent, smallest model first, then loss, augmentation and seed.

    The per-frame confusions are read only when two configurations share exactly one seed (the
    only comparisons that use them), so a sweep of several seeds downloads none.

    Raises:
        ValueError: the parent run does not exist or has no child runs.
    """
    client = MlflowClient()
    parent = parent_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )
    if not runs:
        raise ValueError(f"parent run {parent_run_id} has no child runs (tag {PARENT_TAG})")
    with_frames = _one_shared_seed(runs)
    results = [config_result(client, run, with_frames) for run in runs]
    return sorted(results, key=lambda r: (r.num_params or 0, r.model, r.loss, r.augment, r.seed))
