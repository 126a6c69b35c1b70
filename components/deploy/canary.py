"""The canary's verdict: error rate and p95 latency of two predictor revisions, read from `/metrics`.

`cityseg serve` exports `cityseg_http_requests{method,route,status}` and the histogram
`cityseg_http_request_duration_seconds{route}` (components/serve/telemetry.py). Each pod counts
from its own start, so a soak takes a snapshot of every pod of a revision at its start and at its
end and judges the difference. Only the prediction routes count: probes and scrapes say nothing
about the model. A 5xx answer is an error; a 4xx is the client's.
"""

import math
from collections import Counter
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

PREDICTION_ROUTES = frozenset(
    {"/predict", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"}
)
REQUESTS = "cityseg_http_requests"
LATENCY = "cityseg_http_request_duration_seconds"


@dataclass(frozen=True)
class Sample:
    """One pod's counters on the prediction routes: requests, 5xx answers, latency buckets (le -> count)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()

    def minus(self, before: "Sample | None") -> "Sample":
        """What happened since `before`; a pod that restarted in between (counts fell) counts from zero."""
        if before is None or self.requests < before.requests:
            return self
        earlier = dict(before.buckets)
        return Sample(
            self.requests - before.requests,
            self.errors - before.errors,
            tuple((le, count - earlier.get(le, 0.0)) for le, count in self.buckets),
        )

    def plus(self, other: "Sample") -> "Sample":
        """Two pods' counts together."""
        buckets = Counter(dict(self.buckets))
        buckets.update(dict(other.buckets))
        return Sample(
            self.requests + other.requests, self.errors + other.errors, tuple(sorted(buckets.items()))
        )


def parse(text: str) -> Sample:
    """The prediction routes' counters in one `/metrics` answer (Prometheus text format)."""
    requests = errors = 0.0
    buckets: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("route") not in PREDICTION_ROUTES:
                continue
            if sample.name == REQUESTS + "_total":
                requests += sample.value
                errors += sample.value if sample.labels.get("status", "").startswith("5") else 0.0
            elif sample.name == LATENCY + "_bucket":
                buckets[float(sample.labels["le"])] += sample.value
    return Sample(requests, errors, tuple(sorted(buckets.items())))


def quantile(sample: Sample, q: float) -> float | None:
    """The `q` quantile of the latency in seconds, interpolated in its bucket as Prometheus'
    `histogram_quantile` does; None without requests."""
    total = sample.buckets[-1][1] if sample.buckets else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in sample.buckets:
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / (count - below) if count > below else le
        lower, below = le, count
    return lower


@dataclass(frozen=True)
class Figures:
    """What one revision did during the soak."""

    revision: str
    requests: int
    error_rate: float
    p95_s: float | None

    @classmethod
    def of(cls, revision: str, sample: Sample) -> "Figures":
        rate = sample.errors / sample.requests if sample.requests else 0.0
        return cls(revision, round(sample.requests), rate, quantile(sample, 0.95))

    def __str__(self) -> str:
        p95 = "n/a" if self.p95_s is None else f"{self.p95_s * 1000:.0f} ms"
        return f"{self.revision}: {self.requests} requests, {self.error_rate:.1%} errors, p95 {p95}"


def verdict(canary: Figures, stable: Figures, limits) -> list[str]:
    """Why the canary may not be promoted (empty when it may), against `limits` (a DeployConfig)."""
    if canary.requests < limits.soak_min_requests:
        return [
            f"the canary served {canary.requests} prediction requests, fewer than the "
            f"{limits.soak_min_requests} needed to judge it"
        ]
    problems = []
    if canary.error_rate > stable.error_rate + limits.max_error_rate_increase:
        problems.append(
            f"its error rate {canary.error_rate:.1%} exceeds the stable revision's {stable.error_rate:.1%} "
            f"by more than {limits.max_error_rate_increase:.1%}"
        )
    if (
        canary.p95_s is not None
        and stable.p95_s is not None
        and canary.p95_s > stable.p95_s * limits.max_p95_ratio
    ):
        problems.append(
            f"its p95 latency {canary.p95_s * 1000:.0f} ms exceeds {limits.max_p95_ratio:g} x the stable "
            f"revision's {stable.p95_s * 1000:.0f} ms"
        )
    return problems
