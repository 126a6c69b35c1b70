"""The MLflow side of cityseg: where the tracking store is, and failing fast when it is unreachable.

Tracking URI, in order: the explicit argument, `MLFLOW_TRACKING_URI`, then a local SQLite store in
the project's work folder (`work/mlflow/mlflow.db`, artifacts beside it), so that a laptop run
needs no server and `mlflow ui --backend-store-uri sqlite:///work/mlflow/mlflow.db` shows it.
"""

import logging
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import mlflow

log = logging.getLogger(__name__)

DEFAULT_WORK_DIR = Path("work")


class TrackingUnavailableError(ConnectionError):
    """The MLflow tracking server named by the URI does not answer."""


def default_tracking_uri(work_dir: str | os.PathLike = DEFAULT_WORK_DIR) -> str:
    """The local SQLite store inside the work folder."""
    return f"sqlite:///{(Path(work_dir) / 'mlflow' / 'mlflow.db').resolve()}"


def resolve_tracking_uri(uri: str | None = None, work_dir: str | os.PathLike = DEFAULT_WORK_DIR) -> str:
    """The tracking URI to use: `uri`, else `MLFLOW_TRACKING_URI`, else the local default."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(work_dir)


def connect(
    uri: str | None = None, *, work_dir: str | os.PathLike = DEFAULT_WORK_DIR, timeout_s: float = 5.0
) -> str:
    """Point MLflow (tracking and registry) at the resolved store and check that it answers.

    Returns:
        The tracking URI in use.

    Raises:
        TrackingUnavailableError: an http(s) server did not answer `/health` within `timeout_s`.
    """
    uri = resolve_tracking_uri(uri, work_dir)
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingUnavailableError(
                f"MLflow tracking server {uri} cannot be reached: {reason}. "
                "Start it, or set MLFLOW_TRACKING_URI to a reachable server."
            ) from err
    elif uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def set_experiment(name: str, work_dir: str | os.PathLike = DEFAULT_WORK_DIR) -> str:
    """Use experiment `name`, creating it if needed; a local store keeps artifacts in the work folder.

    Returns:
        The experiment id.
    """
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        return experiment.experiment_id
    artifact_location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        artifact_location = (Path(work_dir) / "mlflow" / "artifacts").resolve().as_uri()
    experiment_id = mlflow.create_experiment(name, artifact_location=artifact_location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str | None:
    """The commit of the source tree, from `CITYSEG_GIT_COMMIT` (set in images) or git itself."""
    if commit := os.environ.get("CITYSEG_GIT_COMMIT"):
        return commit
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def run_tags(kfp_run_id: str | None = None) -> dict[str, str]:
    """Tags that tie a run to its source: the git commit and the KFP run id, when known."""
    tags = {}
    if commit := git_commit():
        tags["git_commit"] = commit
    if kfp_run_id := kfp_run_id or os.environ.get("KFP_RUN_ID"):
        tags["kfp_run_id"] = kfp_run_id
    return tags
