"""What the deploy step reports, and the error it fails with after a rollback."""

from dataclasses import dataclass, field


class DeployError(RuntimeError):
    """The new version was not served: its canary was not Ready in time, or failed its soak, or the
    local server did not load it. The message says why, with the figures, and what was rolled back."""


@dataclass(frozen=True)
class DeployResult:
    """Where the version is served and how the traffic is split afterwards; an empty `url`: not served."""

    target: str
    url: str
    version: str
    model_ref: str
    traffic: dict[str, int] = field(default_factory=dict)

    def outputs(self) -> tuple[str, str, str]:
        """(url, version, traffic as `revision=percent,...`): the KFP component's outputs."""
        return self.url, self.version, ",".join(f"{rev}={pct}" for rev, pct in sorted(self.traffic.items()))
