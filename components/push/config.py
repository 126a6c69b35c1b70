"""The push step's configuration: the model, its evidence, the gates and the infra-validation limits."""

import dataclasses

from cityseg.components.defaults import MODEL_CACHE_DIR


@dataclasses.dataclass(frozen=True)
class InfraLimits:
    """What the serving path must achieve in infra validation (the values come from `PushConfig`)."""

    images: int
    load_timeout_s: float
    max_p95_ms: float
    min_agreement: float
    request_timeout_s: float = 60.0

    def __post_init__(self):
        if self.images < 1:
            raise ValueError(f"infra_images must be at least 1, got {self.images}")
        for name in ("load_timeout_s", "max_p95_ms", "request_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"infra_{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"infra_min_agreement must lie in [0, 1], got {self.min_agreement}")


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """What to push, the evidence for it, and the gates.

    Attributes:
        model: model folder written by `cityseg train`, or an MLflow `runs:/` / `models:/` URI.
        metrics: metrics.json written by `cityseg evaluate` for this model.
        data: the shards the metrics were computed on; the champion is re-scored on them.
        name: the registered model.
        min_dice: absolute gate on mean_dice.
        min_improvement: change gate: required mean_dice gain over the champion.
        serving_dir: folder or gs:// prefix receiving `<version>/` SavedModels; None skips the copy.
        tracking_uri: MLflow store; None means MLFLOW_TRACKING_URI or the local default.
        kfp_run_id: tagged on the version (KFP_RUN_ID from the environment when None).
        batch_size: batch size for re-scoring the champion.
        cache_dir: where MLflow models are downloaded to.
        max_attempts: how often to compare again when another push moves `@champion` meanwhile.
        lineage: more (tag, value) pairs for the version: source fingerprint, data statistics, pipeline.
        max_int8_iou_drop: refuse a model whose int8 TFLite export loses more mean_iou than this
            against the Keras model (evaluate's `tflite_int8_mean_iou_delta`); None is off.
        infra_validation: serve the candidate before any alias moves; infra_images validation images
            go through `/v2/.../infer`, the model must load within infra_load_timeout_s, answer under
            infra_max_p95_ms at p95 and agree with the evaluated masks on infra_min_agreement of pixels.
    """

    model: str
    metrics: str
    data: str
    name: str = "cityseg"
    min_dice: float = 0.8
    min_improvement: float = 0.0
    serving_dir: str | None = None
    tracking_uri: str | None = None
    kfp_run_id: str | None = None
    batch_size: int = 8
    cache_dir: str = MODEL_CACHE_DIR
    max_attempts: int = 5
    lineage: tuple[tuple[str, str], ...] = ()
    max_int8_iou_drop: float | None = None
    infra_validation: bool = True
    infra_images: int = 16
    infra_load_timeout_s: float = 120.0
    infra_max_p95_ms: float = 5000.0
    infra_min_agreement: float = 0.999

    def __post_init__(self):
        if not 0.0 <= self.min_dice <= 1.0:
            raise ValueError(f"min_dice must lie in [0, 1], got {self.min_dice}")
        if not -1.0 <= self.min_improvement <= 1.0:
            raise ValueError(f"min_improvement must lie in [-1, 1], got {self.min_improvement}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.max_int8_iou_drop is not None and not 0.0 <= self.max_int8_iou_drop <= 1.0:
            raise ValueError(f"max_int8_iou_drop must lie in [0, 1] or be None, got {self.max_int8_iou_drop}")
        self.infra_limits()

    def infra_limits(self):
        """The infra-validation limits, checked by `InfraLimits`."""
        return InfraLimits(
            self.infra_images, self.infra_load_timeout_s, self.infra_max_p95_ms, self.infra_min_agreement
        )
