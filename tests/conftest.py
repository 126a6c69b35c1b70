"""Fixtures shared by every test: real service processes on 127.0.0.1, started once per session."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float, log: Path) -> None:
    """Poll `url` until it answers, failing early with the process log if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{url}: no answer within {timeout_s}s:\n{log.read_text()[-3000:]}")


def start_server(argv: list[str], url: str, log: Path, timeout_s: float = 90, env=None) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    wait_for_http(url, process, timeout_s, log)
    return process


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """A real `gcp-storage-emulator` on 127.0.0.1; sets STORAGE_EMULATOR_HOST for this process and children.

    Yields a function that creates a fresh bucket and returns its `gs://` URI.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    port = free_port()
    host = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("gcs") / "emulator.log"
    process = start_server(
        [str(BIN / "gcp-storage-emulator"), "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"],
        f"{host}/storage/v1/b",
        log,
    )
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = host
    client = storage.Client(project="cityseg-emulator", credentials=AnonymousCredentials())
    counter = iter(range(1_000_000))

    def make_bucket(prefix: str = "cityseg-test") -> str:
        name = f"{prefix}-{next(counter)}"
        client.create_bucket(name)
        return f"gs://{name}"

    yield make_bucket
    stop_server(process)
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend; yields its tracking URI."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    process = start_server(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        f"{uri}/health",
        root / "server.log",
        timeout_s=180,
    )
    yield uri
    stop_server(process)


@pytest.fixture(scope="session")
def registered_pair(mlflow_server, tmp_path_factory) -> tuple[str, list[str]]:
    """Registered model `serve-pair` with two versions logged as `cityseg train` logs them.

    Version `versions[0]` predicts the category written in an image's channel 0, `versions[1]` the one
    in channel 1 (`tests.components.evaluate.builders.decoder_model`), both for 32x64 frames (the serve
    tests' size). The serve and deploy tests share this one definition: a module that imports the
    fixture gets a second one, which registers two more versions of the same name. Tests compare with
    `versions`, never with a version number, and point the alias where they need it.
    """
    import mlflow

    from tests.components.evaluate.builders import decoder_model, logged_model_folder

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    root = tmp_path_factory.mktemp("registered")
    versions = []
    for channel in (0, 1):
        _, run_id = logged_model_folder(decoder_model(32, 64, channel=channel), root / f"m{channel}")
        versions.append(mlflow.register_model(f"runs:/{run_id}/model", "serve-pair").version)
    return "serve-pair", versions


@pytest.fixture
def mlflow_uri(mlflow_server, monkeypatch):
    """The session's MLflow server as this test's MLFLOW_TRACKING_URI (children inherit it)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    return mlflow_server


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, which `make setup` installs; the browser tests drive it headless."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run `make setup` (it installs Debian's chromium package)")
    return path
