"""The model-comparison sweep: expand model x loss x augmentation, track it as one MLflow parent run.

Each configuration trains and evaluates as an MLflow child run (tag `mlflow.parentRunId`) of one
parent run; everything the report shows is read back from those runs, so a report can be rebuilt
from MLflow alone long after the pipeline's local files are gone.
"""

import dataclasses
import itertools
import json
import logging
import math
import os
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from cityseg.components import tracking
from cityseg.components.labels import CATEGORY_NAMES, VOID

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "cityseg.sweep"
BEST_RUN_TAG = "cityseg.best_run_id"
# The categories that mean_iou / mean_dice average (void is ignored, Cityscapes convention).
EVALUATED_CATEGORIES: tuple[str, ...] = tuple(name for c, name in enumerate(CATEGORY_NAMES) if c != VOID)
AUGMENT_VALUES = {"on": True, "off": False}


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """The grid a sweep runs: every model x loss x augmentation switch."""

    models: tuple[str, ...] = ("unet_mini", "unet")
    losses: tuple[str, ...] = ("ce_dice",)
    augment: tuple[bool, ...] = (True, False)
    # What "augmentation on" trains with (the train step's names); "off" trains with none.
    augmentations: tuple[str, ...] = ("flip", "scale_crop")


@dataclasses.dataclass(frozen=True)
class ConfigResult:
    """One configuration's child run, as the report shows it. Scores are None when the run lacks them."""

    run_id: str
    run_name: str
    parent_run_id: str
    model: str
    loss: str
    augment: bool
    num_params: int | None
    mean_dice: float | None
    mean_iou: float | None
    iou: dict[str, float | None]
    training_time_s: float | None
    train_images_per_s: float | None
    latency_ms_per_image: float | None
    tflite_mb: float | None

    @property
    def label(self) -> str:
        """Short name of the configuration, e.g. `unet_mini/ce_dice/aug`."""
        return f"{self.model}/{self.loss}/{'aug' if self.augment else 'noaug'}"


def config_name(model: str, loss: str, augment: bool) -> str:
    """The run name of one configuration: `<model>-<loss>-aug` or `<model>-<loss>-noaug`."""
    return f"{model}-{loss}-{'aug' if augment else 'noaug'}"


def parse_augment(values: list[str] | tuple[str, ...]) -> tuple[bool, ...]:
    """`["on", "off"]` -> `(True, False)`.

    Raises:
        ValueError: a value is not `on` or `off`.
    """
    unknown = [value for value in values if value not in AUGMENT_VALUES]
    if unknown:
        raise ValueError(f"augment: {unknown} not understood; use on, off or on,off")
    return tuple(AUGMENT_VALUES[value] for value in values)


def _check_names(field: str, names: tuple[str, ...], known: list[str]) -> None:
    if not names:
        raise ValueError(f"{field}: the sweep needs at least one value")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{field}: {duplicates} given more than once")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"{field}: unknown {unknown}; choose from {sorted(known)}")


def expand_sweep(sweep: SweepConfig) -> list[dict]:
    """Every configuration of the grid, models outermost, as JSON-ready dicts for `dsl.ParallelFor`.

    Each dict has `name`, `model`, `loss`, `augment` (bool) and `augmentations` (the train step's
    comma-separated list, empty when off).

    Raises:
        ValueError: an empty axis, a repeated value, or an unknown model, loss or augmentation name.
    """
    # Imported here: the model and loss tables pull in TensorFlow, which `--help` should not pay for.
    from cityseg.components.train.core import AUGMENTATIONS
    from cityseg.components.train.losses import LOSSES
    from cityseg.components.train.models import MODELS

    _check_names("models", sweep.models, list(MODELS))
    _check_names("losses", sweep.losses, list(LOSSES))
    _check_names("augment", tuple("on" if value else "off" for value in sweep.augment), list(AUGMENT_VALUES))
    if True in sweep.augment:
        _check_names("augmentations", sweep.augmentations, list(AUGMENTATIONS))
    return [
        {
            "name": config_name(model, loss, augment),
            "model": model,
            "loss": loss,
            "augment": augment,
            "augmentations": ",".join(sweep.augmentations) if augment else "",
        }
        for model, loss, augment in itertools.product(sweep.models, sweep.losses, sweep.augment)
    ]


def start_parent_run(experiment_id: str, run_name: str, sweep: SweepConfig, params: dict, tags: dict) -> str:
    """Open the sweep's parent run (left RUNNING until `finish_parent_run`) and log the grid as params.

    Returns:
        The parent run id, which every child run names in its `mlflow.parentRunId` tag.
    """
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=run_name, tags={SWEEP_TAG: "true", **tags})
    grid = {
        "sweep_models": ",".join(sweep.models),
        "sweep_losses": ",".join(sweep.losses),
        "sweep_augment": ",".join("on" if value else "off" for value in sweep.augment),
        "sweep_augmentations": ",".join(sweep.augmentations),
        "sweep_configs": len(sweep.models) * len(sweep.losses) * len(sweep.augment),
    }
    for key, value in {**grid, **params}.items():
        client.log_param(run.info.run_id, key, value)
    log.info("sweep parent run %s in experiment %s", run.info.run_id, experiment_id)
    return run.info.run_id


def start_sweep(
    sweep: SweepConfig,
    *,
    experiment: str,
    params: dict,
    tracking_uri: str | None = None,
    work_dir: str | os.PathLike = tracking.DEFAULT_WORK_DIR,
    kfp_run_id: str | None = None,
) -> list[dict]:
    """Expand the grid and open its parent run in `experiment`.

    Returns:
        The configurations of `expand_sweep`, each also naming the parent in `parent_run_id`.

    Raises:
        ValueError: a bad grid (see `expand_sweep`), before anything is logged.
        cityseg.components.tracking.TrackingUnavailableError: the MLflow server does not answer.
    """
    configs = expand_sweep(sweep)
    tracking.connect(tracking_uri, work_dir=work_dir)
    experiment_id = tracking.set_experiment(experiment, work_dir)
    run_name = f"sweep-{len(configs)}-configs"
    parent_run_id = start_parent_run(experiment_id, run_name, sweep, params, tracking.run_tags(kfp_run_id))
    return [{**config, "parent_run_id": parent_run_id} for config in configs]


def sweep_parent(configs: list[dict]) -> str:
    """The parent run id that the configurations of `start_sweep` share.

    Raises:
        ValueError: no configuration, or configurations of different sweeps.
    """
    parents = {config.get("parent_run_id") for config in configs}
    if len(parents) != 1 or None in parents:
        raise ValueError(
            f"sweep: expected configurations of one parent run, got parents {sorted(map(str, parents))}"
        )
    return parents.pop()


def _run_id_of(folder: str, file_name: str) -> str | None:
    path = Path(folder) / file_name
    if not path.exists():
        raise ValueError(f"{path} does not exist: {folder} is not a finished step's folder")
    return json.loads(path.read_text()).get("mlflow_run_id")


def best_artifacts(best_run_id: str, model_dirs: list[str], evaluation_dirs: list[str]) -> tuple[str, str]:
    """The model folder (train_info.json) and evaluation folder (metrics.json) of MLflow run `best_run_id`.

    Raises:
        ValueError: no model or no evaluation folder names that run.
    """
    models = [folder for folder in model_dirs if _run_id_of(folder, "train_info.json") == best_run_id]
    evaluations = [folder for folder in evaluation_dirs if _run_id_of(folder, "metrics.json") == best_run_id]
    if not models or not evaluations:
        raise ValueError(
            f"run {best_run_id}: {len(models)} of {len(model_dirs)} model folders and {len(evaluations)} of "
            f"{len(evaluation_dirs)} evaluation folders name it; expected one of each"
        )
    return models[0], evaluations[0]


def _number(value: float | str | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _augment_param(value: str | None) -> bool:
    # The train step logs the augmentations it applied, comma-separated, or "none".
    return value not in {None, "", "none"}


def _tflite_mb(client: MlflowClient, run: Run) -> float | None:
    # The train step logs its TFLite exports under tflite/; the listing carries their sizes.
    files = {info.path: info.file_size for info in client.list_artifacts(run.info.run_id, "tflite")}
    size = files.get("tflite/model_float16.tflite")
    return None if size is None else size / 2**20


def config_result(client: MlflowClient, run: Run) -> ConfigResult:
    """Read one child run's params and metrics into a `ConfigResult`."""
    params, metrics = run.data.params, run.data.metrics
    num_params = metrics.get("num_params")
    return ConfigResult(
        run_id=run.info.run_id,
        run_name=run.info.run_name or run.info.run_id,
        parent_run_id=run.data.tags.get(PARENT_TAG, ""),
        model=params.get("model", "?"),
        loss=params.get("loss", "?"),
        augment=_augment_param(params.get("augment")),
        num_params=None if num_params is None else int(float(num_params)),
        mean_dice=_number(metrics.get("eval_mean_dice")),
        mean_iou=_number(metrics.get("eval_mean_iou")),
        iou={name: _number(metrics.get(f"eval_iou_{name}")) for name in EVALUATED_CATEGORIES},
        training_time_s=_number(metrics.get("training_time_s")),
        train_images_per_s=_number(metrics.get("train_images_per_s")),
        latency_ms_per_image=_number(metrics.get("eval_latency_ms_per_image")),
        tflite_mb=_tflite_mb(client, run),
    )


def child_runs(parent_run_id: str) -> list[Run]:
    """The runs whose `mlflow.parentRunId` tag names the parent, oldest first.

    Raises:
        ValueError: no run with that id.
    """
    client = MlflowClient()
    try:
        parent = client.get_run(parent_run_id)
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"parent run {parent_run_id!r} not found in {mlflow.get_tracking_uri()}") from err
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=1000,
    )


def collect_results(parent_run_id: str) -> list[ConfigResult]:
    """Every child run of the parent, smallest model first, then loss, augmented before not.

    Raises:
        ValueError: the parent run does not exist or has no child runs.
    """
    client = MlflowClient()
    runs = child_runs(parent_run_id)
    if not runs:
        raise ValueError(f"parent run {parent_run_id} has no child runs (tag {PARENT_TAG})")
    results = [config_result(client, run) for run in runs]
    return sorted(results, key=lambda r: (r.num_params or 0, r.model, r.loss, not r.augment, r.run_name))


def pick_best(results: list[ConfigResult]) -> ConfigResult:
    """The configuration with the highest `mean_dice`.

    Raises:
        ValueError: no configuration has a `mean_dice` (no child run was evaluated).
    """
    scored = [result for result in results if result.mean_dice is not None]
    if not scored:
        raise ValueError(f"none of the {len(results)} child runs has eval_mean_dice: was evaluation run?")
    return max(scored, key=lambda result: result.mean_dice)


def augmentation_gain(results: list[ConfigResult]) -> list[dict]:
    """Per model and loss run both ways: mean_dice with augmentation, without, and gain = with - without."""
    by_key = {(r.model, r.loss, r.augment): r for r in results}
    gains = []
    for model, loss in dict.fromkeys((r.model, r.loss) for r in results):
        with_aug, without = by_key.get((model, loss, True)), by_key.get((model, loss, False))
        if with_aug is None or without is None or with_aug.mean_dice is None or without.mean_dice is None:
            continue
        gains.append(
            {
                "model": model,
                "loss": loss,
                "with": with_aug.mean_dice,
                "without": without.mean_dice,
                "gain": with_aug.mean_dice - without.mean_dice,
            }
        )
    return gains


def finish_parent_run(parent_run_id: str, best: ConfigResult, artifacts_dir: str) -> None:
    """Log the best configuration and the report folder to the parent run, then mark it FINISHED."""
    client = MlflowClient()
    client.set_tag(parent_run_id, BEST_RUN_TAG, best.run_id)
    client.set_tag(parent_run_id, "cityseg.best_config", best.label)
    client.log_metric(parent_run_id, "best_mean_dice", best.mean_dice)
    if best.mean_iou is not None:
        client.log_metric(parent_run_id, "best_mean_iou", best.mean_iou)
    client.log_artifacts(parent_run_id, artifacts_dir, artifact_path="report")
    client.set_terminated(parent_run_id, "FINISHED")
