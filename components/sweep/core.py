"""The model-comparison sweep: its configurations, presets and budget rule, as one MLflow parent run.

A sweep answers three questions around one reference recipe, one factor at a time: the model
ladder (each model with the reference loss and augmentation), the loss (each loss on the reference
model) and the augmentation (none, each technique alone, all together, on the reference model and
loss). `crossed` runs every model x loss x augmentation instead. Every configuration runs once per
seed, with the same seeds, so that configurations pair by seed (`cityseg.components.sweep.stats`).
Each run is an MLflow child run (tag `mlflow.parentRunId`) of the sweep's parent run.
"""

import itertools
import logging
import os

from mlflow.tracking import MlflowClient

from cityseg.components import tracking
from cityseg.components.sweep.config import ALL_AUGMENTATIONS, COMBINE, NO_AUGMENTATION, SweepConfig
from cityseg.components.train.config import AUGMENTATIONS

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "cityseg.sweep"
BEST_RUN_TAG = "cityseg.best_run_id"
STUDIES = ("ladder", "loss", "augmentation")


def augmentation_list(setting: str) -> str:
    """The train step's comma-separated augmentations of a setting: `none` -> "", `all` -> every one."""
    if setting == NO_AUGMENTATION:
        return ""
    if setting == ALL_AUGMENTATIONS:
        return ",".join(AUGMENTATIONS)
    return ",".join(setting.split(COMBINE))


def setting_of(augmentations: str) -> str:
    """The inverse of `augmentation_list`: the train step's logged list -> the setting's name."""
    names = [name for name in augmentations.split(",") if name and name != NO_AUGMENTATION]
    if not names:
        return NO_AUGMENTATION
    return ALL_AUGMENTATIONS if sorted(names) == sorted(AUGMENTATIONS) else COMBINE.join(names)


def _check_names(field: str, names: tuple, known) -> None:
    if not names:
        raise ValueError(f"{field}: the sweep needs at least one value")
    duplicates = sorted({str(name) for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{field}: {duplicates} given more than once")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"{field}: unknown {unknown}; choose from {sorted(known)}")


def _check_setting(field: str, setting: str) -> None:
    if setting in (NO_AUGMENTATION, ALL_AUGMENTATIONS):
        return
    parts = setting.split(COMBINE)
    unknown = [part for part in parts if part not in AUGMENTATIONS]
    if unknown or len(set(parts)) != len(parts):
        raise ValueError(
            f"{field}: {setting!r} is not an augmentation setting; use none, all, one of "
            f"{', '.join(AUGMENTATIONS)}, or several joined by {COMBINE}"
        )


def check_sweep(sweep: SweepConfig) -> None:
    """Every check of a sweep's grid, the one the CLI, the pipeline validation and the sweep call.

    Raises:
        ValueError: an empty axis, a repeated value, an unknown name, or a bad seed.
    """
    # The train step's name tables (`check_config`'s), which import no TensorFlow.
    from cityseg.components.train.config import LOSS_NAMES as LOSSES
    from cityseg.components.train.config import MODEL_STRIDES as MODELS

    _check_names("models", sweep.models, MODELS)
    _check_names("losses", sweep.losses, LOSSES)
    _check_names("augment", sweep.augment, sweep.augment)
    for setting in (*sweep.augment, sweep.reference_augment):
        _check_setting("augment", setting)
    _check_names("reference_model", (sweep.reference_model,), MODELS)
    _check_names("reference_loss", (sweep.reference_loss,), LOSSES)
    _check_names("seeds", sweep.seeds, sweep.seeds)
    if any(seed < 0 for seed in sweep.seeds):
        raise ValueError(f"seeds: must not be negative, got {list(sweep.seeds)}")


def configurations(sweep: SweepConfig) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(model, loss, augmentation setting, studies) of every configuration, first appearance first."""
    if sweep.crossed:
        grid = itertools.product(sweep.models, sweep.losses, sweep.augment)
        return [(*recipe, STUDIES) for recipe in grid]
    model, loss, augment = sweep.reference_model, sweep.reference_loss, sweep.reference_augment
    studies: dict[tuple[str, str, str], list[str]] = {}
    for study, recipes_of_study in (
        ("ladder", [(m, loss, augment) for m in sweep.models]),
        ("loss", [(model, name, augment) for name in sweep.losses]),
        ("augmentation", [(model, loss, setting) for setting in sweep.augment]),
    ):
        for recipe in recipes_of_study:
            studies.setdefault(recipe, []).append(study)
    return [(*recipe, tuple(names)) for recipe, names in studies.items()]


def config_name(model: str, loss: str, augment: str, seed: int) -> str:
    """The run name of one configuration and seed, e.g. `unet_mini-ce_dice-flip-s0`."""
    return f"{model}-{loss}-{augment}-s{seed}"


def expand_sweep(sweep: SweepConfig) -> list[dict]:
    """Every configuration x seed of the sweep, as JSON-ready dicts for `dsl.ParallelFor`.

    Each dict has `name`, `model`, `loss`, `augment` (the setting), `augmentations` (the train
    step's comma-separated list, empty for none), `seed` and `studies` (comma-separated).

    Raises:
        ValueError: see `check_sweep`.
    """
    check_sweep(sweep)
    return [
        {
            "name": config_name(model, loss, augment, seed),
            "model": model,
            "loss": loss,
            "augment": augment,
            "augmentations": augmentation_list(augment),
            "seed": seed,
            "studies": ",".join(studies),
        }
        for model, loss, augment, studies in configurations(sweep)
        for seed in sweep.seeds
    ]


def sweep_params(sweep: SweepConfig) -> dict:
    """The sweep's definition as MLflow params of the parent run (the report reads them back)."""
    return {
        "sweep_models": ",".join(sweep.models),
        "sweep_losses": ",".join(sweep.losses),
        "sweep_augment": ",".join(sweep.augment),
        "sweep_reference": f"{sweep.reference_model}/{sweep.reference_loss}/{sweep.reference_augment}",
        "sweep_seeds": ",".join(map(str, sweep.seeds)),
        "sweep_crossed": sweep.crossed,
        "sweep_configs": len(configurations(sweep)),
        "budget_max_epochs": sweep.budget.max_epochs,
        "budget_patience": sweep.budget.patience,
        "budget_rule": sweep.budget.rule(),
    }


def start_parent_run(experiment_id: str, run_name: str, sweep: SweepConfig, params: dict, tags: dict) -> str:
    """Open the sweep's parent run (left RUNNING until the report closes it) and log the sweep as params.

    Returns:
        The parent run id, which every child run names in its `mlflow.parentRunId` tag.
    """
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=run_name, tags={SWEEP_TAG: "true", **tags})
    for key, value in {**sweep_params(sweep), **params}.items():
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
    """Expand the sweep and open its parent run in `experiment`.

    Returns:
        The configurations of `expand_sweep`, each also naming the parent in `parent_run_id`.

    Raises:
        ValueError: a bad sweep (see `check_sweep`), before anything is logged.
        cityseg.components.tracking.TrackingUnavailableError: the MLflow server does not answer.
    """
    configs = expand_sweep(sweep)
    tracking.connect(tracking_uri, work_dir=work_dir)
    experiment_id = tracking.set_experiment(experiment, work_dir)
    run_name = f"sweep-{len(configurations(sweep))}-configs-{len(sweep.seeds)}-seeds"
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
