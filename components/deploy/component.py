"""KFP interface of the deploy step (wired after push; it deploys only a blessed version)."""

from typing import NamedTuple

from cityseg.components import container_images


@container_images.component
def deploy(
    *,
    blessed: bool,
    version: str,
    registered_model: str,
    target: str,
    service: str,
    namespace: str,
    canary_traffic_percent: int,
    ready_timeout_s: float,
    serving_dir: str,
    mlflow_tracking_uri: str,
) -> NamedTuple("DeployOutputs", [("url", str), ("version", str), ("traffic", str)]):
    """Serve the blessed version: a canary on the KServe InferenceService, promoted after a good soak.

    Args:
        blessed: push's verdict; when False nothing is deployed.
        version: the registered model version that push registered.
        registered_model: MLflow registered model name.
        target: "kserve" on the cluster; "local" in kfp.local (the `cityseg serve` at the default URL,
            if one runs, must come to serve the version).
        service: the InferenceService's name (manifests/serving).
        namespace: its namespace; empty means the namespace the task runs in.
        canary_traffic_percent: share of the traffic the new revision gets during its soak.
        ready_timeout_s: how long the canary may take to become Ready before it is rolled back
            (traffic to the stable revision, @champion back to @previous) and the step fails; the
            soak's length and bounds are DeployConfig's.
        serving_dir: push's serving folder, for a predictor that loads STORAGE_URI; empty otherwise.
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI.
    Returns:
        the serving URL, the version, and the traffic split as `revision=percent,...`.
    """
    params = dict(locals())
    from cityseg.components.deploy.config import DeployConfig
    from cityseg.components.deploy.core import deploy as deploy_version
    from cityseg.components.kfp_params import step_config

    return deploy_version(step_config(DeployConfig, params, rename={"registered_model": "name"})).outputs()
