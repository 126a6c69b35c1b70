"""A KFP task pod on GKE: credentials from Secrets, and hardening as far as kfp-kubernetes 2.17.0 goes.

Set here: the container runs as uid/gid 1000 and never as root (`kubernetes.set_security_context`;
the KFP backend adds `allowPrivilegeEscalation: false`, drops every capability and sets the
RuntimeDefault seccomp profile by itself), and every task's CPU and memory limits equal its
requests, so a task cannot starve its node's neighbours and is never evicted first.

Not settable from the pipeline with kfp-kubernetes 2.17.0 (docs/gke.md says how to get each): a
read-only root filesystem (the KFP launcher also writes the artifacts' local copies under
/gcs, /minio or /s3 on it), `automountServiceAccountToken: false` (the KFP launcher in every task
pod uses the token to reach the KFP API and ML Metadata), fsGroup and other pod-level fields, and
the pod's service account (chosen when the run is submitted).
"""

from kfp import kubernetes

# The uid and gid every image runs as (images/*/Dockerfile), as in manifests/.
RUN_AS = 1000


def use_credentials(task, cluster):
    """MLflow and GCS credentials from Kubernetes Secrets, never from the pipeline spec.

    `cluster` is a `cityseg.pipelines.steps.Cluster`: the Secrets' names and the key's mount folder.
    """
    kubernetes.use_secret_as_env(
        task, secret_name=cluster.mlflow_secret, secret_key_to_env={"tracking-uri": "MLFLOW_TRACKING_URI"}
    )
    # A server without authentication has no username/password keys.
    kubernetes.use_secret_as_env(
        task,
        secret_name=cluster.mlflow_secret,
        secret_key_to_env={"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"},
        optional=True,
    )
    if cluster.gcs_secret is None:
        return task
    kubernetes.use_secret_as_volume(task, secret_name=cluster.gcs_secret, mount_path=cluster.gcs_key_dir)
    return task.set_env_variable("GOOGLE_APPLICATION_CREDENTIALS", f"{cluster.gcs_key_dir}/key.json")


def harden(task, resources: tuple[str, str]):
    """Request and limit `resources` (CPU, memory), and run the task's container as RUN_AS, not root."""
    cpu, memory = resources
    task.set_cpu_request(cpu).set_memory_request(memory).set_cpu_limit(cpu).set_memory_limit(memory)
    return kubernetes.set_security_context(
        task, run_as_user=RUN_AS, run_as_group=RUN_AS, run_as_non_root=True
    )
