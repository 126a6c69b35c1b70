"""The train step's door to the Kubernetes API for its TFJob: submit it, adopt or replace a leftover, wait.

The retry rule. The job's name is fixed per KFP run, so a retried train task (a preempted GPU node)
finds the job its earlier attempt created, and the create answers 409 AlreadyExists:
- a job that has not finished (Created, Running, Restarting, Suspended) is adopted: the task waits
  for it again, and its workers keep going;
- a job that has finished, Succeeded or Failed, is replaced: deleted in the foreground (its pods go
  first) with the uid and resourceVersion it was judged by as preconditions (a 409 Conflict means
  it changed meanwhile: it is read and judged again), waited for until a GET answers 404, and
  created again.
Either way the workers resume from the checkpoints under the run's folder on the shared volume.
The condition types and "finished" are the Training Operator's (pkg/apis/kubeflow.org/v1/
common_types.go and pkg/util/status.go at v1.9.0; see tests/data/training-operator/SOURCE.md).
"""

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from cityseg.components.train.tfjob import GROUP, VERSION

log = logging.getLogger(__name__)

PLURAL = "tfjobs"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The operator's finished conditions (pkg/util/status.go IsFinished: IsSucceeded || IsFailed).
FINISHED = ("Failed", "Succeeded")


def job_state(tfjob: dict) -> tuple[str, str]:
    """(state, message) of the job as the operator sees it.

    Succeeded or Failed once either condition is True anywhere in the list (the operator's
    IsFinished), else the latest True condition (Created, Running, Restarting, Suspended), else Pending.
    """
    conditions = [c for c in (tfjob.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    for finished in FINISHED:
        for condition in conditions:
            if condition.get("type") == finished:
                return finished, condition.get("message", "")
    if not conditions:
        return "Pending", "waiting for the training operator"
    latest = conditions[-1]
    return latest.get("type", "Unknown"), latest.get("message", "")


def current_namespace(default: str = "kubeflow") -> str:
    """The namespace of the pod this runs in (KFP runs the train task in the profile namespace)."""
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return default


class TFJobError(RuntimeError):
    """The TFJob failed or did not finish in time, or the API refused a call; the message says which."""


def _api_error(what: str, err) -> TFJobError:
    try:
        message = json.loads(err.body)["message"]
    except (ValueError, KeyError, TypeError):
        message = str(err.body or "").strip()[:300]
    return TFJobError(f"{what}: HTTP {err.status} {err.reason}: {message}")


def _get(api, namespace: str, name: str) -> dict | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise _api_error(f"get TFJob {namespace}/{name}", err) from err


def _delete(api, job: dict) -> bool:
    """Delete `job` as it was read (uid and resourceVersion preconditions); False on a 409 Conflict."""
    from kubernetes.client import V1DeleteOptions, V1Preconditions
    from kubernetes.client.exceptions import ApiException

    meta = job["metadata"]
    options = V1DeleteOptions(
        propagation_policy="Foreground",
        preconditions=V1Preconditions(uid=meta.get("uid"), resource_version=meta.get("resourceVersion")),
    )
    try:
        api.delete_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], body=options
        )
    except ApiException as err:
        if err.status == 409:
            return False
        if err.status == 404:
            return True
        raise _api_error(f"delete TFJob {meta['namespace']}/{meta['name']}", err) from err
    return True


def _wait_gone(api, namespace: str, name: str, timeout_s: float, poll_s: float, clock) -> None:
    deadline = clock() + timeout_s
    while _get(api, namespace, name) is not None:
        if clock() >= deadline:
            raise TFJobError(f"TFJob {namespace}/{name} was deleted but still exists after {timeout_s:.0f}s")
        time.sleep(poll_s)


def submit(api, body: dict, poll_s: float = 5.0, gone_timeout_s: float = 600.0, clock=time.monotonic) -> str:
    """Create the TFJob `body`, or adopt or replace the one an earlier attempt left (see the module doc).

    Returns:
        "created", "adopted" or "replaced".
    Raises:
        TFJobError: the API refused a call, or a deleted job did not go away within `gone_timeout_s`.
    """
    from kubernetes.client.exceptions import ApiException

    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    replaced = False
    # A few rounds: each 409 means someone changed the job between our read and our write.
    for _ in range(5):
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
            return "replaced" if replaced else "created"
        except ApiException as err:
            if err.status != 409:
                raise _api_error(f"create TFJob {namespace}/{name}", err) from err
        existing = _get(api, namespace, name)
        if existing is None:
            continue
        state, message = job_state(existing)
        if existing["metadata"].get("deletionTimestamp") is None and state not in FINISHED:
            log.info("TFJob %s/%s from an earlier attempt is %s: adopting it", namespace, name, state)
            return "adopted"
        if existing["metadata"].get("deletionTimestamp") is None:
            log.info(
                "TFJob %s/%s from an earlier attempt %s (%s): replacing it", namespace, name, state, message
            )
            if not _delete(api, existing):
                continue
        _wait_gone(api, namespace, name, gone_timeout_s, poll_s, clock)
        replaced = True
    raise TFJobError(f"TFJob {namespace}/{name} kept changing while it was being replaced; try again")


def run_tfjob(
    body: dict,
    api=None,
    timeout_s: float = 24 * 3600,
    poll_s: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Submit the TFJob (created, adopted or replaced), log each change of its state, return when it succeeds.

    Raises:
        TFJobError: the job failed (with the operator's message), did not finish within `timeout_s`,
            or the API refused a call.
    """
    if api is None:
        from kubernetes import client, config

        config.load_incluster_config()
        api = client.CustomObjectsApi()
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    how = submit(api, body, poll_s=poll_s, clock=clock)
    workers = body["spec"]["tfReplicaSpecs"]["Worker"]["replicas"]
    log.info("%s TFJob %s/%s with %d workers", how, namespace, name, workers)
    deadline = clock() + timeout_s
    last = None
    while clock() < deadline:
        job = _get(api, namespace, name)
        if job is None:
            raise TFJobError(f"TFJob {namespace}/{name} was deleted while the task waited for it")
        state, message = job_state(job)
        if (state, message) != last:
            log.info("TFJob %s: %s %s", name, state, message)
            last = (state, message)
        if state == "Succeeded":
            return
        if state == "Failed":
            raise TFJobError(f"TFJob {namespace}/{name} failed: {message or 'no message from the operator'}")
        time.sleep(poll_s)
    raise TFJobError(f"TFJob {namespace}/{name} did not finish within {timeout_s:.0f}s (last state {last})")
