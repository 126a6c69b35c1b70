"""The Kubernetes manifests validate against the Kubernetes schemas (CRDs and KFP API bodies excepted)."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cityseg.pipelines.client import validate_cron
from cityseg.pipelines.local import pipeline_inputs

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
KUBERNETES_VERSION = "1.33.0"
# Custom resources and kustomize's own files have no schema in kubernetes-validate.
NOT_KUBERNETES = {"TFJob", "InferenceService", "Kustomization"}
FILES = sorted(MANIFESTS.rglob("*.yaml"))


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(MANIFESTS)))
def test_manifests_validate(path):
    for doc in _documents(path):
        if "kind" not in doc or doc["kind"] in NOT_KUBERNETES:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_kustomization_resource_exists():
    for kustomization in MANIFESTS.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text())["resources"]:
            assert (kustomization.parent / resource).exists(), f"{kustomization}: {resource}"


def _all_documents() -> list[dict]:
    return [doc for path in FILES for doc in _documents(path)]


def test_secrets_are_referenced_never_inlined():
    assert not [doc for doc in _all_documents() if doc.get("kind") == "Secret"]
    text = (MANIFESTS / "mlflow" / "mlflow.yaml").read_text()
    assert "secretKeyRef: {name: mlflow-postgres, key: password}" in text
    assert "MLFLOW_ARTIFACTS_DESTINATION" in text and "gs://" in text


def test_recurring_run_example_uses_a_valid_cron_and_known_parameters():
    body = yaml.safe_load((MANIFESTS / "kfp" / "recurring-run.yaml").read_text())
    assert validate_cron(body["trigger"]["cron_schedule"]["cron"]) == "0 0 3 * * 1"
    assert set(body["runtime_config"]["parameters"]) <= set(pipeline_inputs())
