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
        target: "kserve" (a canary on the InferenceService) or "local" (a running `cityseg serve`).
        service: the InferenceService's name.
        namespace: its namespace; empty means the namespace of the pod this runs in.
        canary_traffic_percent: share of the traffic the new revision gets before it is promoted;
            100 rolls out at once.
        ready_timeout_s: how long the canary (and then the promotion) may take to become Ready; locally,
            how long the server may take to swap to the version.
        poll_s: how often the InferenceService's status (or the local server's /model) is read.
        soak_s: how long the canary serves beside the stable revision before it is judged.
        soak_min_requests: prediction requests the canary must have served in the soak to be judged;
            0 promotes a canary that got no traffic.
        max_error_rate_increase: how far the canary's share of 5xx answers may exceed the stable
            revision's (0.01: one percentage point).
        max_p95_ratio: how many times the stable revision's p95 latency the canary's may reach.
        serving_dir: the push step's serving folder, for a predictor that loads STORAGE_URI.
        local_url: where a local `cityseg serve` answers.
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
    soak_s: float = 600.0
    soak_min_requests: int = 20
    max_error_rate_increase: float = 0.01
    max_p95_ratio: float = 1.5
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
        for name in ("ready_timeout_s", "poll_s", "max_p95_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("soak_s", "soak_min_requests", "max_error_rate_increase"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")

    @property
    def model_ref(self) -> str:
        return f"models:/{self.name}/{self.version}"
