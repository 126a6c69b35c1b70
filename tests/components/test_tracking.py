import importlib.metadata
import time

import pytest

from cityseg.components import tracking
from tests.conftest import free_port


def test_unreachable_server_fails_within_seconds_naming_the_uri():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailableError, match=uri):
        tracking.connect(uri, timeout_s=2)
    assert time.monotonic() - start < 10


def test_default_store_is_sqlite_in_the_work_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking.connect(work_dir=tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    experiment_id = tracking.set_experiment("local", work_dir=tmp_path)
    assert tracking.set_experiment("local", work_dir=tmp_path) == experiment_id


def test_environment_uri_wins_over_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert tracking.resolve_tracking_uri(work_dir=tmp_path) == "http://example.invalid:5000"
    assert tracking.resolve_tracking_uri("sqlite:///x.db", work_dir=tmp_path) == "sqlite:///x.db"


def test_run_tags_carry_the_kfp_run_id(monkeypatch):
    monkeypatch.setenv("CITYSEG_GIT_COMMIT", "abc123")
    assert tracking.run_tags("run-7") == {"git_commit": "abc123", "kfp_run_id": "run-7"}


def _versions(**installed):
    def version_of(name):
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    return version_of


@pytest.mark.parametrize(
    ("installed", "requirement"),
    [
        # The CPU images and `pip install -e .[cpu]`.
        ({"tensorflow-cpu": "2.21.0"}, "tensorflow-cpu==2.21.0"),
        # The GPU image: tensorflow[and-cuda], told by its CUDA wheels.
        ({"tensorflow": "2.21.0", "nvidia-cudnn-cu12": "9.3.0.75"}, "tensorflow[and-cuda]==2.21.0"),
        ({"tensorflow": "2.20.0"}, "tensorflow==2.20.0"),
    ],
)
def test_tensorflow_requirement_names_the_distribution_installed(installed, requirement):
    version = requirement.partition("==")[2]
    assert tracking.tensorflow_requirements(_versions(**installed)) == {
        "installed": requirement,
        "cpu": f"tensorflow-cpu=={version}",
        "gpu": f"tensorflow[and-cuda]=={version}",
    }


def test_no_tensorflow_installed_is_an_error():
    with pytest.raises(ValueError, match="neither tensorflow-cpu nor tensorflow is installed"):
        tracking.tensorflow_requirements(_versions(keras="3.15.1"))
