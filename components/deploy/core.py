"""The deploy step: serve a blessed model version, on KServe behind a soaked canary or on a local server.

On the cluster (`target="kserve"`) the new version runs alone on a canary revision beside the
stable one, soaks, and is promoted only when its error rate and latency stay within bounds of the
stable revision's; otherwise traffic and `@champion` go back and the step fails naming the figures
(`cityseg.components.deploy.kserve`). Locally (`target="local"`) the `cityseg serve` at `local_url`
must come to serve the version, or the step says that no server runs there
(`cityseg.components.deploy.local`).
"""

import logging

from cityseg.components.deploy.config import DeployConfig
from cityseg.components.deploy.result import DeployResult

log = logging.getLogger(__name__)


def deploy(config: DeployConfig, services=None, metrics=None) -> DeployResult:
    """Serve `config.version` where `config.target` says.

    Args:
        config: what to deploy where.
        services: the InferenceService door (`kube.InferenceServices`); None builds it from `config.api_host`.
        metrics: the predictor pods' /metrics door (`kube.RevisionMetrics`); None builds it likewise.

    Raises:
        ValueError: the InferenceService is missing or is not the cityseg predictor.
        cityseg.components.deploy.result.DeployError: the version was not served; on KServe it was
            rolled back.
        cityseg.components.deploy.kube.KubeError: the Kubernetes API refused a call or cannot be reached.
    """
    if not config.blessed:
        # The pipeline runs deploy after every push: a condition on push's output inside the
        # data-changed branch is not resolved by kfp.local, so the gate is here.
        log.info("version %s was not blessed: nothing to deploy", config.version or "(none)")
        return DeployResult(config.target, "", "", "")
    if config.target == "local":
        from cityseg.components.deploy.local import deploy_local

        return deploy_local(config)
    from cityseg.components.deploy.kserve import deploy_kserve

    return deploy_kserve(config, services, metrics)
