"""Noise-aware comparison of configurations: a t-interval over seeds, or a bootstrap over frames.

Two configurations trained with the same seeds see the same shuffles and augmentation draws, so
their scores are paired by seed: the difference per seed removes the seed's own luck, and a
Student t-interval on those differences says whether a gap is larger than the seed-to-seed noise.

With a single shared seed there is no seed-to-seed spread to measure. Both runs were scored on the
same validation frames, so the frames pair instead: a paired bootstrap resamples frames (the same
indices for both), recomputes each score from the resampled sum of per-frame confusion matrices,
and takes the 95% percentile interval of the difference. It covers which frames happened to be in
the split, not the luck of the seed, and says so.
"""

import dataclasses
import math
import statistics

import numpy as np
from scipy import stats as scipy_stats

from cityseg.components.evaluate.frame_matrices import CLEAN, corruption_of
from cityseg.components.labels import NUM_CLASSES, VOID

CONFIDENCE = 0.95
GAIN, LOSS, NOISE, ONE_SEED = "gain", "loss", "within noise", "one seed: no interval"
SEEDS, FRAMES = "seeds", "frames"
RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (n - 1); std is None below two values."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """`candidate - baseline` and its 95% interval.

    `method` says which interval: `seeds`, a Student t-interval over the shared seeds (`mean` and
    `std` of the per-seed differences); `frames`, a paired bootstrap over `frames` validation
    frames of one seed (`mean` the difference on all frames, `std` the bootstrap standard error).
    """

    seeds: tuple[int, ...]
    mean: float
    std: float | None
    low: float | None
    high: float | None
    method: str = SEEDS
    frames: int | None = None

    @property
    def verdict(self) -> str:
        """`gain` or `loss` only when the interval excludes 0; `within noise` when it includes 0."""
        if self.low is None or self.high is None:
            return ONE_SEED
        if self.low > 0:
            return GAIN
        if self.high < 0:
            return LOSS
        return NOISE

    def describe(self, digits: int = 3) -> str:
        """E.g. `+0.012 [-0.004, +0.028], within noise (3 seeds)`, naming a frame bootstrap's limits."""
        if self.low is None:
            return f"{self.mean:+.{digits}f} (one seed: the interval cannot be computed)"
        seeds = f"{len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''}"
        basis = (
            f"{seeds}; {CONFIDENCE:.0%} bootstrap over {self.frames} validation frames: "
            "seed-to-seed noise not included"
            if self.method == FRAMES
            else seeds
        )
        return (
            f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}], "
            f"{self.verdict} ({basis})"
        )


def paired_difference(candidate: dict[int, float], baseline: dict[int, float]) -> PairedDifference | None:
    """The paired difference of two configurations' scores, keyed by seed; None when no seed is shared.

    With n shared seeds the interval is mean +- t(0.975, n - 1) * std / sqrt(n); with one seed
    there is no interval, and the verdict says so.
    """
    seeds = tuple(sorted(set(candidate) & set(baseline)))
    if not seeds:
        return None
    differences = [candidate[seed] - baseline[seed] for seed in seeds]
    mean, std = mean_std(differences)
    if std is None:
        return PairedDifference(seeds, mean, None, None, None)
    half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, len(seeds) - 1) * std / math.sqrt(len(seeds))
    return PairedDifference(seeds, mean, std, mean - half, mean + half)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """The mean over `axis` of the present (non-NaN) values, NaN where none is: `metrics._mean` batched."""
    present = ~np.isnan(values)
    count = present.sum(axis=axis)
    total = np.where(present, values, 0.0).sum(axis=axis)
    return _ratio(total, count.astype(np.float64))


def category_means(cm: np.ndarray) -> dict[str, np.ndarray]:
    """`mean_iou` and `mean_dice` of confusion matrices (..., 8, 8), NaN where `metrics.scores` says None.

    The Cityscapes convention of `cityseg.components.metrics.scores`, batched: a non-void category's
    false positives leave out ground-truth void pixels; void itself is not averaged.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    fn = cm.sum(axis=-1) - tp
    fp = cm.sum(axis=-2) - tp - cm[..., VOID, :]
    evaluated = [c for c in range(NUM_CLASSES) if c != VOID]
    tp, fn, fp = tp[..., evaluated], fn[..., evaluated], fp[..., evaluated]
    return {
        "mean_iou": _nanmean(_ratio(tp, tp + fp + fn), axis=-1),
        "mean_dice": _nanmean(_ratio(2 * tp, 2 * tp + fp + fn), axis=-1),
    }


def frame_mean_dice(keys: list[str], means: dict[str, np.ndarray]) -> np.ndarray:
    """mean_dice of the clean confusion matrices, from `category_means` over (..., keys)."""
    return means["mean_dice"][..., keys.index(CLEAN)]


def frame_corrupt_mean_iou(keys: list[str], means: dict[str, np.ndarray]) -> np.ndarray:
    """corrupt_mean_iou: the mean over corruptions of the mean over severities of mean_iou.

    The formula of `cityseg.components.evaluate.corruptions.robustness_scores`, batched.
    """
    by_name: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        if key != CLEAN:
            by_name.setdefault(corruption_of(key)[0], []).append(index)
    if not by_name:
        raise ValueError("no corrupted frame confusions: corrupt_mean_iou needs keys <corruption>_<severity>")
    iou = means["mean_iou"]
    per_name = [_nanmean(iou[..., indices], axis=-1) for indices in by_name.values()]
    return _nanmean(np.stack(per_name, axis=-1), axis=-1)


FRAME_STATISTICS = {"mean_dice": frame_mean_dice, "corrupt_mean_iou": frame_corrupt_mean_iou}


def frame_bootstrap(
    candidate: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    statistic: str,
    seed: int,
    resamples: int = RESAMPLES,
    rng_seed: int = BOOTSTRAP_SEED,
) -> PairedDifference | None:
    """The paired bootstrap over frames of `statistic` (a FRAME_STATISTICS name), one shared `seed`.

    Both stacks (key -> int64 (frames, 8, 8), `cityseg.components.evaluate.frame_matrices`) were scored on
    the same frames: each of `resamples` draws takes the same frame indices (multinomial counts)
    for both, sums their confusion matrices and recomputes the statistic. The point estimate is the
    difference on all frames; the interval is the 2.5 and 97.5 percentiles of the resampled ones.

    Returns:
        A `frames` PairedDifference, or None when the statistic has no value on all frames.

    Raises:
        ValueError: an unknown statistic, or stacks that do not hold the same keys and frame count.
    """
    if statistic not in FRAME_STATISTICS:
        raise ValueError(f"statistic: unknown {statistic!r}; choose from {', '.join(FRAME_STATISTICS)}")
    shapes = {key: stack.shape for key, stack in candidate.items()}
    if shapes != {key: stack.shape for key, stack in baseline.items()} or not shapes:
        raise ValueError("frame bootstrap: candidate and baseline must hold the same keys and frame counts")
    keys, count = sorted(shapes), shapes[next(iter(shapes))][0]
    if count == 0:
        return None
    draws = np.random.default_rng(rng_seed).multinomial(count, np.full(count, 1.0 / count), size=resamples)
    # Row 0 takes every frame once: the point estimate goes through the same arithmetic as the draws.
    weights = np.vstack([np.ones((1, count), np.int64), draws]).astype(np.float64)
    stacked = np.concatenate(
        [stacks[key].reshape(count, -1) for stacks in (candidate, baseline) for key in keys], axis=1
    )
    # One (1 + B, F) @ (F, 2 x keys x 64) product: every draw's confusion matrices for both runs.
    sums = (weights @ stacked.astype(np.float64)).reshape(-1, 2, len(keys), NUM_CLASSES, NUM_CLASSES)
    values = FRAME_STATISTICS[statistic](keys, category_means(sums))
    differences = values[:, 0] - values[:, 1]
    point, differences = differences[0], differences[1:][~np.isnan(differences[1:])]
    if np.isnan(point) or not len(differences):
        return None
    low, high = np.percentile(differences, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
    std = float(differences.std(ddof=1)) if len(differences) > 1 else None
    return PairedDifference((seed,), float(point), std, float(low), float(high), FRAMES, count)


def interval_methods(differences: list[PairedDifference | None]) -> str:
    """How these differences' 95% intervals were computed, in words, from the differences themselves."""
    found = [d for d in differences if d is not None]
    seeds = sorted({len(d.seeds) for d in found if d.method == SEEDS and d.low is not None})
    frames = sorted({d.frames for d in found if d.method == FRAMES})
    missing = sum(d.low is None for d in found)
    parts = []
    if seeds:
        parts.append(f"Student t on the per-seed differences ({' or '.join(map(str, seeds))} shared seeds)")
    if frames:
        parts.append(
            f"with a single seed, a paired bootstrap over the {' or '.join(map(str, frames))} validation "
            f"frames ({RESAMPLES} resamples, the same frames for both configurations), which covers "
            "frame-to-frame variation only, not seed-to-seed noise"
        )
    if missing:
        parts.append(f"none for {missing} one-seed comparisons without per-frame scores")
    return "; ".join(parts) or "no comparison was made"
