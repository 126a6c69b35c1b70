"""Every workload under manifests/ is hardened (issue 11): found generically, so none can be forgotten."""

import os
import re
from pathlib import Path

import pytest

from cityseg.components.train.tfjob import TFJobSpec, build_tfjob
from tests.manifests.workloads import MANIFESTS, documents, pod_violations, workloads

WORKLOADS = workloads()
HARDENED_CONTAINER = {
    "name": "app",
    "image": "x",
    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    },
    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
}
HARDENED_POD = {
    "automountServiceAccountToken": False,
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [HARDENED_CONTAINER],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def test_the_walker_finds_every_workload_whatever_its_kind():
    kinds = sorted(label.split(": ")[1].split(" ")[0] for label, _ in WORKLOADS)
    assert kinds == [
        "Deployment/cityseg-app",
        "Deployment/mlflow",
        "InferenceService/cityseg",
        "StatefulSet/mlflow-postgres",
        "TFJob/cityseg-train-manual",
    ]


@pytest.mark.parametrize(("workload", "pod"), WORKLOADS, ids=[label for label, _ in WORKLOADS])
def test_every_workload_is_hardened(workload, pod):
    assert pod_violations(workload, pod) == []


def test_a_hardened_pod_passes_and_each_missing_setting_is_named():
    assert pod_violations("f: Deployment/x spec", HARDENED_POD) == []
    container = {**HARDENED_CONTAINER, "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    container["resources"] = {"requests": {"cpu": "1"}}
    container["command"] = ["sh", "-c", "serve --password $(DB_PASSWORD)"]
    container["env"] = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}}]
    pod = {"containers": [container], "securityContext": {"seccompProfile": {"type": "Unconfined"}}}
    assert pod_violations("f: Deployment/x spec", pod) == [
        "automountServiceAccountToken is not false (no Kubernetes API is used)",
        "app: securityContext.allowPrivilegeEscalation is None, not False",
        "app: securityContext.runAsNonRoot is None, not True",
        "app: securityContext.readOnlyRootFilesystem is None, not True",
        "app: securityContext.seccompProfile is {'type': 'Unconfined'}, not {'type': 'RuntimeDefault'}",
        "app: securityContext.capabilities is {'drop': ['NET_RAW']}, not {'drop': ['ALL']}",
        "app: /tmp is not an emptyDir volume (the root filesystem is read-only)",
        "app: mounts unknown volume 'data'",
        "app: no requests memory",
        "app: no limits cpu",
        "app: no limits memory",
        "app: secret DB_PASSWORD is on the command line",
    ]


def test_container_settings_override_the_pod_ones():
    container = {**HARDENED_CONTAINER, "securityContext": {**HARDENED_CONTAINER["securityContext"]}}
    container["securityContext"]["runAsNonRoot"] = False
    assert pod_violations("f: Deployment/x spec", {**HARDENED_POD, "containers": [container]}) == [
        "app: securityContext.runAsNonRoot is False, not True"
    ]


def test_the_tfjob_the_train_step_builds_is_hardened_too():
    job = build_tfjob(TFJobSpec(name="j", image="i", command=["cityseg", "train"], workers=2))
    pod = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod_violations("tfjob: TFJob/j spec", pod) == []


def _mlflow_deployment() -> dict:
    (deployment,) = [d for d in documents(MANIFESTS / "mlflow" / "mlflow.yaml") if d["kind"] == "Deployment"]
    return deployment


def _mlflow_container() -> dict:
    return _mlflow_deployment()["spec"]["template"]["spec"]["containers"][0]


def test_the_database_password_reaches_mlflow_only_through_the_environment():
    container = _mlflow_container()
    argv = [*container["command"], *container["args"]]
    assert argv[:2] == ["mlflow", "server"], "no shell: nothing to expand the password into argv"
    assert not [arg for arg in argv if "DB_" in arg or "postgresql" in arg or "store-uri" in arg]
    names = [env["name"] for env in container["env"]]
    uri = next(env["value"] for env in container["env"] if env["name"] == "MLFLOW_BACKEND_STORE_URI")
    assert uri == "postgresql://$(DB_USER):$(DB_PASSWORD)@$(DB_HOST):5432/$(DB_NAME)"
    # The kubelet expands $(VAR) only from variables defined earlier in the list.
    for variable in re.findall(r"\$\((\w+)\)", uri):
        assert names.index(variable) < names.index("MLFLOW_BACKEND_STORE_URI"), variable


@pytest.mark.slow
def test_mlflow_started_as_in_the_manifest_shows_the_store_uri_to_no_process(tmp_path):
    """`ps` lists argv: a store URI given through the environment must reach no process's argv."""
    from tests.conftest import BIN, free_port, start_server, stop_server

    container = _mlflow_container()
    port = free_port()
    args = [{"0.0.0.0": "127.0.0.1", "5000": str(port)}.get(arg, arg) for arg in container["args"]]
    marker = f"s3cret-{port}"
    (tmp_path / marker).mkdir()
    env = {
        **os.environ,
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / marker / 'mlflow.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"),
    }
    argv = [str(BIN / container["command"][0]), *container["command"][1:], *args]
    server = start_server(argv, f"http://127.0.0.1:{port}/health", tmp_path / "mlflow.log", env=env)
    try:
        shown = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                shown.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
        assert any(f"--port {port}" in line for line in shown)
        assert not [line for line in shown if marker in line]
        assert (tmp_path / marker / "mlflow.db").is_file(), "the server used the store from the environment"
    finally:
        stop_server(server)


def _selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label-selector semantics for matchLabels and matchExpressions (In, NotIn, Exists)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
        }[operator]
        if not ok:
            return False
    return True


# The labels each controller puts on the pods it creates, beside the template's own.
POD_LABELS = {
    "KFP task pod": {"pipelines.kubeflow.org/v2_component": "true", "workflows.argoproj.io/workflow": "r"},
    "TFJob worker": {
        "training.kubeflow.org/job-name": "cityseg-train-x",
        "training.kubeflow.org/replica-type": "worker",
    },
    "InferenceService predictor": {"serving.kserve.io/inferenceservice": "cityseg", "component": "predictor"},
    "web app": {"app.kubernetes.io/name": "cityseg-app"},
    "postgres": {"app.kubernetes.io/name": "mlflow-postgres"},
    "another InferenceService": {"serving.kserve.io/inferenceservice": "other"},
}


def _allowed_peers(policy_name: str, port: int) -> set[str]:
    (policy,) = [
        d
        for d in documents(MANIFESTS / "mlflow" / "networkpolicy.yaml")
        if d["metadata"]["name"] == policy_name
    ]
    allowed = set()
    for rule in policy["spec"]["ingress"]:
        assert [p["port"] for p in rule["ports"]] == [port]
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, "same namespace only"
            allowed |= {name for name, labels in POD_LABELS.items() if _selects(peer["podSelector"], labels)}
    return allowed


def test_only_pipeline_and_serving_pods_reach_mlflow_and_only_mlflow_reaches_postgres():
    assert _allowed_peers("mlflow-clients", 5000) == {
        "KFP task pod",
        "TFJob worker",
        "InferenceService predictor",
    }
    assert _allowed_peers("mlflow-postgres-clients", 5432) == set()
    (policy,) = [
        d
        for d in documents(MANIFESTS / "mlflow" / "networkpolicy.yaml")
        if d["metadata"]["name"] == "mlflow-postgres-clients"
    ]
    mlflow_pod = _mlflow_deployment()["spec"]["template"]["metadata"]["labels"]
    assert _selects(policy["spec"]["ingress"][0]["from"][0]["podSelector"], mlflow_pod)
    for name, target in (
        ("mlflow-clients", mlflow_pod),
        ("mlflow-postgres-clients", {"app.kubernetes.io/name": "mlflow-postgres"}),
    ):
        (doc,) = [
            d for d in documents(MANIFESTS / "mlflow" / "networkpolicy.yaml") if d["metadata"]["name"] == name
        ]
        assert _selects(doc["spec"]["podSelector"], target) and doc["spec"]["policyTypes"] == ["Ingress"]
