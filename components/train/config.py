"""The train step's config and its one check: `TrainConfig` and `check_config`.

`check_config` is pure (no files, no network): `cityseg train`, the train step, the pipelines'
parameter checks and the sweep's grid all call it, so a name or size is judged the same everywhere.
"""

import dataclasses

from cityseg.components.defaults import RECIPE, WORK_DIR

# The names a config may use. The tables of what they build (models.py, losses.py) import Keras;
# these do not, so that checking a config costs nothing (a test holds the two to the same names).
MODEL_STRIDES = {"unet_mini": 8, "unet": 16, "mobilenetv2_unet": 32, "deeplabv3plus": 16}
LOSS_NAMES = ("ce", "dice", "ce_dice", "focal")
CLASS_WEIGHTINGS = ("none", "median", "inverse_log")
AUGMENTATIONS = ("flip", "scale_crop", "color_jitter", "noise", "rotate")
LR_SCHEDULES = ("constant", "cosine", "plateau")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; sizes default to the shards' own size."""

    data: str
    out: str
    model: str = RECIPE.model
    loss: str = RECIPE.loss
    epochs: int = RECIPE.epochs
    batch_size: int = RECIPE.batch_size
    height: int | None = None
    width: int | None = None
    learning_rate: float = RECIPE.learning_rate
    lr_schedule: str = "cosine"
    early_stopping_patience: int = 0
    augment: tuple[str, ...] = RECIPE.augment
    mixed_precision: bool | None = None
    class_weighting: str = RECIPE.class_weighting
    ignore_void: bool = True
    weights: str | None = None
    seed: int = 0
    experiment: str = "cityseg"
    tracking_uri: str | None = None
    work_dir: str = WORK_DIR
    kfp_run_id: str | None = None
    # A sweep's MLflow parent run: this run becomes its child (tag mlflow.parentRunId).
    parent_run_id: str | None = None
    tflite: bool = True


class ConfigError(ValueError):
    """A training setting the step cannot run with; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _choice(field: str, noun: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(field, f"unknown {noun} {value!r}; choose one of {', '.join(allowed)}")


def check_size(model: str, height: int, width: int) -> None:
    """Raise ValueError unless height and width are positive multiples of the model's stride."""
    _choice("model", "model", model, MODEL_STRIDES)
    stride = MODEL_STRIDES[model]
    if height <= 0 or width <= 0 or height % stride or width % stride:
        raise ValueError(
            f"size {height}x{width} does not suit model {model!r}: height and width must be "
            f"positive multiples of its stride {stride}"
        )


def check_config(config: TrainConfig) -> None:
    """Check the names (model, loss, weighting, schedule, augmentations), the counts, and the size.

    The size is checked against the model's stride only when `height` and `width` are set.

    Raises:
        ConfigError: names the first field that is wrong and what is wrong with it.
    """
    _choice("model", "model", config.model, MODEL_STRIDES)
    _choice("loss", "loss", config.loss, LOSS_NAMES)
    _choice("class_weighting", "weighting", config.class_weighting, CLASS_WEIGHTINGS)
    _choice("lr_schedule", "value", config.lr_schedule, LR_SCHEDULES)
    unknown = [name for name in config.augment if name not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(
            "augment",
            f"unknown augmentation {', '.join(unknown)}; use a comma list of {', '.join(AUGMENTATIONS)}",
        )
    for field in ("epochs", "batch_size"):
        if getattr(config, field) < 1:
            raise ConfigError(field, f"must be at least 1, got {getattr(config, field)}")
    if not config.learning_rate > 0:
        raise ConfigError("learning_rate", f"must be positive, got {config.learning_rate}")
    if config.early_stopping_patience < 0:
        raise ConfigError(
            "early_stopping_patience", f"must be 0 (off) or more, got {config.early_stopping_patience}"
        )
    if config.height is not None and config.width is not None:
        try:
            check_size(config.model, config.height, config.width)
        except ValueError as err:
            raise ConfigError("height/width", str(err)) from err
