"""A canary that must not be promoted is rolled back with `@champion` (stand-in API, real /metrics)."""

import uuid

import pytest

from cityseg.components.deploy import rollout
from cityseg.components.deploy.core import deploy
from cityseg.components.deploy.result import DeployError
from tests.components.deploy.builders import config_for, model_arg, patches, registry, serve_model
from tests.components.deploy.conftest import revision

FAILURE = (
    'Revision "cityseg-predictor-00002" failed with message: Container failed with: '
    "ValueError: models:/cityseg/7 has no model folder."
)


@pytest.mark.parametrize(
    ("errors", "latency_s", "problem"),
    [
        (10, 0.03, "its error rate 25.0% exceeds the stable revision's 0.0% by more than 1.0%"),
        (0, 0.3, "its p95 latency 488 ms exceeds 1.5 x the stable revision's 49 ms"),
    ],
)
def test_a_canary_that_fails_its_soak_is_rolled_back_naming_the_figures(
    kserve_api, predictors, mlflow_uri, errors, latency_s, problem
):
    host, api = kserve_api
    _, canary = predictors
    canary.errors, canary.latency_s = errors, latency_s
    client, name = registry(champion="2", previous="1")
    serve_model(api, f"models:/{name}/1")
    config = config_for(
        host, version="2", name=name, soak_s=0.05, soak_min_requests=20, tracking_uri=mlflow_uri
    )
    with pytest.raises(DeployError) as err:
        deploy(config)
    p95 = "488 ms" if latency_s == 0.3 else "49 ms"
    assert str(err.value) == (
        "canary revision cityseg-predictor-00002 of InferenceService kubeflow/cityseg (model v2) failed its "
        f"0.05s soak: {problem} (canary cityseg-predictor-00002: 40 requests, {errors / 40:.1%} errors, p95 "
        f"{p95}; stable cityseg-predictor-00001: 40 requests, 0.0% errors, p95 49 ms); traffic is back on "
        "cityseg-predictor-00001; @champion is back on v1 (revision cityseg-predictor-00002 is left without "
        "traffic)"
    )
    canary_patch, rollback = patches(api)
    assert canary_patch["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert rollback == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
    aliases = client.get_registered_model(name).aliases
    assert (aliases["champion"], aliases["previous"]) == ("1", "2")


def test_a_predictor_that_follows_champion_is_pinned_to_previous_before_the_canary(
    kserve_api, predictors, mlflow_uri
):
    host, api = kserve_api
    _, name = registry(champion="2", previous="1")
    # The committed manifest: push already moved @champion to v2, which the pods would follow.
    serve_model(api, f"models:/{name}@champion")
    api.pods = {revision(2): api.pods[revision(1)], revision(3): api.pods[revision(2)]}
    config = config_for(
        host, version="2", name=name, soak_s=0.05, soak_min_requests=20, tracking_uri=mlflow_uri
    )
    result = deploy(config)
    pin, canary, promote = patches(api)
    assert pin["spec"]["predictor"]["canaryTrafficPercent"] is None
    assert model_arg(pin) == f"models:/{name}/1"
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert model_arg(canary) == f"models:/{name}/2"
    assert promote == rollout.PROMOTE_PATCH
    assert result.traffic == {revision(3): 100}


def test_a_stopped_service_fails_at_once_without_waiting_out_the_time(kserve_api, mlflow_uri):
    host, api = kserve_api
    api.stopped = True
    _, name = registry(champion="3", previous="1")
    serve_model(api, f"models:/{name}/1")
    with pytest.raises(DeployError) as err:
        deploy(config_for(host, version="2", name=name, ready_timeout_s=600, tracking_uri=mlflow_uri))
    assert str(err.value) == (
        "canary of InferenceService kubeflow/cityseg (model v2) cannot go on: the InferenceService is "
        "stopped (Stopped=True); remove its serving.kserve.io/stop annotation to start it again; "
        "traffic is back on the previous revision; @champion (v3) was left as it is"
    )
    assert [method for method, *_ in api.requests] == ["GET", "PATCH", "GET", "PATCH"]


def test_a_canary_that_never_gets_ready_is_rolled_back_with_the_champion(kserve_api, mlflow_uri):
    host, api = kserve_api
    api.ready_after_reads = None
    client, name = registry(champion="2", previous="1")
    serve_model(api, f"models:/{name}/1")
    config = config_for(host, version="2", name=name, ready_timeout_s=0.3, tracking_uri=mlflow_uri)
    with pytest.raises(DeployError) as err:
        deploy(config)
    assert str(err.value) == (
        "canary revision cityseg-predictor-00002 of InferenceService kubeflow/cityseg (model v2) was not "
        f"Ready within 0.3s: Ready=False: RevisionFailed {FAILURE}; traffic is back on "
        "cityseg-predictor-00001; @champion is back on v1 (revision cityseg-predictor-00002 is left without "
        "traffic)"
    )
    assert patches(api)[-1] == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
    assert len(patches(api)) == 2, "never promoted"
    aliases = client.get_registered_model(name).aliases
    assert (aliases["champion"], aliases["previous"]) == ("1", "2")
    reason = client.get_model_version(name, "2").tags["rollback_reason"]
    assert reason.startswith(
        f"deploy of v2 to kubeflow/cityseg failed: Ready=False: RevisionFailed {FAILURE}"
    )


def test_a_champion_moved_by_someone_else_is_left_alone_on_rollback(kserve_api, mlflow_uri):
    host, api = kserve_api
    api.ready_after_reads = None
    client, name = registry(champion="3", previous="1")
    serve_model(api, f"models:/{name}/1")
    with pytest.raises(DeployError, match=r"@champion \(v3\) was left as it is$"):
        deploy(config_for(host, version="2", name=name, ready_timeout_s=0.2, tracking_uri=mlflow_uri))
    aliases = client.get_registered_model(name).aliases
    assert (aliases["champion"], aliases["previous"]) == ("3", "1")


def test_a_champion_without_previous_stays_and_the_reason_says_why(kserve_api, mlflow_uri):
    import mlflow

    host, api = kserve_api
    api.ready_after_reads = None
    client = mlflow.MlflowClient()
    name = f"deploy-{uuid.uuid4().hex[:12]}"
    client.create_registered_model(name)
    client.create_model_version(name, source="gs://bucket/model", run_id=None)
    client.set_registered_model_alias(name, "champion", "1")
    # The committed manifest follows @champion; with no @previous the first version rolls out at once.
    serve_model(api, f"models:/{name}@champion")
    with pytest.raises(DeployError) as err:
        deploy(config_for(host, version="1", name=name, ready_timeout_s=0.2, tracking_uri=mlflow_uri))
    assert str(err.value).startswith("rollout revision cityseg-predictor-00002 of InferenceService")
    assert str(err.value).endswith(
        f"traffic is back on cityseg-predictor-00001; @champion stays on v1: "
        f"registered model '{name}' has no @previous version to roll back to"
    )


def test_a_canary_whose_pods_cannot_be_read_is_rolled_back(kserve_api, mlflow_uri):
    host, api = kserve_api
    api.pods = None
    _, name = registry(champion="3", previous="1")
    serve_model(api, f"models:/{name}/1")
    with pytest.raises(DeployError) as err:
        deploy(config_for(host, version="2", name=name, tracking_uri=mlflow_uri))
    assert str(err.value) == (
        "canary revision cityseg-predictor-00002 of InferenceService kubeflow/cityseg could not be judged: "
        "list the pods of revision kubeflow/cityseg-predictor-00002: HTTP 403 Forbidden: pods is forbidden: "
        'User "system:serviceaccount:kubeflow:pipeline-runner" cannot list resource "pods" in API group "" '
        'in the namespace "kubeflow"; traffic is back on cityseg-predictor-00001; '
        "@champion (v3) was left as it is"
    )
    assert patches(api)[-1] == rollout.ROLLBACK_PATCH
