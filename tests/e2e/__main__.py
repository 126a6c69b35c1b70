"""`make e2e`: the training pipeline end to end, every step in its own image, hardened as on the cluster.

After `make images CPU_ONLY=1` (docs/containers.md):
1. the images hold the project as real files, and a container under the task hardening runs as uid
   1000 on a read-only root with writable $HOME and /tmp, no capabilities and no privilege escalation;
2. an MLflow server from the cityseg-mlflow image, reached by URL, artifacts proxied through it, and
   `cityseg serve` from the cityseg-serve image at the deploy step's local URL, following @champion;
3. `cityseg run --runner docker` at small settings, through push and deploy; each task's log names
   the image it ran in;
4. a version was registered with @champion, the deploy step deployed it to that server, and the
   server serves it and is ready.
Exits non-zero on the first failure, and prints the seconds each phase took.
"""

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from cityseg.components import container_images
from cityseg.components.defaults import defaults
from cityseg.components.deploy.config import DeployConfig
from cityseg.pipelines import docker_tasks
from tests.e2e import servers

log = logging.getLogger("e2e")

# A fresh folder each time: with an earlier run's cache, steps would not run in their images.
WORK_DIR = Path("work/e2e", time.strftime("%Y%m%d-%H%M%S"))
MODEL = "cityseg"
# Small settings: 24 synthetic frames and one epoch of the smallest model, through push and deploy.
PARAMS = {
    "synthetic-frames": 24,
    "synthetic-height": 64,
    "synthetic-width": 128,
    "height": 64,
    "width": 128,
    "model": "unet_mini",
    "epochs": 1,
    "batch-size": 4,
    "shards": 2,
    "min-dice": 0.0,
    "registered-model": MODEL,
}
# Steps of a training run, with the task (log file) name kfp.local gives each.
RUN_STEPS = ("synth", "remap", "shard", "validate", "train", "evaluate", "push", "deploy")
# Runs under the task containers' hardening; fails loudly on what the cluster would refuse.
PROBE = """
import os, pathlib
import cityseg.components.train.core as core
path = pathlib.Path(core.__file__)
assert "site-packages" in path.parts and not any(p.is_symlink() for p in (path, *path.parents)), path
assert os.getuid() == 1000 and os.getgid() == 1000, (os.getuid(), os.getgid())
for folder in (os.environ["HOME"], "/tmp"):
    pathlib.Path(folder, "probe").write_text("ok")
try:
    pathlib.Path("/opt/probe").write_text("no")
    raise SystemExit("the root filesystem is writable")
except OSError:
    pass
lines = pathlib.Path("/proc/self/status").read_text().splitlines()
status = dict(line.split(":\\t", 1) for line in lines if ":\\t" in line)
assert status["NoNewPrivs"].strip() == "1", status["NoNewPrivs"]
assert int(status["CapEff"], 16) == 0, status["CapEff"]
print("hardened, real files:", path)
"""


def check_images() -> None:
    """Every step image holds the project as files, and the train image passes the hardening probe."""
    import docker

    client = docker.from_env()
    try:
        args = docker_tasks.container_run_args({})
        image = container_images.image("train")
        output = client.containers.run(image, ["python", "-c", PROBE], remove=True, **args)
        log.info("%s: %s", image, output.decode().strip().splitlines()[-1])
    finally:
        client.close()


def run_pipeline(tracking_uri: str) -> Path:
    """`cityseg run --runner docker` at `PARAMS`, its output on ours; the folder of its task logs.

    Raises:
        RuntimeError: the run failed (its output above says where).
    """
    argv = [str(Path(sys.executable).with_name("cityseg")), "run", "--runner", "docker"]
    argv += ["--work-dir", str(WORK_DIR), "--mlflow-tracking-uri", tracking_uri]
    argv += [item for name, value in PARAMS.items() for item in (f"--{name}", str(value))]
    started = time.time()
    returncode = subprocess.run(argv, check=False).returncode
    if returncode != 0:
        raise RuntimeError(f"cityseg run --runner docker failed with exit code {returncode}")
    (logs,) = [path for path in (WORK_DIR / "runs").glob("*/logs") if path.stat().st_mtime >= started]
    return logs


def check_task_images(logs: Path) -> None:
    """Each step's log says kfp.local ran it in the step's own image."""
    for step in RUN_STEPS:
        image = container_images.image(step)
        if f"Found image {image!r}" not in (logs / f"{step}.log").read_text():
            raise RuntimeError(f"{logs / f'{step}.log'}: the {step} task did not run in {image}")
    log.info("every step ran in its own image (logs: %s)", logs)


def check_registered(tracking_uri: str) -> str:
    """The version @champion points at in the server; it must exist."""
    from mlflow.tracking import MlflowClient

    version = MlflowClient(tracking_uri).get_model_version_by_alias(MODEL, "champion")
    log.info("MLflow: %s version %s is @champion (run %s)", MODEL, version.version, version.run_id)
    return version.version


def check_deployed(logs: Path, serve: servers.Server, version: str) -> None:
    """The deploy step deployed `version` to the server, which serves it and is ready."""
    (output,) = logs.parent.glob("*/deploy/executor_output.json")
    url = json.loads(output.read_text())["parameterValues"]["url"]
    if url.rstrip("/") != serve.url:
        raise RuntimeError(f"{output}: the deploy step deployed to {url!r}, not to {serve.url}")
    status, info = serve.get("/model")
    if status != 200 or str(info.get("version")) != version:
        raise RuntimeError(f"cityseg serve serves {info.get('version')!r}, not version {version}")
    serve.wait("/v2/health/ready", timeout_s=30)
    log.info("deployed: cityseg serve (%s) serves %s version %s and is ready", serve.url, MODEL, version)


def start_servers(docker: str) -> tuple[servers.Server, servers.Server]:
    """MLflow, healthy, and `cityseg serve` at the deploy step's local URL, following @champion."""
    port = urlsplit(defaults(DeployConfig).local_url).port
    if not servers.port_is_free(port):
        raise RuntimeError(f"127.0.0.1:{port}, where the deploy step finds `cityseg serve`, is taken")
    mlflow = servers.start_mlflow(docker)
    try:
        mlflow.wait("/health", timeout_s=180)
        serve = servers.start_serve(docker, mlflow.url, f"models:/{MODEL}@champion", port)
        serve.wait("/healthz", timeout_s=180)
    except BaseException:
        mlflow.stop()
        raise
    return mlflow, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docker", default="docker", help="The docker CLI.")
    docker = parser.parse_args().docker
    logging.basicConfig(level=logging.INFO, format="%(asctime)s e2e: %(message)s", datefmt="%H:%M:%S")
    timings = {}
    start = time.perf_counter()
    check_images()
    timings["image checks"] = time.perf_counter() - start
    mlflow, serve = start_servers(docker)
    try:
        timings["servers"] = time.perf_counter() - start - sum(timings.values())
        logs = run_pipeline(mlflow.url)
        timings["pipeline run"] = time.perf_counter() - start - sum(timings.values())
        check_task_images(logs)
        check_deployed(logs, serve, check_registered(mlflow.url))
        timings["checks"] = time.perf_counter() - start - sum(timings.values())
    finally:
        serve.stop()
        mlflow.stop()
    log.info(
        "passed in %.0f s: %s", sum(timings.values()), ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    )


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
        log.error("FAILED: %s", err)
        sys.exit(1)
