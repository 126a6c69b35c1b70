"""The object classifier's steps' configurations: train, evaluate and push, with their defaults and checks."""

import dataclasses

from cityseg.components.defaults import MODEL_CACHE_DIR, WORK_DIR

AUGMENTATIONS = ("flip", "shift", "color", "scale")
WEIGHTINGS = ("none", "balanced")
REGISTERED_MODEL = "cityseg-objects"
EXPERIMENT = "cityseg-objects"


@dataclasses.dataclass(frozen=True)
class ObjectsTrainConfig:
    """What to train on the crop shards in `data`, written to the model folder `out`.

    `width` is the channels of the first stage (doubling per stage); `class_weighting` "balanced"
    weights each class's loss by total / (classes x its count), so rare classes count as much as cars.
    """

    data: str
    out: str
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    width: int = 32
    augment: tuple[str, ...] = AUGMENTATIONS
    class_weighting: str = "balanced"
    seed: int = 0
    tracking_uri: str | None = None
    experiment: str = EXPERIMENT
    kfp_run_id: str | None = None
    work_dir: str = WORK_DIR

    def __post_init__(self):
        for name in ("epochs", "batch_size", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        unknown = [name for name in self.augment if name not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"augment: unknown {', '.join(unknown)}; known: {', '.join(AUGMENTATIONS)}")
        if self.class_weighting not in WEIGHTINGS:
            raise ValueError(
                f"class_weighting must be one of {', '.join(WEIGHTINGS)}, got {self.class_weighting!r}"
            )


@dataclasses.dataclass(frozen=True)
class ObjectsEvaluateConfig:
    """Score the classifier `model` on a split of the crop shards `data`; metrics and report go to `out`."""

    model: str
    data: str
    out: str
    split: str = "val"
    batch_size: int = 128
    max_errors: int = 48
    tracking_uri: str | None = None

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_errors < 0:
            raise ValueError(f"max_errors must be non-negative, got {self.max_errors}")


@dataclasses.dataclass(frozen=True)
class ObjectsPushConfig:
    """Register the classifier and move `@champion` to it when it passes the gates on macro-F1.

    Attributes:
        min_macro_f1: absolute gate.
        min_improvement: change gate: required macro-F1 gain over the champion, re-scored on `data`.
    """

    model: str
    metrics: str
    data: str
    name: str = REGISTERED_MODEL
    min_macro_f1: float = 0.8
    min_improvement: float = 0.0
    tracking_uri: str | None = None
    kfp_run_id: str | None = None
    batch_size: int = 128
    cache_dir: str = MODEL_CACHE_DIR
    max_attempts: int = 5
    lineage: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if not 0.0 <= self.min_macro_f1 <= 1.0:
            raise ValueError(f"min_macro_f1 must lie in [0, 1], got {self.min_macro_f1}")
        if not -1.0 <= self.min_improvement <= 1.0:
            raise ValueError(f"min_improvement must lie in [-1, 1], got {self.min_improvement}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
