"""Pure functions over InferenceService objects: the canary patch, readiness and traffic.

KServe (Serverless mode) splits traffic between the last rolled-out revision and the newest one by
the predictor's `canaryTrafficPercent`; removing the field sends all traffic to the newest revision
and setting it to 0 sends all traffic back to the previous one.
"""

import copy
import re
from typing import NamedTuple

from cityseg.components import storage

PREDICTOR_CONTAINER = "kserve-container"
STORAGE_URI_ENV = "STORAGE_URI"
VERSION_ANNOTATION = "cityseg.io/model-version"
# KServe's constants.StopAnnotationKey (v0.15.1 on).
STOP_ANNOTATION = "serving.kserve.io/stop"
READY, WAITING, STOPPED = "ready", "waiting", "stopped"


def _predictor_container(isvc: dict) -> tuple[list[dict], dict]:
    containers = copy.deepcopy(isvc.get("spec", {}).get("predictor", {}).get("containers") or [])
    named = [c for c in containers if c.get("name") == PREDICTOR_CONTAINER]
    if not named:
        name = isvc.get("metadata", {}).get("name", "?")
        raise ValueError(
            f"InferenceService {name} has no predictor container named {PREDICTOR_CONTAINER!r}: "
            "it is not the cityseg custom predictor of manifests/serving"
        )
    return containers, named[0]


def canary_patch(isvc: dict, model_ref: str, version: str, serving_dir: str, percent: int) -> dict:
    """The merge patch that serves `version` as a canary taking `percent` of the traffic.

    The model goes where the live predictor takes it: the `--model` argument, or, for a predictor on
    KServe's storage initializer, the `STORAGE_URI` variable (`<serving_dir>/<version>`). Everything
    else (resources, GPU, probes, security) stays as the live object has it.

    Raises:
        ValueError: the object is not the cityseg predictor, or it loads from STORAGE_URI and no
            serving_dir is given.
    """
    containers, container = _predictor_container(isvc)
    env = container.get("env", [])
    storage_uri = [item for item in env if item.get("name") == STORAGE_URI_ENV]
    if storage_uri:
        if not serving_dir:
            raise ValueError(
                f"the predictor loads {STORAGE_URI_ENV}, so the deploy step needs serving_dir "
                "(the push step's --serving-dir) to point it at the new version"
            )
        storage_uri[0].pop("valueFrom", None)
        storage_uri[0]["value"] = storage.join(serving_dir, version)
    else:
        args = container.setdefault("args", [])
        if "--model" in args[:-1]:
            args[args.index("--model") + 1] = model_ref
        else:
            args += ["--model", model_ref]
    return {
        "metadata": {"annotations": {VERSION_ANNOTATION: version}},
        # 100 means no canary: without the field every request goes to the newest revision.
        "spec": {
            "predictor": {
                "canaryTrafficPercent": percent if percent < 100 else None,
                "containers": containers,
            }
        },
    }


def served_ref(isvc: dict) -> str:
    """What the predictor loads: its STORAGE_URI value when it has one, else its `--model` argument."""
    _, container = _predictor_container(isvc)
    for item in container.get("env", []):
        if item.get("name") == STORAGE_URI_ENV:
            return item.get("value", "")
    args = container.get("args", [])
    return args[args.index("--model") + 1] if "--model" in args[:-1] else ""


def pinned_version(isvc: dict, name: str) -> str | None:
    """The registered version the predictor is pinned to, or None when it follows an alias.

    Pinned means `models:/<name>/<version>` as `--model`, or a `.../<version>` STORAGE_URI (push's
    serving folder); `models:/<name>@champion` and anything else is not pinned.
    """
    ref = served_ref(isvc)
    match = re.fullmatch(rf"models:/{re.escape(name)}/([1-9][0-9]*)", ref)
    if match is None and not ref.startswith("models:/"):
        match = re.search(r"/([1-9][0-9]*)/?$", ref)
    return match.group(1) if match else None


def predictor_port(isvc: dict) -> int:
    """The port the predictor container serves on (its /metrics too): its first containerPort, else 8080."""
    _, container = _predictor_container(isvc)
    ports = container.get("ports") or [{}]
    return int(ports[0].get("containerPort", 8080))


PROMOTE_PATCH = {"spec": {"predictor": {"canaryTrafficPercent": None}}}
ROLLBACK_PATCH = {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def predictor_status(isvc: dict) -> dict:
    """The predictor component's status: revisions and traffic."""
    return isvc.get("status", {}).get("components", {}).get("predictor", {})


class Readiness(NamedTuple):
    """The InferenceService's state for the deploy step: `state` is one of READY, WAITING, STOPPED."""

    state: str
    why: str


def _conditions(isvc: dict) -> dict[str, dict]:
    return {c.get("type", ""): c for c in isvc.get("status", {}).get("conditions") or []}


def _describe(condition: dict) -> str:
    detail = f"{condition.get('reason', '')} {condition.get('message', '')}".strip()
    return f"{condition.get('type')}={condition.get('status')}" + (f": {detail}" if detail else "")


def readiness(isvc: dict, *, percent: int, old_revision: str | None = None) -> Readiness:
    """Whether the newest predictor revision is Ready and takes `percent` of the traffic.

    Read as KServe writes the status (see tests/data/kserve/SOURCE.md): `Ready` sums up the
    conditions KServe depends on; the others carry severity Info and are not failures when False.
    `Stopped` (v0.15.1 on) is False on a healthy service and True on one stopped through the
    `serving.kserve.io/stop` annotation, which no wait will change. `observedGeneration` is the
    Knative Service's generation, not the InferenceService's, so it is not compared: the revision
    names and the traffic tell whether the controller acted on the patch.

    Args:
        isvc: the InferenceService as the API returns it.
        percent: the traffic share the newest revision must have (100 once promoted).
        old_revision: the newest revision before a patch that creates one; None when the patch
            creates no revision (a traffic change).
    """
    blocked = _condition_block(_conditions(isvc))
    if blocked is not None:
        return blocked
    predictor = predictor_status(isvc)
    created, latest_ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if old_revision is not None and created == old_revision:
        return Readiness(
            WAITING, f"the KServe controller has not created the new revision yet (newest: {created})"
        )
    if created != latest_ready:
        return Readiness(WAITING, f"revision {created} is not ready yet (latest ready: {latest_ready})")
    share = traffic(isvc).get(created, 0)
    if share != percent:
        return Readiness(WAITING, f"revision {created} takes {share}% of the traffic, not {percent}% yet")
    return Readiness(READY, f"revision {created} is Ready with {percent}% of the traffic")


def _condition_block(conditions: dict[str, dict]) -> Readiness | None:
    """What the conditions say against readiness: stopped, or Ready not True; None when Ready is True."""
    stopped = conditions.get("Stopped", {})
    if stopped.get("status") == "True":
        return Readiness(
            STOPPED,
            f"the InferenceService is stopped ({_describe(stopped)}); remove its {STOP_ANNOTATION} "
            "annotation to start it again",
        )
    ready = conditions.get("Ready")
    if ready is None:
        return Readiness(WAITING, "no Ready condition yet")
    if ready.get("status") != "True":
        return Readiness(WAITING, _describe(ready))
    return None


def traffic(isvc: dict) -> dict[str, int]:
    """Revision name -> percent of the predictor's traffic; a revision listed twice (tagged) is summed."""
    shares: dict[str, int] = {}
    for route in predictor_status(isvc).get("traffic", []):
        if route.get("percent"):
            name = route.get("revisionName", "?")
            shares[name] = shares.get(name, 0) + int(route["percent"])
    return shares


def url(isvc: dict) -> str:
    """The cluster-internal URL of the service (what the web app calls), else its external URL."""
    status = isvc.get("status", {})
    return status.get("address", {}).get("url") or status.get("url", "")
