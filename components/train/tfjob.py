"""Multi-worker training on the cluster as a Kubeflow TFJob (kubeflow.org/v1): the job object.

The training operator gives every worker pod a `TF_CONFIG`; the pods run the same `cityseg train`
entry point as a local run, which picks MultiWorkerMirroredStrategy from it. Worker 0 is the chief
and writes the model. `tfjob_client` submits the job (and adopts or replaces the one a retried task
finds) and waits for it.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

GROUP, VERSION = "kubeflow.org", "v1"
# Exit codes 130/137/143 (signals, e.g. a preempted spot node) are retried, code 1 (a bug) is not.
RESTART_POLICY = "ExitCode"
# No Istio sidecar (it keeps a finished worker pod alive); the GCS FUSE sidecar for the checkpoint volume.
POD_ANNOTATIONS = {"sidecar.istio.io/inject": "false", "gke-gcsfuse/volumes": "true"}
# Hardened pods (tests/manifests checks every workload): non-root, no privilege escalation, no
# capabilities, the runtime's seccomp profile and a read-only root filesystem; what training writes
# outside the checkpoint volume (its work dir, Keras and matplotlib caches, temp files) goes to
# emptyDir volumes on $HOME and /tmp.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
SCRATCH = {"home": "/home/cityseg", "tmp": "/tmp"}


@dataclass(frozen=True)
class TFJobSpec:
    """What the TFJob runs and on what: N identical GPU workers of one image."""

    name: str
    image: str
    command: Sequence[str]
    workers: int
    gpus_per_worker: int = 1
    cpu: str = "4"
    memory: str = "16Gi"
    namespace: str = "kubeflow"
    backoff_limit: int = 3
    gpu_node_label: str = "cloud.google.com/gke-accelerator"
    gpu_node_value: str = "nvidia-l4"
    mlflow_secret: str = "mlflow-credentials"
    gcs_secret: str = "gcs-credentials"
    gcs_key_dir: str = "/var/secrets/google"
    checkpoint_claim: str = "cityseg-checkpoints"
    checkpoint_mount: str = "/mnt/checkpoints"
    env: dict[str, str] = field(default_factory=dict)


def _container(spec: TFJobSpec) -> dict:
    secret_env = [
        ("MLFLOW_TRACKING_URI", "tracking-uri", False),
        ("MLFLOW_TRACKING_USERNAME", "username", True),
        ("MLFLOW_TRACKING_PASSWORD", "password", True),
    ]
    env = [
        {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": spec.mlflow_secret, "key": key, "optional": optional}},
        }
        for name, key, optional in secret_env
    ]
    env.append({"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{spec.gcs_key_dir}/key.json"})
    env += [{"name": name, "value": value} for name, value in sorted(spec.env.items())]
    resources = {"cpu": spec.cpu, "memory": spec.memory}
    limits = {**resources}
    if spec.gpus_per_worker:
        limits["nvidia.com/gpu"] = str(spec.gpus_per_worker)
    return {
        # The training operator looks for the container named "tensorflow" to inject TF_CONFIG.
        "name": "tensorflow",
        "image": spec.image,
        "command": list(spec.command),
        "env": env,
        "resources": {"requests": resources, "limits": limits},
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "gcs-credentials", "mountPath": spec.gcs_key_dir, "readOnly": True},
            {"name": "checkpoints", "mountPath": spec.checkpoint_mount},
            *({"name": name, "mountPath": path} for name, path in SCRATCH.items()),
        ],
    }


def build_tfjob(spec: TFJobSpec) -> dict:
    """The TFJob object for `spec`.

    Raises:
        ValueError: no workers or a negative GPU count.
    """
    if spec.workers < 1:
        raise ValueError(f"a TFJob needs at least 1 worker, got {spec.workers}")
    if spec.gpus_per_worker < 0:
        raise ValueError(f"gpus_per_worker must be at least 0, got {spec.gpus_per_worker}")
    pod_spec = {
        # Workers never call the Kubernetes API: the operator hands them TF_CONFIG.
        "automountServiceAccountToken": False,
        "securityContext": POD_SECURITY,
        "containers": [_container(spec)],
        "volumes": [
            {"name": "gcs-credentials", "secret": {"secretName": spec.gcs_secret}},
            {"name": "checkpoints", "persistentVolumeClaim": {"claimName": spec.checkpoint_claim}},
            *({"name": name, "emptyDir": {}} for name in SCRATCH),
        ],
    }
    if spec.gpus_per_worker:
        pod_spec["nodeSelector"] = {spec.gpu_node_label: spec.gpu_node_value}
        pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TFJob",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {"app.kubernetes.io/part-of": "cityseg"},
        },
        "spec": {
            "runPolicy": {"backoffLimit": spec.backoff_limit, "cleanPodPolicy": "Running"},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": spec.workers,
                    "restartPolicy": RESTART_POLICY,
                    "template": {"metadata": {"annotations": POD_ANNOTATIONS}, "spec": pod_spec},
                }
            },
        },
    }
