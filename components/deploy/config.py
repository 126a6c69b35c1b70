"""The deploy step's configuration: which registered version goes where, and the canary's limits."""

import re
from dataclasses import dataclass

TARGETS = ("local", "kserve")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class DeployConfig:
    """What to deploy where.

    Attributes:
        version: the registered model version to serve (the push step's `version`).
        blessed: whether push blessed it; when not, nothing is deployed (`version` may be empty).
        name: the MLflow registered model.
        target: "kserve" (patch the InferenceService) or "local" (report only).
        service: the InferenceService's name.
        namespace: its namespace; empty means the namespace of the pod this runs in.
        canary_traffic_percent: share of the traffic the new revision gets before it is promoted;
            100 rolls out at once.
        ready_timeout_s: how long the canary (and then the promotion) may take to become Ready.
        poll_s: how often the InferenceService's status is read.
        serving_dir: the push step's serving folder, for a predictor that loads STORAGE_URI.
        local_url: where `cityseg serve` answers locally.
        tracking_uri: MLflow server for the rollback of `@champion`; None means MLFLOW_TRACKING_URI.
        api_host: Kubernetes API URL; None means the in-cluster configuration.
    """

    version: str
    blessed: bool = True
    name: str = "cityseg"
    target: str = "local"
    service: str = "cityseg"
    namespace: str = ""
    canary_traffic_percent: int = 10
    ready_timeout_s: float = 900.0
    poll_s: float = 10.0
    serving_dir: str = ""
    local_url: str = "http://127.0.0.1:8000"
    tracking_uri: str | None = None
    api_host: str | None = None

    def __post_init__(self) -> None:
        if not self.blessed:
            return
        if not re.fullmatch(r"[1-9][0-9]*", str(self.version)):
            raise ValueError(f"version must be a registered model version number, got {self.version!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if not DNS_LABEL.fullmatch(self.service):
            raise ValueError(f"service must be a Kubernetes name (DNS-1035 label), got {self.service!r}")
        if not 1 <= self.canary_traffic_percent <= 100:
            raise ValueError(f"canary_traffic_percent must be 1..100, got {self.canary_traffic_percent}")
        for name in ("ready_timeout_s", "poll_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def model_ref(self) -> str:
        return f"models:/{self.name}/{self.version}"
