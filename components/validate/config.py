"""The validate step's configuration: the shards, where the results go, every check's threshold."""

import dataclasses

from cityseg.components.runner import RunnerConfig

DRIFT_METRICS = ("js", "linf")
DRIFT_POLICIES = ("warn", "fail")
IMAGE_SHIFTS = ("max_brightness_shift", "max_colour_shift", "max_contrast_shift")


@dataclasses.dataclass(frozen=True)
class ValidateConfig:
    """What to validate, where the results go, and the thresholds of every check.

    Attributes:
        shards: the shard folder written by `cityseg shard` (local or gs://).
        out: folder receiving statistics.json, anomalies.json and statistics.md.
        fingerprint: the source fingerprint (source or synth step); empty when unknown.
        min_frames: each of `required_splits` needs at least this many frames.
        min_select_frames: the select split (train frames the shard step holds out, on which training
            chooses the weights it keeps) needs at least this many frames; 0 for shards that no
            training here will read.
        max_void_share: no frame of a labelled split may be more void than this share.
        min_image_std: an image whose grey levels vary less than this (0..255) is constant.
        required_splits: splits that must exist, hold every non-void category and pass the void check.
        drift_metric: `js` (Jensen-Shannon distance) or `linf` (L-infinity) between category shares.
        drift_threshold: a distance above this to the champion's data is drift.
        drift_policy: `warn` reports drift and goes on, `fail` stops the run. Under `fail` a champion
            whose data statistics cannot be read fails the run too (drift that cannot be checked is
            not a pass); under `warn` it is a warning.
        max_brightness_shift: a change of a split's mean luma (grey levels 0..255) beyond this, from
            the champion's data, is drift: night, fog, over-exposure.
        max_colour_shift: a change of one channel's share of R+G+B beyond this is drift: a colour
            cast, as a new camera or white balance gives. Brightness alone does not move it.
        max_contrast_shift: a relative change of the mean channel std beyond this is drift: haze, fog.
        skip_unchanged: end the run (retrain False) when the fingerprint equals the champion's.
        registered_model: whose `@champion` to compare with; empty skips drift and the skip check.
        tracking_uri: MLflow store; None means MLFLOW_TRACKING_URI or the local default.
        experiment: MLflow experiment of the validation run.
        kfp_run_id: tagged on the validation run.
        workers: processes reading shards (None: one per core).
        runner: the engine that reads the shards for the statistics (`local` pool, `beam`, `dataflow`).
        markdown_out: a second copy of statistics.md (the KFP Markdown artifact); None for none.
    """

    shards: str
    out: str
    fingerprint: str = ""
    min_frames: int = 1
    min_select_frames: int = 1
    max_void_share: float = 0.9
    min_image_std: float = 1.0
    required_splits: tuple[str, ...] = ("train", "val")
    drift_metric: str = "js"
    drift_threshold: float = 0.1
    drift_policy: str = "warn"
    # Above what the splits of two synthetic sets of other seeds differ by (6 cities x 10 frames at
    # 96x192: brightness up to 18 grey levels, colour up to 0.025, contrast up to 0.09), far below
    # dusk (brightness -60 at 40% light) or a camera with 30% less blue (colour 0.07).
    max_brightness_shift: float = 25.0
    max_colour_shift: float = 0.04
    max_contrast_shift: float = 0.25
    skip_unchanged: bool = True
    registered_model: str = "cityseg"
    tracking_uri: str | None = None
    experiment: str = "cityseg"
    kfp_run_id: str | None = None
    workers: int | None = 1
    runner: RunnerConfig = dataclasses.field(default_factory=RunnerConfig)
    markdown_out: str | None = None

    def __post_init__(self):
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be at least 1, got {self.min_frames}")
        if self.min_select_frames < 0:
            raise ValueError(f"min_select_frames must be at least 0, got {self.min_select_frames}")
        if not 0.0 < self.max_void_share <= 1.0:
            raise ValueError(f"max_void_share must lie in (0, 1], got {self.max_void_share}")
        if self.min_image_std < 0:
            raise ValueError(f"min_image_std must be at least 0, got {self.min_image_std}")
        if self.drift_metric not in DRIFT_METRICS:
            raise ValueError(
                f"drift_metric must be one of {', '.join(DRIFT_METRICS)}, got {self.drift_metric!r}"
            )
        if self.drift_policy not in DRIFT_POLICIES:
            raise ValueError(
                f"drift_policy must be one of {', '.join(DRIFT_POLICIES)}, got {self.drift_policy!r}"
            )
        for name in ("drift_threshold", *IMAGE_SHIFTS):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")

    @property
    def image_shift_limits(self) -> dict[str, float]:
        """The largest accepted image shift from the champion's data, by `checks.image_shift` key."""
        return {
            name.removeprefix("max_").removesuffix("_shift"): getattr(self, name) for name in IMAGE_SHIFTS
        }
