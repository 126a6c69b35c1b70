"""Schema checks and drift detection on data statistics (SchemaGen + ExampleValidator's job).

Anomalies keep the shape of TFDV's anomaly report: the feature, the kind of anomaly, a short and
a long description, and a severity (ERROR stops the run, WARNING is reported and the run goes on).
"""

import dataclasses
import math
from collections import defaultdict

import numpy as np

from cityseg.components import labels
from cityseg.components.validate.statistics import FrameStats

ERROR = "ERROR"
WARNING = "WARNING"
MAX_NAMED_FRAMES = 5


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One finding, shaped like a TFDV anomaly info."""

    feature: str
    kind: str
    short_description: str
    description: str
    severity: str = ERROR


def _frame_list(frames: list[FrameStats], value) -> str:
    named = ", ".join(f"{frame.frame} {value(frame)}" for frame in frames[:MAX_NAMED_FRAMES])
    more = f" and {len(frames) - MAX_NAMED_FRAMES} more" if len(frames) > MAX_NAMED_FRAMES else ""
    return named + more


def _by_city(frames: list[FrameStats]) -> dict[tuple[str, str], list[FrameStats]]:
    grouped: dict[tuple[str, str], list[FrameStats]] = defaultdict(list)
    for frame in frames:
        grouped[(frame.split, frame.city)].append(frame)
    return dict(sorted(grouped.items()))


def check_splits(splits: dict, required: tuple[str, ...], min_frames: int) -> list[Anomaly]:
    """Every required split exists with at least `min_frames` frames, and has every non-void category."""
    found = []
    for split in required:
        stats = splits.get(split)
        if stats is None:
            found.append(
                Anomaly(
                    f"{split}/frames",
                    "SPLIT_MISSING",
                    f"split {split} is missing",
                    f"{split}: the data has no {split} split (splits: {', '.join(splits) or 'none'})",
                )
            )
            continue
        if stats["frames"] < min_frames:
            found.append(
                Anomaly(
                    f"{split}/frames",
                    "TOO_FEW_FRAMES",
                    f"{split} has {stats['frames']} frames",
                    f"{split}: {stats['frames']} frames, fewer than min_frames {min_frames}",
                )
            )
        for category, name in enumerate(labels.CATEGORY_NAMES):
            if category != labels.VOID and stats["category_pixels"][category] == 0:
                found.append(
                    Anomaly(
                        f"{split}/category/{name}",
                        "CATEGORY_MISSING",
                        f"no {name} pixels in {split}",
                        f"{split}: category {name} has 0 pixels in {stats['frames']} frames; every "
                        "non-void category must be present in train and val",
                    )
                )
    return found


def check_frames(
    frames: list[FrameStats],
    *,
    size: str,
    labelled: tuple[str, ...],
    max_void_share: float,
    min_std: float,
) -> list[Anomaly]:
    """Per frame: void share (labelled splits only), constant images, and `size` ("HxW"), grouped by city."""
    found = []
    for (split, city), group in _by_city(frames).items():
        if split in labelled:
            void = [frame for frame in group if frame.void_share > max_void_share]
            if void:
                found.append(
                    Anomaly(
                        f"{split}/void_share",
                        "FRAME_MOSTLY_VOID",
                        f"{len(void)} {split} frames of {city} are more than {max_void_share:.0%} void",
                        f"{split}/{city}: {len(void)} of {len(group)} frames are more than "
                        f"{max_void_share:.1%} void (max_void_share {max_void_share}): "
                        + _frame_list(void, lambda f: f"{f.void_share:.1%}"),
                    )
                )
        constant = [frame for frame in group if frame.grey_std < min_std]
        if constant:
            found.append(
                Anomaly(
                    f"{split}/image",
                    "CONSTANT_IMAGE",
                    f"{len(constant)} {split} images of {city} are constant",
                    f"{split}/{city}: {len(constant)} of {len(group)} images are constant (black or "
                    f"saturated), grey-level std below min_image_std {min_std}: "
                    + _frame_list(constant, lambda f: f"std {f.grey_std:.2f}"),
                )
            )
    for (split, city), group in _by_city(frames).items():
        wrong = [f for f in group if {f.image_size, f.mask_size, f.header_size} != {size}]
        if wrong:
            found.append(
                Anomaly(
                    f"{split}/image_size",
                    "UNEXPECTED_SIZE",
                    f"{len(wrong)} {split} frames of {city} are not {size}",
                    f"{split}/{city}: {len(wrong)} of {len(group)} frames differ from the manifest's "
                    f"{size} (image, mask, header): "
                    + _frame_list(wrong, lambda f: f"{f.image_size}/{f.mask_size}/{f.header_size}"),
                )
            )
    return found


def _distribution(stats: dict) -> np.ndarray:
    counts = np.asarray(stats["category_pixels"], np.float64)
    return counts / counts.sum() if counts.sum() else counts


def distance(p: np.ndarray, q: np.ndarray, metric: str) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) or L-infinity between two category distributions."""
    if metric == "linf":
        return float(np.max(np.abs(p - q)))
    middle = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / middle[mask])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def check_drift(
    splits: dict, baseline: dict, *, metric: str, threshold: float, policy: str, baseline_name: str
) -> tuple[list[Anomaly], dict[str, float]]:
    """Category distributions per split against the baseline's; returns (anomalies, distance per split)."""
    found, distances = [], {}
    kind = "JENSEN_SHANNON_DISTANCE_HIGH" if metric == "js" else "L_INFTY_HIGH"
    severity = ERROR if policy == "fail" else WARNING
    for split, stats in splits.items():
        if split not in baseline.get("splits", {}):
            continue
        value = distance(_distribution(stats), _distribution(baseline["splits"][split]), metric)
        distances[split] = round(value, 6)
        if value > threshold:
            found.append(
                Anomaly(
                    f"{split}/category_distribution",
                    kind,
                    f"{split} categories drifted from {baseline_name}",
                    f"{split}: category distribution {metric} distance {value:.4f} to the data of "
                    f"{baseline_name} exceeds drift_threshold {threshold} (policy {policy})",
                    severity,
                )
            )
    return found, distances
