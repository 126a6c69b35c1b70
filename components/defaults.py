"""The run recipe, the work folder, and how an entry point reads a config dataclass's defaults.

Every step's frozen config dataclass is the one home of its defaults; the CLIs and the pipeline
signatures read them from there (`defaults(SomeConfig).field`). The recipe is the one place that
decides what a default run trains (`make run`, `cityseg train`, and the sweep's shared settings):
the step dataclasses take those fields from `RECIPE`.
"""

import dataclasses
from types import SimpleNamespace

# The folder for local state: pipeline runs, the MLflow store, the local cache, downloaded models.
WORK_DIR = "work"
MODEL_CACHE_DIR = f"{WORK_DIR}/model_cache"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a default run trains, and on what."""

    # Chosen on the synthetic validation split, against 64x128 and 128x256: 96x192 lets people
    # and poles cover enough pixels for IoU >= 0.6, and a global batch of 4 gives twice the optimizer
    # steps of 8 for the same compute. The recipe converged after about 1,200 steps (24 epochs of 200
    # frames); with 15% of train held out as select, 28 epochs of 174 frames keep that step count.
    model: str = "unet"
    loss: str = "ce_dice"
    epochs: int = 28
    batch_size: int = 4
    learning_rate: float = 3e-3
    # The size shards are written at and trained at; a multiple of every model's stride (32).
    height: int = 96
    width: int = 192
    augment: tuple[str, ...] = ("flip",)
    class_weighting: str = "median"
    # The share of the source's train frames held out as the `select` split, which early stopping,
    # the LR plateau, int8 calibration and the sweep choose on, so that val judges unseen choices.
    # 0.15 draws 26 of the synthetic set's 200 train frames. Measured on unet_mini (64x128, 16
    # epochs): 20 or more random selection frames chose val's best epoch in over 90% of draws, 10
    # frames in fewer; a larger share would take more frames from training for little gain.
    select_fraction: float = 0.15
    # The synthetic set when no data is given: 6 x 50 = 300 frames, whole cities per split.
    synthetic_cities: int = 6
    synthetic_frames_per_city: int = 50


RECIPE = Recipe()

# Every entry-point default that is not its config dataclass's, and why. A test holds every pipeline
# parameter and CLI option to its dataclass or to this table. Empty strings for a dataclass's None
# (KFP parameters cannot be None) are not overrides.
OVERRIDES: dict[str, str] = {
    "compare pipeline: mlflow_experiment": "a sweep's parent and child runs get an experiment of their own, "
    "apart from single training runs (TrainConfig.experiment)",
    "cityseg serve --host": "where uvicorn listens, not a setting of the service",
    "cityseg serve --port": "where uvicorn listens, not a setting of the service",
    "cityseg app --host": "where the web app listens, not a setting of the app",
    "cityseg app --port": "where the web app listens, not a setting of the app",
}


def defaults(config_class: type) -> SimpleNamespace:
    """The fields of a config dataclass that have a default, as attributes: `defaults(TrainConfig).epochs`."""
    values = {}
    for field in dataclasses.fields(config_class):
        if field.default is not dataclasses.MISSING:
            values[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            values[field.name] = field.default_factory()
    return SimpleNamespace(**values)
