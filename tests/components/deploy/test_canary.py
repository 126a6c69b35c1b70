"""The canary's figures from `cityseg serve`'s own /metrics text, and the verdict on them."""

import prometheus_client
import pytest

from cityseg.components.deploy import canary
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.serve.telemetry import Telemetry

INFER = "/v2/models/{name}/infer"


def _metrics(requests: dict[tuple[str, str], int], latencies: dict[str, list[float]]) -> str:
    telemetry = Telemetry()
    for (route, status), count in requests.items():
        telemetry.requests.labels("POST", route, status).inc(count)
    for route, values in latencies.items():
        for value in values:
            telemetry.latency.labels(route).observe(value)
    return prometheus_client.generate_latest(telemetry.registry).decode()


def test_only_prediction_routes_count_and_5xx_are_errors():
    text = _metrics(
        {(INFER, "200"): 7, (INFER, "503"): 2, ("/predict", "400"): 1, ("/v2/health/ready", "503"): 50},
        {INFER: [0.02] * 9, "/predict": [0.02], "/v2/health/ready": [9.0] * 50},
    )
    sample = canary.parse(text)
    assert (sample.requests, sample.errors) == (10, 2)
    assert dict(sample.buckets)[0.025] == 10 and dict(sample.buckets)[float("inf")] == 10


def test_p95_is_interpolated_in_its_bucket_as_prometheus_does():
    # 20 requests: 19 at 20 ms (bucket 10..25 ms), 1 at 3 s (bucket 2.5..5 s); rank 19 of 20.
    sample = canary.parse(_metrics({(INFER, "200"): 20}, {INFER: [0.02] * 19 + [3.0]}))
    assert canary.quantile(sample, 0.95) == pytest.approx(0.025)
    assert canary.quantile(sample, 0.5) == pytest.approx(0.01 + 0.015 * 10 / 19)
    assert canary.quantile(canary.Sample(), 0.95) is None


def test_a_soak_counts_what_happened_since_its_start_and_a_restarted_pod_from_zero():
    before = canary.parse(_metrics({(INFER, "200"): 100, (INFER, "500"): 10}, {INFER: [0.02] * 110}))
    after = canary.parse(_metrics({(INFER, "200"): 130, (INFER, "500"): 10}, {INFER: [0.02] * 140}))
    assert after.minus(before) == canary.Sample(
        30, 0, tuple((le, 30 if le >= 0.025 else 0) for le, _ in after.buckets)
    )
    restarted = canary.parse(_metrics({(INFER, "200"): 5}, {INFER: [0.02] * 5}))
    assert restarted.minus(before) == restarted
    assert restarted.plus(restarted).requests == 10


ERRORS = "its error rate 3.0% exceeds the stable revision's 1.0% by more than 1.0%"
SLOW = "its p95 latency 200 ms exceeds 1.5 x the stable revision's 100 ms"
IDLE = "the canary served 19 prediction requests, fewer than the 20 needed to judge it"


@pytest.mark.parametrize(
    ("canary_figures", "problems"),
    [
        (canary.Figures("c", 100, 0.01, 0.05), []),
        (canary.Figures("c", 100, 0.03, 0.05), [ERRORS]),
        (canary.Figures("c", 100, 0.0, 0.2), [SLOW]),
        (canary.Figures("c", 100, 0.03, 0.2), [ERRORS, SLOW]),
        (canary.Figures("c", 19, 0.5, 9.0), [IDLE]),
    ],
)
def test_the_verdict_names_each_bound_the_canary_broke(canary_figures, problems):
    stable = canary.Figures("s", 900, 0.01, 0.1)
    assert canary.verdict(canary_figures, stable, DeployConfig(version="1")) == problems


def test_figures_read_as_a_sentence():
    assert str(canary.Figures("rev-2", 40, 0.25, 0.04875)) == "rev-2: 40 requests, 25.0% errors, p95 49 ms"
    assert str(canary.Figures("rev-2", 0, 0.0, None)) == "rev-2: 0 requests, 0.0% errors, p95 n/a"
