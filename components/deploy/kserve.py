"""The deploy step on KServe: a canary of the new version beside the stable one, soaked, judged, promoted.

1. The stable revision must serve a known version. The committed manifest follows
   `models:/<name>@champion`, which push has already moved to the new version: left alone, its pods
   would swap to it by themselves before any canary. So a predictor that follows an alias is first
   pinned to `@previous` (the champion before push) and rolled out. With no `@previous` (the first
   version ever) there is nothing to compare with, and the new version rolls out at once.
2. The new version, pinned (`models:/<name>/<version>`, or its serving folder for a STORAGE_URI
   predictor), becomes a new revision taking `canary_traffic_percent` of the traffic; the stable
   revision keeps the rest and its own version.
3. The canary soaks for `soak_s`. Its error rate and p95 latency over that time, read from every
   pod's `/metrics` (see `canary`), must stay within the configured bounds of the stable revision's.
4. Only then is it promoted to all traffic. A canary that is not Ready in time, is stopped, or fails
   its soak is rolled back: the traffic returns to the stable revision and `@champion` to
   `@previous`, and the step fails naming the reason and the figures.
"""

import logging
import time
from dataclasses import dataclass

from cityseg.components.deploy import canary, rollout
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.deploy.kube import KubeError
from cityseg.components.deploy.result import DeployError, DeployResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rollout:
    """The InferenceService being rolled out, and the doors to it."""

    config: DeployConfig
    services: object
    metrics: object
    namespace: str

    @property
    def where(self) -> str:
        return f"InferenceService {self.namespace}/{self.config.service}"

    def wait(self, percent: int, old_revision: str | None) -> tuple[rollout.Readiness, dict]:
        """Poll until the newest revision is Ready with `percent`, is stopped, or the time is up."""
        deadline = time.monotonic() + self.config.ready_timeout_s
        last = None
        while True:
            isvc = self.services.get(self.namespace, self.config.service) or {}
            state = rollout.readiness(isvc, percent=percent, old_revision=old_revision)
            if state.why != last:
                log.info("%s: %s", self.where, state.why)
                last = state.why
            if state.state != rollout.WAITING or time.monotonic() >= deadline:
                return state, isvc
            time.sleep(self.config.poll_s)

    def stage(self, name: str, patch: dict, percent: int, old_revision: str | None) -> dict:
        """Apply `patch` and wait for its revision; roll back and raise DeployError when it is not Ready."""
        self.services.patch(self.namespace, self.config.service, patch)
        state, isvc = self.wait(percent, old_revision)
        if state.state == rollout.READY:
            return isvc
        revision = rollout.predictor_status(isvc).get("latestCreatedRevision")
        if state.state == rollout.STOPPED:
            what = f"{name} of {self.where} (model v{self.config.version}) cannot go on: {state.why}"
        else:
            what = (
                f"{name} revision {revision} of {self.where} (model v{self.config.version}) was not Ready "
                f"within {self.config.ready_timeout_s:g}s: {state.why}"
            )
        raise DeployError(f"{what}; {self.roll_back(state.why)}")

    def roll_back(self, why: str) -> str:
        """Send the traffic back to the stable revision and `@champion` to `@previous`; returns a summary."""
        from cityseg.components import tracking
        from cityseg.components.push import registry

        config = self.config
        isvc = self.services.patch(self.namespace, config.service, rollout.ROLLBACK_PATCH)
        status = rollout.predictor_status(isvc)
        stable = status.get("latestRolledoutRevision") or "the previous revision"
        tracking.connect(config.tracking_uri)
        champion = registry.alias_version(config.name, registry.CHAMPION)
        if champion != config.version:
            return f"traffic is back on {stable}; @champion (v{champion}) was left as it is"
        reason = f"deploy of v{config.version} to {self.namespace}/{config.service} failed: {why}"
        try:
            aliases = registry.rollback(config.name, reason=reason)
        except ValueError as err:
            return f"traffic is back on {stable}; @champion stays on v{champion}: {err}"
        return (
            f"traffic is back on {stable}; @champion is back on v{aliases.get(registry.CHAMPION)} "
            f"(revision {status.get('latestCreatedRevision')} is left without traffic)"
        )

    def figures(self, revision: str, port: int) -> dict[str, canary.Sample]:
        return {
            pod: canary.parse(text)
            for pod, text in self.metrics.scrape(self.namespace, revision, port).items()
        }

    def measure(self, revisions: dict[str, str], port: int) -> dict[str, canary.Figures]:
        """Each revision's figures over `soak_s`: its pods' counts at the end less those at the start."""
        before = {role: self.figures(revision, port) for role, revision in revisions.items()}
        time.sleep(self.config.soak_s)
        figures = {}
        for role, revision in revisions.items():
            total = canary.Sample()
            for pod, sample in self.figures(revision, port).items():
                total = total.plus(sample.minus(before[role].get(pod)))
            figures[role] = canary.Figures.of(revision, total)
        return figures

    def soak(self, isvc: dict) -> None:
        """Serve the canary beside the stable revision for `soak_s`, then judge it; roll back on a failure."""
        status, port = rollout.predictor_status(isvc), rollout.predictor_port(isvc)
        revisions = {"canary": status["latestCreatedRevision"], "stable": status["latestRolledoutRevision"]}
        log.info(
            "soaking canary %s beside %s for %gs",
            revisions["canary"],
            revisions["stable"],
            self.config.soak_s,
        )
        try:
            figures = self.measure(revisions, port)
        except KubeError as err:
            summary = self.roll_back(str(err))
            raise DeployError(
                f"canary revision {revisions['canary']} of {self.where} could not be judged: {err}; {summary}"
            ) from err
        log.info("soak over: canary %s; stable %s", figures["canary"], figures["stable"])
        problems = canary.verdict(figures["canary"], figures["stable"], self.config)
        if problems:
            why = "; ".join(problems) + f" (canary {figures['canary']}; stable {figures['stable']})"
            summary = self.roll_back(why)
            raise DeployError(
                f"canary revision {revisions['canary']} of {self.where} (model v{self.config.version}) "
                f"failed its {self.config.soak_s:g}s soak: {why}; {summary}"
            )


def _previous_version(config: DeployConfig) -> str | None:
    from cityseg.components import tracking
    from cityseg.components.push import registry

    tracking.connect(config.tracking_uri)
    return registry.alias_version(config.name, registry.PREVIOUS)


def _pin_stable(run: Rollout, live: dict) -> tuple[str | None, dict]:
    """Pin a predictor that follows an alias to `@previous`, rolled out; (its version or None, the object)."""
    config = run.config
    previous = _previous_version(config)
    ref = rollout.served_ref(live)
    if previous is None or previous == config.version:
        log.info(
            "%s follows %s and there is no earlier version to compare v%s with",
            run.where,
            ref,
            config.version,
        )
        return None, live
    log.info(
        "%s follows %s, which push moved to v%s: pinning it to v%s first",
        run.where,
        ref,
        config.version,
        previous,
    )
    patch = rollout.canary_patch(live, f"models:/{config.name}/{previous}", previous, config.serving_dir, 100)
    created = rollout.predictor_status(live).get("latestCreatedRevision")
    return previous, run.stage("stable", patch, 100, created)


def deploy_kserve(config: DeployConfig, services=None, metrics=None) -> DeployResult:
    """Serve `config.version` on the InferenceService behind a soaked canary (see the module doc)."""
    from cityseg.components.deploy import kube

    services = services or kube.InferenceServices(config.api_host)
    metrics = metrics or kube.RevisionMetrics(config.api_host)
    run = Rollout(config, services, metrics, config.namespace or kube.current_namespace())
    live = services.get(run.namespace, config.service)
    if live is None:
        raise ValueError(
            f"{run.where} does not exist: apply it first with `kubectl apply -k manifests/` (see docs/gke.md)"
        )
    stable = rollout.pinned_version(live, config.name)
    if stable is None:
        stable, live = _pin_stable(run, live)
    if stable == config.version and rollout.readiness(live, percent=100).state == rollout.READY:
        log.info("%s already serves v%s with all traffic", run.where, config.version)
        return DeployResult(
            "kserve", rollout.url(live), config.version, config.model_ref, rollout.traffic(live)
        )
    percent = config.canary_traffic_percent if stable is not None else 100
    # A canary of this version left by an earlier attempt creates no new revision.
    created = (
        rollout.predictor_status(live).get("latestCreatedRevision") if stable != config.version else None
    )
    patch = rollout.canary_patch(live, config.model_ref, config.version, config.serving_dir, percent)
    isvc = run.stage("canary" if percent < 100 else "rollout", patch, percent, created)
    if percent < 100:
        run.soak(isvc)
        isvc = run.stage("promoted", rollout.PROMOTE_PATCH, 100, None)
    log.info("v%s is served with all traffic: %s", config.version, rollout.traffic(isvc))
    return DeployResult("kserve", rollout.url(isvc), config.version, config.model_ref, rollout.traffic(isvc))
