"""The evaluate step's configuration: the model, the split of the shards, and where the scores go."""

import dataclasses

from cityseg.components.defaults import MODEL_CACHE_DIR


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What to score, on which data, and where the results go.

    Attributes:
        data: shards folder (local or gs://) with manifest.json.
        model: model folder, `.keras` file or MLflow URI (see `cityseg.components.modelstore`).
        out: folder (local or gs://) for metrics.json, the PNGs, report.html and frame_confusions.npz.
        split: the split to score.
        batch_size: images per inference call; latency is per image at this batch size.
        samples: triptychs shown in the report (the first images of the split).
        log_to_mlflow: log eval_* metrics and the files to the model's MLflow run, when it has one.
        tracking_uri: MLflow store; None means MLFLOW_TRACKING_URI or the local default.
        cache_dir: where MLflow models are downloaded to.
        corruptions: also score the split under common corruptions (`evaluate.corruptions`).
    """

    data: str
    model: str
    out: str
    split: str = "val"
    batch_size: int = 8
    samples: int = 6
    log_to_mlflow: bool = True
    tracking_uri: str | None = None
    cache_dir: str = MODEL_CACHE_DIR
    corruptions: bool = False

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.samples < 0:
            raise ValueError(f"samples must not be negative, got {self.samples}")
