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
# ITU-R BT.601 luma weights of R, G, B.
LUMA = np.array([0.299, 0.587, 0.114])


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


def check_selection(splits: dict, select: str, min_frames: int) -> list[Anomaly]:
    """The select split holds at least `min_frames` frames: training chooses its kept weights on it.

    Only its size is checked: it is a small share of train, which may well miss a rare category.
    """
    frames = splits.get(select, {}).get("frames", 0)
    if frames >= min_frames:
        return []
    return [
        Anomaly(
            f"{select}/frames",
            "TOO_FEW_FRAMES",
            f"{select} has {frames} frames",
            f"{select}: {frames} frames, fewer than min_select_frames {min_frames}; training chooses "
            f"the weights it keeps on this split: shard again with a larger select_fraction or more "
            "train frames",
        )
    ]


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


def image_shift(stats: dict, baseline: dict) -> dict[str, float]:
    """How a split's images moved from the baseline's: brightness, colour and contrast.

    brightness: the change of the mean luma (ITU-R BT.601 weights of the channel means), in grey
    levels 0..255; night and over-exposure move it. colour: the largest change of one channel's
    share of R+G+B, which a darkened or brightened frame keeps and a colour cast (another camera,
    white balance, sodium lights) moves. contrast: the relative change of the mean channel std;
    fog and haze lower it.
    """
    mean, before = np.asarray(stats["image_mean"]), np.asarray(baseline["image_mean"])
    std, std_before = np.mean(stats["image_std"]), np.mean(baseline["image_std"])
    return {
        "brightness": round(float(LUMA @ mean - LUMA @ before), 4),
        "colour": round(float(np.max(np.abs(_chromaticity(mean) - _chromaticity(before)))), 6),
        "contrast": round(float(std / std_before - 1) if std_before else 0.0, 6),
    }


def _chromaticity(mean: np.ndarray) -> np.ndarray:
    total = mean.sum()
    return mean / total if total else np.full(3, 1 / 3)


def check_image_drift(
    splits: dict, baseline: dict, *, limits: dict[str, float], policy: str, baseline_name: str
) -> tuple[list[Anomaly], dict[str, dict[str, float]]]:
    """Image brightness, colour and contrast per split against the baseline's (`image_shift`).

    `limits` holds the largest accepted absolute shift per key of `image_shift`. Returns
    (anomalies, the shifts per split).
    """
    found, shifts = [], {}
    severity = ERROR if policy == "fail" else WARNING
    for split, stats in splits.items():
        before = baseline.get("splits", {}).get(split)
        if before is None or not stats["frames"] or not before.get("frames"):
            continue
        shifts[split] = image_shift(stats, before)
        for key, value in shifts[split].items():
            if abs(value) > limits[key]:
                found.append(
                    Anomaly(
                        f"{split}/image_{key}",
                        f"IMAGE_{key.upper()}_SHIFT",
                        f"{split} image {key} moved from {baseline_name}",
                        f"{split}: image {key} shift {value:+.4g} against the data of {baseline_name} "
                        f"exceeds max_{key}_shift {limits[key]:g} (policy {policy}); "
                        f"channel means {_rgb(stats['image_mean'])} were {_rgb(before['image_mean'])}, "
                        f"stds {_rgb(stats['image_std'])} were {_rgb(before['image_std'])}",
                        severity,
                    )
                )
    return found, shifts


def _rgb(values) -> str:
    return "RGB " + "/".join(f"{v:.1f}" for v in values)


def drift_not_checked(reason: str, *, policy: str, baseline_name: str) -> Anomaly:
    """The anomaly of a drift check that could not run: an error under policy `fail`, else a warning."""
    return Anomaly(
        "drift",
        "DRIFT_NOT_CHECKED",
        f"drift against {baseline_name} not checked",
        f"drift against the data of {baseline_name} not checked (policy {policy}): its data statistics "
        f"could not be loaded: {reason}",
        ERROR if policy == "fail" else WARNING,
    )
