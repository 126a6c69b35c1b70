"""Pure functions over InferenceService objects: the canary patch, readiness and traffic.

KServe (Serverless mode) splits traffic between the last rolled-out revision and the newest one by
the predictor's `canaryTrafficPercent`; removing the field sends all traffic to the newest revision
and setting it to 0 sends all traffic back to the previous one.
"""

import copy

from cityseg.components import storage

PREDICTOR_CONTAINER = "kserve-container"
STORAGE_URI_ENV = "STORAGE_URI"
VERSION_ANNOTATION = "cityseg.io/model-version"


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


PROMOTE_PATCH = {"spec": {"predictor": {"canaryTrafficPercent": None}}}
ROLLBACK_PATCH = {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def predictor_status(isvc: dict) -> dict:
    """The predictor component's status: revisions and traffic."""
    return isvc.get("status", {}).get("components", {}).get("predictor", {})


def readiness(isvc: dict, generation: int) -> tuple[bool, str]:
    """(ready, why): the controller has seen `generation`, Ready is True and the newest revision is ready."""
    status = isvc.get("status", {})
    if status.get("observedGeneration", 0) < generation:
        return False, f"the KServe controller has not reconciled generation {generation} yet"
    conditions = status.get("conditions", [])
    failing = [c for c in conditions if c.get("status") != "True"]
    ready = [c for c in conditions if c.get("type") == "Ready" and c.get("status") == "True"]
    if failing or not ready:
        reasons = "; ".join(
            f"{c.get('type')}={c.get('status')}: {c.get('reason', '')} {c.get('message', '')}".rstrip()
            for c in failing
        )
        return False, reasons or "no Ready condition yet"
    predictor = predictor_status(isvc)
    created, latest_ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if created != latest_ready:
        return False, f"revision {created} is not ready yet (latest ready: {latest_ready})"
    return True, "Ready"


def traffic(isvc: dict) -> dict[str, int]:
    """Revision name -> percent of the predictor's traffic."""
    return {
        route.get("revisionName", "?"): int(route.get("percent", 0))
        for route in predictor_status(isvc).get("traffic", [])
        if route.get("percent")
    }


def url(isvc: dict) -> str:
    """The cluster-internal URL of the service (what the web app calls), else its external URL."""
    status = isvc.get("status", {})
    return status.get("address", {}).get("url") or status.get("url", "")
