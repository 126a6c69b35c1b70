"""The KServe InferenceService and the web app: valid against KServe's own CRD schema and Kubernetes'.

The schema is KServe's InferenceService CRD (tests/data/kserve/SOURCE.md names the file and commit).
Unknown fields are refused, as `kubectl apply --validate=strict` does, so a misspelt field fails here
rather than being dropped silently by the API server.
"""

import copy
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.manifests.workloads import MANIFESTS, documents

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "kserve" / "inferenceservice-v1beta1.schema.json"
KUBERNETES_VERSION = "1.33.0"
# Fields of a KServe component that are not PodSpec fields.
KSERVE_FIELDS = {
    "minReplicas",
    "maxReplicas",
    "containerConcurrency",
    "scaleMetric",
    "scaleMetricType",
    "scaleTarget",
    "timeout",
    "canaryTrafficPercent",
    "labels",
    "annotations",
    "autoScaling",
    "deploymentStrategy",
    "logger",
    "batcher",
    "storageUris",
    "workerSpec",
}
OVERLAYS = ("gpu", "storage-uri")


def _strict(schema):
    """The schema with unknown fields refused wherever the CRD does not preserve them."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        preserves = schema.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in schema and "additionalProperties" not in schema and not preserves:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def validator():
    schema = _strict(json.loads(SCHEMA_FILE.read_text()))
    return jsonschema.Draft7Validator(schema)


def _errors(validator, doc: dict) -> list[str]:
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc))


def _isvc(docs: list[dict]) -> dict:
    (isvc,) = [doc for doc in docs if doc.get("kind") == "InferenceService"]
    return isvc


def _rendered(overlay: str) -> list[dict]:
    """`kubectl kustomize` of manifests/overlays/OVERLAY (or of manifests/ itself for "")."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (its built-in kustomize) is not installed")
    folder = MANIFESTS / "overlays" / overlay if overlay else MANIFESTS
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


BASE = _isvc(documents(MANIFESTS / "serving" / "inferenceservice.yaml"))


def test_the_schema_is_kserves_inferenceservice_crd():
    schema = json.loads(SCHEMA_FILE.read_text())
    predictor = schema["properties"]["spec"]["properties"]["predictor"]["properties"]
    assert {"canaryTrafficPercent", "minReplicas", "maxReplicas", "containers"} <= set(predictor)
    assert "latestRolledoutRevision" in json.dumps(schema["properties"]["status"])


def test_the_inferenceservice_validates_against_the_crd(validator):
    assert BASE["apiVersion"] == "serving.kserve.io/v1beta1"
    assert _errors(validator, BASE) == []


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (
            ("spec", "predictor", "minReplica"),
            1,
            "Additional properties are not allowed ('minReplica' was unexpected)",
        ),
        (("spec", "predictor", "maxReplicas"), "4", "'4' is not of type 'integer'"),
        (
            ("spec", "predictor", "containers", 0, "readinessProbe", "httpGet", "paht"),
            "/",
            "('paht' was unexpected)",
        ),
    ],
)
def test_the_crd_schema_refuses_misspelt_and_mistyped_fields(validator, path, value, error):
    doc = copy.deepcopy(BASE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (message,) = _errors(validator, doc)
    assert error in message


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_a_valid_inferenceservice(validator, overlay):
    assert _errors(validator, _isvc(_rendered(overlay))) == []


def _pod_of(isvc: dict) -> dict:
    predictor = isvc["spec"]["predictor"]
    spec = {key: value for key, value in predictor.items() if key not in KSERVE_FIELDS}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": spec}


def test_the_predictor_pod_validates_with_kubernetes_validate():
    kubernetes_validate.validate(_pod_of(BASE), KUBERNETES_VERSION, strict=True)


def test_the_predictor_runs_cityseg_serve_on_the_champion_with_v2_health_probes():
    predictor = BASE["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == "ghcr.io/cityseg/cityseg-serve:0.1.0"
    args = container["args"]
    assert args[args.index("--model") + 1] == "models:/cityseg@champion"
    assert args[args.index("--objects-model") + 1] == "models:/cityseg-objects@champion"
    port = container["ports"][0]["containerPort"]
    assert args[args.index("--port") + 1] == str(port)
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": port}
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    secrets = {
        env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env
    }
    assert secrets["MLFLOW_TRACKING_URI"] == {"name": "mlflow-credentials", "key": "tracking-uri"}
    assert BASE["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"


def test_the_gpu_overlay_asks_for_one_gpu_on_the_gpu_pool_with_the_cuda_image():
    predictor = _isvc(_rendered("gpu"))["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["image"] == "ghcr.io/cityseg/cityseg-serve-gpu:0.1.0"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert predictor["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert container["securityContext"] == BASE["spec"]["predictor"]["containers"][0]["securityContext"]


def test_the_storage_uri_overlay_loads_the_pushed_folder_from_mnt_models():
    (container,) = _isvc(_rendered("storage-uri"))["spec"]["predictor"]["containers"]
    assert container["args"][container["args"].index("--model") + 1] == "/mnt/models"
    # KServe's storage initializer downloads STORAGE_URI of the kserve-container to /mnt/models.
    assert {"name": "STORAGE_URI", "value": "gs://YOUR_BUCKET/serving/1"} in container["env"]


def test_the_web_app_talks_to_the_inferenceservice_inside_the_cluster():
    docs = documents(MANIFESTS / "serving" / "webapp.yaml")
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    (service,) = [doc for doc in docs if doc["kind"] == "Service"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["cityseg", "app"]
    namespace = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["namespace"]
    api = container["args"][container["args"].index("--api") + 1]
    assert api == f"http://{BASE['metadata']['name']}.{namespace}.svc.cluster.local"
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_whole_kustomization_renders_into_one_namespace_with_the_pinned_tags(validator):
    docs = _rendered("")
    namespaced = [doc for doc in docs if doc["kind"] != "PersistentVolume"]
    assert {doc["metadata"].get("namespace") for doc in namespaced} == {"kubeflow"}
    assert _errors(validator, _isvc(docs)) == []
    for doc in docs:
        if doc["kind"] != "InferenceService":
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    (container,) = _isvc(docs)["spec"]["predictor"]["containers"]
    assert container["image"] == "ghcr.io/cityseg/cityseg-serve:0.1.0"
