"""`make e2e`: the training pipeline end to end, every step in its own image, hardened as on the cluster.

After `make images CPU_ONLY=1` (docs/containers.md):
1. the images hold the project as real files, and a container under the task hardening runs as uid
   1000 on a read-only root with writable $HOME and /tmp, no capabilities and no privilege escalation;
2. an MLflow server from the cityseg-mlflow image, reached by URL, artifacts proxied through it;
3. `cityseg run --runner docker` at small settings, through push and deploy; each task's log names
   the image it ran in;
4. a version was registered with @champion, and the cityseg-serve image serves it.
Exits non-zero on the first failure, and prints the seconds each phase took.
"""

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

from cityseg.components import container_images
from cityseg.pipelines import docker_tasks
from cityseg.pipelines.steps import COMPONENTS
from tests.e2e import servers

log = logging.getLogger("e2e")

WORK_DIR = Path("work/e2e")
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
        image = container_images.image(COMPONENTS[step][1])
        if f"Found image {image!r}" not in (logs / f"{step}.log").read_text():
            raise RuntimeError(f"{logs / f'{step}.log'}: the {step} task did not run in {image}")
    log.info("every step ran in its own image (logs: %s)", logs)


def check_registered(tracking_uri: str) -> str:
    """The version @champion points at in the server; it must exist."""
    from mlflow.tracking import MlflowClient

    version = MlflowClient(tracking_uri).get_model_version_by_alias(MODEL, "champion")
    log.info("MLflow: %s version %s is @champion (run %s)", MODEL, version.version, version.run_id)
    return version.version


def check_served(docker: str, tracking_uri: str, version: str) -> None:
    """The cityseg-serve image, hardened, loads models:/cityseg@champion and serves `version` on /v2."""
    server = servers.start_serve(docker, tracking_uri, f"models:/{MODEL}@champion")
    try:
        server.wait("/v2/health/ready", timeout_s=300)
        status, info = server.get("/model")
        if status != 200 or str(info.get("version")) != version:
            raise RuntimeError(f"cityseg serve serves {info.get('version')!r}, not version {version}")
        log.info("cityseg serve (%s) serves %s version %s", server.url, MODEL, version)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docker", default="docker", help="The docker CLI.")
    docker = parser.parse_args().docker
    logging.basicConfig(level=logging.INFO, format="%(asctime)s e2e: %(message)s", datefmt="%H:%M:%S")
    timings = {}
    start = time.perf_counter()
    check_images()
    timings["image checks"] = time.perf_counter() - start
    mlflow = servers.start_mlflow(docker)
    try:
        mlflow.wait("/health", timeout_s=180)
        timings["mlflow server"] = time.perf_counter() - start - sum(timings.values())
        logs = run_pipeline(mlflow.url)
        timings["pipeline run"] = time.perf_counter() - start - sum(timings.values())
        check_task_images(logs)
        version = check_registered(mlflow.url)
        check_served(docker, mlflow.url, version)
        timings["serving check"] = time.perf_counter() - start - sum(timings.values())
    finally:
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
