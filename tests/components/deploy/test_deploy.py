"""The deploy step on KServe, against a stand-in of the Kubernetes API and real /metrics (conftest.py)."""

import copy
import inspect

import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import container_images
from cityseg.components.deploy import rollout
from cityseg.components.deploy.component import deploy as deploy_component
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.deploy.core import deploy
from cityseg.components.deploy.kube import KubeError
from tests.components.deploy.builders import config_for, patches
from tests.components.deploy.conftest import committed_inferenceservice, ready_status, revision

INTERNAL_URL = "http://cityseg.kubeflow.svc.cluster.local"


def _expected_containers(api, model_ref: str) -> list[dict]:
    containers = copy.deepcopy(committed_inferenceservice()["spec"]["predictor"]["containers"])
    args = containers[0]["args"]
    args[args.index("--model") + 1] = model_ref
    containers[0]["ports"] = api.obj["spec"]["predictor"]["containers"][0]["ports"]
    return containers


def _pod_lists(api) -> list[str]:
    return [
        path.split("labelSelector=")[1].split("&")[0] for method, path, *_ in api.requests if "/pods?" in path
    ]


def test_a_canary_that_soaks_within_bounds_is_promoted(kserve_api, predictors):
    host, api = kserve_api
    result = deploy(config_for(host, soak_s=0.05, soak_min_requests=20))
    first, promote = patches(api)
    assert first == {
        "metadata": {"annotations": {"cityseg.io/model-version": "7"}},
        "spec": {
            "predictor": {
                "canaryTrafficPercent": 10,
                "containers": _expected_containers(api, "models:/cityseg/7"),
            }
        },
    }
    assert promote == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    methods = [method for method, *_ in api.requests]
    assert methods[:2] == ["GET", "PATCH"] and methods.count("PATCH") == 2
    between = methods[2 : methods.index("PATCH", 2)]
    assert len(between) >= 2 and set(between) == {"GET"}, "waited for the canary before promoting it"
    # The soak read both revisions' pods at its start and at its end, after the canary was Ready.
    selector = "serving.knative.dev%2Frevision%3D"
    assert _pod_lists(api) == [f"{selector}{revision(2)}", f"{selector}{revision(1)}"] * 2
    assert {content_type for method, _, content_type, _ in api.requests if method == "PATCH"} == {
        "application/merge-patch+json"
    }
    assert (result.target, result.url, result.version) == ("kserve", INTERNAL_URL, "7")
    assert result.traffic == {"cityseg-predictor-00002": 100}
    assert result.outputs() == (INTERNAL_URL, "7", "cityseg-predictor-00002=100")
    # Only the model changed: resources, probes and security settings are the live object's.
    live = api.obj["spec"]["predictor"]
    assert live["containers"] == _expected_containers(api, "models:/cityseg/7")
    assert "canaryTrafficPercent" not in live


def test_deploying_the_version_already_served_changes_nothing(kserve_api):
    host, api = kserve_api
    result = deploy(config_for(host, version="6"))
    assert patches(api) == []
    assert result.outputs() == (INTERNAL_URL, "6", "cityseg-predictor-00001=100")


def test_100_percent_rolls_out_at_once(kserve_api):
    host, api = kserve_api
    result = deploy(config_for(host, canary_traffic_percent=100))
    (patch,) = patches(api)
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] is None
    assert result.traffic == {"cityseg-predictor-00002": 100}


def test_a_storage_uri_predictor_is_pointed_at_the_versions_serving_folder(kserve_api):
    host, api = kserve_api
    container = api.obj["spec"]["predictor"]["containers"][0]
    container["args"][container["args"].index("--model") + 1] = "/mnt/models"
    container["env"].append({"name": "STORAGE_URI", "value": "gs://b/serving/6"})
    with pytest.raises(
        ValueError, match="the predictor loads STORAGE_URI, so the deploy step needs serving_dir"
    ):
        deploy(config_for(host))
    assert patches(api) == []
    deploy(config_for(host, serving_dir="gs://b/serving"))
    (patched,) = patches(api)[0]["spec"]["predictor"]["containers"]
    assert patched["args"][patched["args"].index("--model") + 1] == "/mnt/models"
    assert patched["env"][-1] == {"name": "STORAGE_URI", "value": "gs://b/serving/7"}


def test_a_missing_inferenceservice_is_named_with_the_fix(kserve_api):
    host, api = kserve_api
    api.obj = None
    with pytest.raises(ValueError) as err:
        deploy(config_for(host))
    assert str(err.value) == (
        "InferenceService kubeflow/cityseg does not exist: apply it first with "
        "`kubectl apply -k manifests/` (see docs/gke.md)"
    )
    assert [method for method, *_ in api.requests] == ["GET"]


def test_an_api_refusal_names_the_call_and_the_api_message(kserve_api):
    host, api = kserve_api
    api.refuse = (403, 'inferenceservices.serving.kserve.io "cityseg" is forbidden: User "x" cannot get')
    with pytest.raises(KubeError) as err:
        deploy(config_for(host))
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
    result = CliRunner().invoke(
        main, [*argv, "--poll-s", "0.01", "--soak-s", "0", "--soak-min-requests", "0"]
    )
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
