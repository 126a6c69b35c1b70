"""The deploy step against a recording stand-in of the Kubernetes API (see conftest.py)."""

import copy
import inspect

import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import container_images
from cityseg.components.deploy import rollout
from cityseg.components.deploy.component import deploy as deploy_component
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.deploy.core import DeployError, deploy
from cityseg.components.deploy.kube import KubeError
from tests.components.deploy.conftest import committed_inferenceservice, ready_status

INTERNAL_URL = "http://cityseg.kubeflow.svc.cluster.local"
FAILURE = "Revision cityseg-predictor-00002 failed: container kserve-container exited with 1"


def _config(host: str, **overrides) -> DeployConfig:
    settings = dict(version="7", target="kserve", namespace="kubeflow", api_host=host, poll_s=0.01)
    return DeployConfig(**{**dict(ready_timeout_s=5.0), **settings, **overrides})


def _patches(api) -> list[dict]:
    return [body for method, _, _, body in api.requests if method == "PATCH"]


def _expected_containers(model_ref: str) -> list[dict]:
    containers = copy.deepcopy(committed_inferenceservice()["spec"]["predictor"]["containers"])
    args = containers[0]["args"]
    args[args.index("--model") + 1] = model_ref
    return containers


def test_a_ready_canary_gets_10_percent_then_all_traffic(kserve_api):
    host, api = kserve_api
    result = deploy(_config(host))
    first, promote = _patches(api)
    assert first == {
        "metadata": {"annotations": {"cityseg.io/model-version": "7"}},
        "spec": {
            "predictor": {"canaryTrafficPercent": 10, "containers": _expected_containers("models:/cityseg/7")}
        },
    }
    assert promote == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    methods = [method for method, *_ in api.requests]
    assert methods[:2] == ["GET", "PATCH"] and methods.count("PATCH") == 2
    between = methods[2 : methods.index("PATCH", 2)]
    assert len(between) >= 2 and set(between) == {"GET"}, "waited for the canary before promoting it"
    assert {content_type for method, _, content_type, _ in api.requests if method == "PATCH"} == {
        "application/merge-patch+json"
    }
    assert (result.target, result.url, result.version) == ("kserve", INTERNAL_URL, "7")
    assert result.traffic == {"cityseg-predictor-00002": 100}
    assert result.outputs() == (INTERNAL_URL, "7", "cityseg-predictor-00002=100")
    # Only the model changed: resources, probes and security settings are the live object's.
    live = api.obj["spec"]["predictor"]
    assert (
        live["containers"] == _expected_containers("models:/cityseg/7") and "canaryTrafficPercent" not in live
    )


def test_deploying_the_same_version_again_creates_no_revision(kserve_api):
    host, api = kserve_api
    deploy(_config(host))
    assert api.latest == 2
    result = deploy(_config(host))
    # Only the traffic setting changed (a new generation); the pod template is the same (no revision).
    assert api.latest == 2
    assert (
        _patches(api)[2]["spec"]["predictor"]["containers"]
        == _patches(api)[0]["spec"]["predictor"]["containers"]
    )
    assert result.traffic == {"cityseg-predictor-00002": 100}


def test_100_percent_rolls_out_at_once(kserve_api):
    host, api = kserve_api
    result = deploy(_config(host, canary_traffic_percent=100))
    (patch,) = _patches(api)
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] is None
    assert result.traffic == {"cityseg-predictor-00002": 100}


def _registered(client, name: str, champion: str, previous: str) -> None:
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source="gs://bucket/model", run_id=None)
    client.set_registered_model_alias(name, "champion", champion)
    client.set_registered_model_alias(name, "previous", previous)


def test_a_canary_that_never_gets_ready_is_rolled_back_with_the_champion(kserve_api, mlflow_uri, request):
    import mlflow

    host, api = kserve_api
    api.ready_after_reads = None
    client = mlflow.MlflowClient()
    name = f"deploy-{request.node.name[:30]}"
    _registered(client, name, champion="2", previous="1")
    config = _config(host, version="2", name=name, ready_timeout_s=0.3, tracking_uri=mlflow_uri)
    with pytest.raises(DeployError) as err:
        deploy(config)
    assert str(err.value) == (
        "canary revision cityseg-predictor-00002 of InferenceService kubeflow/cityseg (model v2) was not "
        f"Ready within 0.3s: PredictorReady=False: RevisionFailed {FAILURE}; Ready=False: RevisionFailed "
        f"{FAILURE}; traffic is back on cityseg-predictor-00001; @champion is back on v1 (revision "
        "cityseg-predictor-00002 is left without traffic)"
    )
    assert _patches(api)[-1] == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
    assert len(_patches(api)) == 2, "never promoted"
    aliases = client.get_registered_model(name).aliases
    assert (aliases["champion"], aliases["previous"]) == ("1", "2")
    reason = client.get_model_version(name, "2").tags["rollback_reason"]
    assert reason.startswith(
        f"deploy of v2 to kubeflow/cityseg failed: PredictorReady=False: RevisionFailed {FAILURE}"
    )


def test_a_champion_moved_by_someone_else_is_left_alone_on_rollback(kserve_api, mlflow_uri, request):
    import mlflow

    host, api = kserve_api
    api.ready_after_reads = None
    client = mlflow.MlflowClient()
    name = f"deploy-{request.node.name[:30]}"
    _registered(client, name, champion="3", previous="1")
    with pytest.raises(DeployError, match=r"@champion \(v3\) was left as it is$"):
        deploy(_config(host, version="2", name=name, ready_timeout_s=0.2, tracking_uri=mlflow_uri))
    aliases = client.get_registered_model(name).aliases
    assert (aliases["champion"], aliases["previous"]) == ("3", "1")


def test_a_champion_without_previous_stays_and_the_reason_says_why(kserve_api, mlflow_uri, request):
    import mlflow

    host, api = kserve_api
    api.ready_after_reads = None
    client = mlflow.MlflowClient()
    name = f"deploy-{request.node.name[:30]}"
    client.create_registered_model(name)
    client.create_model_version(name, source="gs://bucket/model", run_id=None)
    client.set_registered_model_alias(name, "champion", "1")
    with pytest.raises(DeployError) as err:
        deploy(_config(host, version="1", name=name, ready_timeout_s=0.2, tracking_uri=mlflow_uri))
    assert str(err.value).endswith(
        f"traffic is back on cityseg-predictor-00001; @champion stays on v1: "
        f"registered model '{name}' has no @previous version to roll back to"
    )


def test_a_storage_uri_predictor_is_pointed_at_the_versions_serving_folder(kserve_api):
    host, api = kserve_api
    container = api.obj["spec"]["predictor"]["containers"][0]
    container["args"][container["args"].index("--model") + 1] = "/mnt/models"
    container["env"].append({"name": "STORAGE_URI", "value": "gs://b/serving/6"})
    with pytest.raises(
        ValueError, match="the predictor loads STORAGE_URI, so the deploy step needs serving_dir"
    ):
        deploy(_config(host))
    assert _patches(api) == []
    deploy(_config(host, serving_dir="gs://b/serving"))
    (patched,) = _patches(api)[0]["spec"]["predictor"]["containers"]
    assert patched["args"][-2:] == ["--model", "/mnt/models"]
    assert patched["env"][-1] == {"name": "STORAGE_URI", "value": "gs://b/serving/7"}


def test_a_missing_inferenceservice_is_named_with_the_fix(kserve_api):
    host, api = kserve_api
    api.obj = None
    with pytest.raises(ValueError) as err:
        deploy(_config(host))
    assert str(err.value) == (
        "InferenceService kubeflow/cityseg does not exist: apply it first with "
        "`kubectl apply -k manifests/` (see README, Run on GKE)"
    )
    assert [method for method, *_ in api.requests] == ["GET"]


def test_an_api_refusal_names_the_call_and_the_api_message(kserve_api):
    host, api = kserve_api
    api.refuse = (403, 'inferenceservices.serving.kserve.io "cityseg" is forbidden: User "x" cannot get')
    with pytest.raises(KubeError) as err:
        deploy(_config(host))
    assert str(err.value) == (
        "get InferenceService kubeflow/cityseg: HTTP 403 Forbidden: "
        'inferenceservices.serving.kserve.io "cityseg" is forbidden: User "x" cannot get'
    )


@pytest.mark.parametrize("target", ["local", "kserve"])
def test_a_version_push_did_not_bless_is_not_deployed(kserve_api, target):
    host, api = kserve_api
    result = deploy(DeployConfig(version="", blessed=False, target=target, api_host=host))
    assert api.requests == []
    assert result.outputs() == ("", "", "")


def test_locally_it_only_reports_the_url_and_the_version(kserve_api):
    host, api = kserve_api
    result = deploy(DeployConfig(version="4", api_host=host))
    assert api.requests == []
    assert result.outputs() == ("http://127.0.0.1:8000", "4", "")
    assert result.model_ref == "models:/cityseg@champion"


@pytest.mark.parametrize(
    ("status", "generation", "expected"),
    [
        ({}, 1, (False, "the KServe controller has not reconciled generation 1 yet")),
        ({"observedGeneration": 2, "conditions": []}, 2, (False, "no Ready condition yet")),
        (
            {
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "Unknown", "reason": "Init"}],
            },
            2,
            (False, "Ready=Unknown: Init"),
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True"}],
                "components": {"predictor": {"latestCreatedRevision": "r2", "latestReadyRevision": "r1"}},
            },
            2,
            (False, "revision r2 is not ready yet (latest ready: r1)"),
        ),
        (ready_status(3, 2, 10, "u"), 3, (True, "Ready")),
    ],
)
def test_readiness_needs_the_new_generation_ready_and_its_revision_ready(status, generation, expected):
    assert rollout.readiness({"status": status}, generation) == expected


def test_traffic_lists_the_revisions_that_get_requests():
    isvc = {"status": ready_status(3, 2, 10, "u")}
    assert rollout.traffic(isvc) == {"cityseg-predictor-00002": 90, "cityseg-predictor-00003": 10}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"version": "v3"}, "version must be a registered model version number, got 'v3'"),
        ({"target": "gke"}, "target must be one of local, kserve, got 'gke'"),
        ({"service": "City_Seg"}, "service must be a Kubernetes name (DNS-1035 label), got 'City_Seg'"),
        ({"canary_traffic_percent": 0}, "canary_traffic_percent must be 1..100, got 0"),
        ({"ready_timeout_s": 0}, "ready_timeout_s must be positive, got 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(overrides, message):
    with pytest.raises(ValueError) as err:
        DeployConfig(**{"version": "1", **overrides})
    assert str(err.value) == message


def test_the_command_deploys_and_reports_the_traffic(kserve_api):
    host, api = kserve_api
    argv = ["deploy", "--version", "7", "--target", "kserve", "--namespace", "kubeflow", "--api-host", host]
    result = CliRunner().invoke(main, [*argv, "--poll-s", "0.01"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"cityseg v7 (models:/cityseg/7) served at {INTERNAL_URL}",
        "traffic: cityseg-predictor-00002 100%",
    ]
    api.obj = None
    result = CliRunner().invoke(main, [*argv, "--poll-s", "0.01"])
    assert result.exit_code == 1
    assert "Error: InferenceService kubeflow/cityseg does not exist" in result.output


def test_the_component_takes_every_parameter_without_a_default_on_the_push_image():
    parameters = inspect.signature(deploy_component.python_func).parameters
    assert all(p.default is inspect.Parameter.empty for p in parameters.values())
    assert list(parameters) == [
        "blessed",
        "version",
        "registered_model",
        "target",
        "service",
        "namespace",
        "canary_traffic_percent",
        "ready_timeout_s",
        "serving_dir",
        "mlflow_tracking_uri",
    ]
    assert deploy_component.component_spec.implementation.container.image == container_images.image("push")
    assert list(deploy_component.component_spec.outputs) == ["url", "version", "traffic"]
