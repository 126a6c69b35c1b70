"""The MLflow side of cityseg: where the tracking store is, and failing fast when it is unreachable.

Tracking URI, in order: the explicit argument, `MLFLOW_TRACKING_URI`, then a local SQLite store in
the project's work folder (`work/mlflow/mlflow.db`, artifacts beside it), so that a laptop run
needs no server and `mlflow ui --backend-store-uri sqlite:///work/mlflow/mlflow.db` shows it.
"""

import importlib.metadata
import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow

from cityseg.components.defaults import WORK_DIR

log = logging.getLogger(__name__)

DEFAULT_WORK_DIR = Path(WORK_DIR)


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


def run_exists(run_id: str) -> bool:
    """True when the tracking store holds the run `run_id`."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        return False
    return True


def log_to_run(
    run_id: str, metrics: dict[str, float], tags: dict[str, str], files: dict[str, bytes], artifact_path: str
) -> None:
    """Log metrics, tags and files (name -> bytes, under `artifact_path`) to an existing, finished run."""
    import tempfile

    client = mlflow.MlflowClient()
    timestamp = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[mlflow.entities.Metric(key, value, timestamp, 0) for key, value in metrics.items()],
        tags=[mlflow.entities.RunTag(key, value) for key, value in tags.items()],
    )
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            Path(folder, name).write_bytes(data)
        client.log_artifacts(run_id, folder, artifact_path=artifact_path)


def read_artifact(run_id: str, artifact_path: str) -> bytes | None:
    """The bytes of file `artifact_path` of run `run_id`'s artifacts; None when the run has no such file."""
    import tempfile

    client = mlflow.MlflowClient()
    folder = artifact_path.rpartition("/")[0] or None
    if artifact_path not in {info.path for info in client.list_artifacts(run_id, folder)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, artifact_path, tmp)).read_bytes()


def logged_model(run_id: str, artifact_path: str = "model") -> tuple[str, str | None]:
    """The (source URI, logged model id) to register for the model a run logged at `artifact_path`.

    MLflow 3 stores logged models outside the run's artifacts; registering `models:/<model id>`
    avoids its fallback warning. Models logged as plain run artifacts keep the `runs:/` URI.
    """
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ValueError(f"MLflow run {run_id} does not exist in {mlflow.get_tracking_uri()}") from err
        raise
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{artifact_path}'",
        output_format="list",
    )
    if logged:
        return logged[0].model_uri, logged[0].model_id
    return f"runs:/{run_id}/{artifact_path}", None


def start_run(run_id: str | None = None, parent_run_id: str | None = None, kfp_run_id: str | None = None):
    """Start run `run_id` again, or a new run (a child of `parent_run_id`), tagged with `run_tags`.

    Returns:
        MLflow's active run, a context manager that ends it (FAILED when an exception leaves it).
    """
    return mlflow.start_run(run_id=run_id, parent_run_id=parent_run_id, tags=run_tags(kfp_run_id))


def log_params(params: dict) -> None:
    """Log `params` to the active run."""
    mlflow.log_params(params)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log `metrics` to the active run, at `step` when given."""
    mlflow.log_metrics(metrics, step=step)


# The CPU images install tensorflow-cpu, the GPU image tensorflow[and-cuda] (setup.cfg extras cpu, gpu).
CPU_TENSORFLOW, GPU_TENSORFLOW = "tensorflow-cpu", "tensorflow[and-cuda]"
# An and-cuda install is told apart from a plain `tensorflow` by one of the CUDA wheels it pulls in.
CUDA_MARKER = "nvidia-cudnn-cu12"


def tensorflow_requirements(version_of=importlib.metadata.version) -> dict[str, str]:
    """Pinned requirements of TensorFlow: `installed` (the distribution here), `cpu` and `gpu`.

    `version_of` maps a distribution's name to its installed version, raising
    `importlib.metadata.PackageNotFoundError` when it is absent.

    Raises:
        ValueError: no TensorFlow distribution is installed.
    """

    def version(name: str) -> str | None:
        try:
            return version_of(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    if version(CPU_TENSORFLOW):
        installed = f"{CPU_TENSORFLOW}=={version(CPU_TENSORFLOW)}"
    elif version("tensorflow"):
        name = GPU_TENSORFLOW if version(CUDA_MARKER) else "tensorflow"
        installed = f"{name}=={version('tensorflow')}"
    else:
        raise ValueError(f"neither {CPU_TENSORFLOW} nor tensorflow is installed")
    pinned = installed.partition("==")[2]
    return {
        "installed": installed,
        "cpu": f"{CPU_TENSORFLOW}=={pinned}",
        "gpu": f"{GPU_TENSORFLOW}=={pinned}",
    }


def log_keras_model(model, sample, name: str = "model", extra_files: tuple[Path, ...] = ()) -> None:
    """Log a Keras model to the active run, with the signature of its prediction on `sample`.

    Its requirements.txt names the TensorFlow distribution it was trained with, so a loader gets
    what ran; the MLmodel metadata `tensorflow_requirements` holds the CPU and the GPU variant at
    that version, for a loader on the other kind of machine. `extra_files` go into the logged
    model's own artifacts (MLflow 3 keeps them apart from the run's), so a registered version of it
    carries them.
    """
    signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
    tensorflow = tensorflow_requirements()
    # Stated, not inferred: MLflow infers them by loading the model in a subprocess, 8 s a run.
    requirements = [*mlflow.keras.get_default_pip_requirements(), tensorflow["installed"]]
    logged = mlflow.keras.log_model(
        model,
        name=name,
        signature=signature,
        pip_requirements=requirements,
        metadata={"tensorflow_requirements": {"cpu": tensorflow["cpu"], "gpu": tensorflow["gpu"]}},
    )
    for path in extra_files:
        mlflow.MlflowClient().log_model_artifact(logged.model_id, str(path))


def log_files(paths: list[Path], artifact_path: str | None = None) -> None:
    """Log files, and folders with everything in them, to the active run's artifacts."""
    for path in paths:
        if Path(path).is_dir():
            folder = Path(path).name if artifact_path is None else f"{artifact_path}/{Path(path).name}"
            mlflow.log_artifacts(str(path), artifact_path=folder)
        else:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)
