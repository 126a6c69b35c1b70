"""Find every pod spec in Kubernetes documents, whatever the kind, and list what a hardened pod lacks.

A pod spec is any mapping with a `containers` list: Deployment and StatefulSet templates, TFJob
replica templates and a KServe predictor all hold one, so a new kind of workload is found without
teaching the walker about it.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
POD_SHARED = ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile")
# "Kind/name" of the workloads that call the Kubernetes API and so keep their token: none today.
USES_KUBERNETES_API: frozenset[str] = frozenset()


def documents(path: Path) -> list[dict]:
    """The non-empty YAML documents of `path`."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest_documents() -> list[tuple[str, dict]]:
    """(file relative to manifests/, document) for every Kubernetes object under manifests/."""
    found = []
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        for doc in documents(path):
            if isinstance(doc, dict) and "kind" in doc:
                found.append((str(path.relative_to(MANIFESTS)), doc))
    return found


def pod_specs(node, where: str = "") -> Iterator[tuple[str, dict]]:
    """(path inside the document, pod spec) for every mapping under `node` that has a containers list."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield where, node
        for key, value in node.items():
            if key != "containers":
                yield from pod_specs(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from pod_specs(value, f"{where}[{index}]")


def workloads() -> list[tuple[str, dict]]:
    """("file: Kind/name spec.path", pod spec) for every pod spec under manifests/."""
    found = []
    for file, doc in manifest_documents():
        # A StatefulSet's controller adds a volume per claim template to each pod.
        claims = [
            {"name": claim["metadata"]["name"], "persistentVolumeClaim": {}}
            for claim in doc.get("spec", {}).get("volumeClaimTemplates", [])
        ]
        for where, spec in pod_specs(doc.get("spec", {}), "spec"):
            pod = {**spec, "volumes": [*spec.get("volumes", []), *claims]}
            found.append((f"{file}: {doc['kind']}/{doc['metadata']['name']} {where}", pod))
    return found


def _effective(pod: dict, container: dict) -> dict:
    """The container's security context with the pod-level settings it inherits."""
    inherited = {key: value for key, value in pod.get("securityContext", {}).items() if key in POD_SHARED}
    return {**inherited, **container.get("securityContext", {})}


def _secret_names(container: dict) -> set[str]:
    return {env["name"] for env in container.get("env", []) if "secretKeyRef" in env.get("valueFrom", {})}


def container_violations(pod: dict, container: dict) -> list[str]:
    """What `container` of `pod` lacks of the hardened settings (empty when it has them all)."""
    name = container.get("name", "?")
    context = _effective(pod, container)
    wanted = {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": {"drop": ["ALL"]},
    }
    problems = [
        f"{name}: securityContext.{key} is {context.get(key)!r}, not {value!r}"
        for key, value in wanted.items()
        if context.get(key) != value
    ]
    scratch = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
    mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
    if mounts.get("/tmp") not in scratch:
        problems.append(f"{name}: /tmp is not an emptyDir volume (the root filesystem is read-only)")
    known = {volume["name"] for volume in pod.get("volumes", [])}
    problems += [f"{name}: mounts unknown volume {v!r}" for v in mounts.values() if v not in known]
    resources = container.get("resources", {})
    problems += [
        f"{name}: no {kind} {resource}"
        for kind in ("requests", "limits")
        for resource in ("cpu", "memory")
        if resource not in resources.get(kind, {})
    ]
    argv = " ".join([*container.get("command", []), *container.get("args", [])])
    problems += [
        f"{name}: secret {secret} is on the command line"
        for secret in sorted(_secret_names(container))
        if re.search(rf"\$[({{]?{re.escape(secret)}\b", argv)
    ]
    return problems


def pod_violations(workload: str, pod: dict) -> list[str]:
    """What the pod `workload` and each of its containers lack of the hardened settings."""
    problems = []
    # `workload` reads "file: Kind/name spec.path".
    uses_api = workload.split(": ", 1)[-1].split(" ", maxsplit=1)[0] in USES_KUBERNETES_API
    if not uses_api and pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false (no Kubernetes API is used)")
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        problems += container_violations(pod, container)
    return problems
