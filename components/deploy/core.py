"""The deploy step: put a blessed model version on the KServe InferenceService behind a canary.

On the cluster (`target="kserve"`) it patches the InferenceService of manifests/serving to serve
`models:/<name>/<version>` as a canary revision taking `canary_traffic_percent` of the traffic,
waits until that revision is Ready, then promotes it to all traffic. A canary that is not Ready in
time is rolled back: the traffic returns to the previous revision and `@champion` returns to
`@previous` in the registry, and the step fails with the reason. Locally (`target="local"`)
`cityseg serve` follows `@champion` by itself, so the step only reports the URL and the version.
"""

import logging
import time
from dataclasses import dataclass, field

from cityseg.components.deploy import rollout
from cityseg.components.deploy.config import DeployConfig

log = logging.getLogger(__name__)


class DeployError(RuntimeError):
    """The canary did not become Ready in time; it was rolled back, and the message says why."""


@dataclass(frozen=True)
class DeployResult:
    """Where the version is served and how the traffic is split afterwards."""

    target: str
    url: str
    version: str
    model_ref: str
    traffic: dict[str, int] = field(default_factory=dict)

    def outputs(self) -> tuple[str, str, str]:
        """(url, version, traffic as `revision=percent,...`): the KFP component's outputs."""
        return self.url, self.version, ",".join(f"{rev}={pct}" for rev, pct in sorted(self.traffic.items()))


def _wait_ready(services, namespace: str, config: DeployConfig, generation: int) -> tuple[bool, dict, str]:
    """Poll until the InferenceService is Ready at `generation` or the time is up: (ready, object, why)."""
    deadline = time.monotonic() + config.ready_timeout_s
    last = None
    while True:
        isvc = services.get(namespace, config.service) or {}
        ready, why = rollout.readiness(isvc, generation)
        if why != last:
            log.info("InferenceService %s/%s: %s", namespace, config.service, why)
            last = why
        if ready or time.monotonic() >= deadline:
            return ready, isvc, why
        time.sleep(config.poll_s)


def _rollback(services, namespace: str, config: DeployConfig, why: str, revision: str | None) -> str:
    """Send the traffic back to the previous revision and `@champion` to `@previous`; returns a summary."""
    from cityseg.components import tracking
    from cityseg.components.push import registry

    isvc = services.patch(namespace, config.service, rollout.ROLLBACK_PATCH)
    previous = rollout.predictor_status(isvc).get("previousRolledoutRevision") or "the previous revision"
    tracking.connect(config.tracking_uri)
    champion = registry.alias_version(config.name, registry.CHAMPION)
    if champion != config.version:
        return f"traffic is back on {previous}; @champion (v{champion}) was left as it is"
    reason = f"deploy of v{config.version} to {namespace}/{config.service} failed: {why}"
    try:
        aliases = registry.rollback(config.name, reason=reason)
    except ValueError as err:
        return f"traffic is back on {previous}; @champion stays on v{champion}: {err}"
    return (
        f"traffic is back on {previous}; @champion is back on v{aliases.get(registry.CHAMPION)} "
        f"(revision {revision} is left without traffic)"
    )


def _deploy_kserve(config: DeployConfig, services) -> DeployResult:
    from cityseg.components.deploy import kube

    if services is None:
        services = kube.InferenceServices(config.api_host)
    namespace = config.namespace or kube.current_namespace()
    live = services.get(namespace, config.service)
    if live is None:
        raise ValueError(
            f"InferenceService {namespace}/{config.service} does not exist: "
            "apply it first with `kubectl apply -k manifests/` (see README, Run on GKE)"
        )
    percent = config.canary_traffic_percent
    patch = rollout.canary_patch(live, config.model_ref, config.version, config.serving_dir, percent)
    isvc = services.patch(namespace, config.service, patch)
    for stage in ("canary", "promoted") if percent < 100 else ("rollout",):
        if stage == "promoted":
            isvc = services.patch(namespace, config.service, rollout.PROMOTE_PATCH)
        ready, isvc, why = _wait_ready(services, namespace, config, isvc["metadata"].get("generation", 0))
        revision = rollout.predictor_status(isvc).get("latestCreatedRevision")
        if not ready:
            summary = _rollback(services, namespace, config, why, revision)
            raise DeployError(
                f"{stage} revision {revision} of InferenceService {namespace}/{config.service} (model "
                f"v{config.version}) was not Ready within {config.ready_timeout_s:g}s: {why}; {summary}"
            )
        log.info("%s revision %s is Ready: traffic %s", stage, revision, rollout.traffic(isvc))
    return DeployResult("kserve", rollout.url(isvc), config.version, config.model_ref, rollout.traffic(isvc))


def deploy(config: DeployConfig, services=None) -> DeployResult:
    """Serve `config.version`: on KServe behind a canary, or report the local server.

    Args:
        config: what to deploy where.
        services: the Kubernetes door (`kube.InferenceServices`); None builds it from `config.api_host`.

    Raises:
        ValueError: the InferenceService is missing or is not the cityseg predictor.
        DeployError: the new revision was not Ready in time and was rolled back.
        kube.KubeError: the Kubernetes API refused a call or cannot be reached.
    """
    if not config.blessed:
        # The pipeline runs deploy after every push: a condition on push's output inside the
        # data-changed branch is not resolved by kfp.local, so the gate is here.
        log.info("version %s was not blessed: nothing to deploy", config.version or "(none)")
        return DeployResult(config.target, "", "", "")
    if config.target == "local":
        log.info(
            "local: `cityseg serve` follows models:/%s@champion by itself; v%s is served at %s",
            config.name,
            config.version,
            config.local_url,
        )
        return DeployResult("local", config.local_url, config.version, f"models:/{config.name}@champion")
    return _deploy_kserve(config, services)
