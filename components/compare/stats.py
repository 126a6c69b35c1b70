"""Noise-aware comparison of configurations trained with several seeds.

Two configurations trained with the same seeds see the same shuffles and augmentation draws, so
their scores are paired by seed: the difference per seed removes the seed's own luck, and a
Student t-interval on those differences says whether a gap is larger than the seed-to-seed noise.
"""

import dataclasses
import math
import statistics

from scipy import stats as scipy_stats

CONFIDENCE = 0.95
GAIN, LOSS, NOISE, ONE_SEED = "gain", "loss", "within noise", "one seed: no interval"


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (n - 1); std is None below two values."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """`candidate - baseline` over the seeds both ran: mean, sample std and the 95% t-interval."""

    seeds: tuple[int, ...]
    mean: float
    std: float | None
    low: float | None
    high: float | None

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
        """E.g. `+0.012 [-0.004, +0.028], within noise (3 seeds)`."""
        if self.low is None:
            return f"{self.mean:+.{digits}f} (one seed: the interval cannot be computed)"
        return (
            f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}], "
            f"{self.verdict} ({len(self.seeds)} seeds)"
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
