"""The servers of `make e2e`, each in its image under the task containers' hardening, on the host network.

MLflow is the cityseg-mlflow image's `mlflow server` with a SQLite store in its $HOME and artifacts
proxied through it (`--serve-artifacts`), reached by URL as on the cluster. `cityseg serve` is the
cityseg-serve image, following `models:/<name>@champion` in that server.
"""

import json
import logging
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from cityseg.components import container_images
from cityseg.pipelines import docker_tasks

log = logging.getLogger(__name__)

MLFLOW_HOME = "/home/mlflow"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hardened_flags(home: str) -> list[str]:
    """`docker run` flags with the hardening of `docker_tasks.container_run_args`, $HOME at `home`."""
    tmpfs = docker_tasks.scratch_tmpfs()
    tmpfs[home] = tmpfs.pop(docker_tasks.HOME)
    flags = ["--user", f"{docker_tasks.UID}:{docker_tasks.GID}", "--read-only", "--cap-drop", "ALL"]
    flags += ["--security-opt", "no-new-privileges", "--network", "host"]
    for path, options in tmpfs.items():
        flags += ["--tmpfs", f"{path}:{options}"]
    return flags


@dataclass
class Server:
    """A detached container answering on `url`."""

    docker: str
    name: str
    url: str

    def logs(self) -> str:
        result = subprocess.run([self.docker, "logs", self.name], capture_output=True, text=True, check=False)
        return result.stdout + result.stderr

    def stop(self) -> None:
        subprocess.run([self.docker, "rm", "--force", self.name], capture_output=True, check=False)

    def get(self, path: str, timeout_s: float = 5.0) -> tuple[int, dict]:
        """GET `path`: (status, the JSON body, or {} when the body is not JSON)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, {}
        try:
            return status, json.loads(body)
        except json.JSONDecodeError:
            return status, {}

    def wait(self, path: str, timeout_s: float) -> dict:
        """Poll `path` until it answers 200; its JSON body.

        Raises:
            RuntimeError: it did not within `timeout_s`, with the container's log.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                status, body = self.get(path)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                status, body = 0, {}
            if status == 200:
                return body
            time.sleep(1)
        raise RuntimeError(f"{self.name}: {self.url}{path} not 200 after {timeout_s:.0f} s\n{self.logs()}")


def start(docker: str, name: str, image: str, home: str, argv: list[str], env: dict, port: int) -> Server:
    """Run `argv` in `image` as the detached container `name`, hardened, answering on `port`."""
    subprocess.run([docker, "rm", "--force", name], capture_output=True, check=False)
    env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
    command = [docker, "run", "--detach", "--name", name, *hardened_flags(home), *env_flags, image, *argv]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return Server(docker, name, f"http://127.0.0.1:{port}")


def start_mlflow(docker: str) -> Server:
    """The cityseg-mlflow image's server (wait for /health); SQLite and artifacts in its $HOME tmpfs."""
    port = free_port()
    argv = ["mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    argv += ["--backend-store-uri", f"sqlite:///{MLFLOW_HOME}/mlflow.db", "--serve-artifacts"]
    argv += ["--artifacts-destination", f"{MLFLOW_HOME}/artifacts"]
    server = start(
        docker, "cityseg-e2e-mlflow", container_images.image("mlflow"), MLFLOW_HOME, argv, {}, port
    )
    server.wait("/health", timeout_s=180)
    return server


def start_serve(docker: str, tracking_uri: str, model: str, port: int) -> Server:
    """`cityseg serve` from the cityseg-serve image on `port`, following `model` in the MLflow at
    `tracking_uri`; it answers before a model exists and loads one as soon as the alias points at it."""
    argv = ["--host", "127.0.0.1", "--port", str(port), "--model", model, "--poll-seconds", "2"]
    env = {"MLFLOW_TRACKING_URI": tracking_uri}
    image = container_images.image("serve")
    return start(docker, "cityseg-e2e-serve", image, docker_tasks.HOME, argv, env, port)


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0
