"""Distribution strategy from the environment, and a launcher for several local workers.

A Kubeflow TFJob gives each pod a `TF_CONFIG` naming the cluster and the pod's task; `--workers N`
gives N local processes exactly that, on 127.0.0.1, so one entry point serves both.
"""

import dataclasses
import json
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


class WorkerFailedError(RuntimeError):
    """A local worker process exited with an error."""


@dataclasses.dataclass(frozen=True)
class Task:
    """This process's place in the cluster: worker 0 (or the `chief` task) is the chief."""

    type: str = "worker"
    index: int = 0
    num_workers: int = 1

    @property
    def is_chief(self) -> bool:
        return self.type == "chief" or (self.type == "worker" and self.index == 0)


def task_from_env(environ: dict[str, str] | None = None) -> Task | None:
    """The task described by `TF_CONFIG`, or None when it is unset.

    Raises:
        ValueError: TF_CONFIG is not JSON with a cluster and a task.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
        return Task(type=task["type"], index=int(task["index"]), num_workers=workers)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"TF_CONFIG is not a valid cluster spec ({err}): {raw[:200]}") from err


def choose_strategy():
    """MultiWorkerMirroredStrategy under TF_CONFIG, MirroredStrategy on several GPUs, else the default.

    Must run before any other TensorFlow op: collective ops are configured at context creation.

    Returns:
        (strategy, its name, this process's Task).
    """
    import tensorflow as tf

    task = task_from_env()
    if task is not None:
        # Collective ops over gRPC work on CPU and GPU alike; NCCL is picked automatically on GPUs.
        return tf.distribute.MultiWorkerMirroredStrategy(), "MultiWorkerMirroredStrategy", task
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), "MirroredStrategy", Task()
    return tf.distribute.get_strategy(), "default", Task()


def local_cluster(num_workers: int, ports: Sequence[int]) -> list[str]:
    """TF_CONFIG values for `num_workers` workers on 127.0.0.1 at `ports`, worker 0 being the chief."""
    hosts = [f"127.0.0.1:{port}" for port in ports[:num_workers]]
    return [
        json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
        for i in range(num_workers)
    ]


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _raise_if_failed(index: int, log_path: Path, process: subprocess.Popen) -> None:
    if process.returncode not in (None, 0):
        tail = log_path.read_text(errors="replace")[-3000:]
        raise WorkerFailedError(
            f"worker {index} exited with {process.returncode}; end of {log_path}:\n{tail}"
        )


def launch_local_workers(argv: Sequence[str], num_workers: int, log_dir: Path, poll_s: float = 0.5) -> None:
    """Run `argv` as `num_workers` processes, each with its own TF_CONFIG, and wait for all of them.

    Each worker's output goes to `log_dir/worker-<i>.log`. If one fails, the others are stopped.

    Raises:
        WorkerFailedError: a worker exited with an error; the message holds the end of its log.
    """
    if num_workers < 1:
        raise ValueError(f"workers must be at least 1, got {num_workers}")
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for index, tf_config in enumerate(local_cluster(num_workers, _free_ports(num_workers))):
        log_path = log_dir / f"worker-{index}.log"
        with log_path.open("wb") as out:
            env = {**os.environ, "TF_CONFIG": tf_config}
            processes.append(
                (index, log_path, subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env))
            )
        log.info("started worker %d (pid %d), log %s", index, processes[-1][2].pid, log_path)
    try:
        while any(p.poll() is None for _, _, p in processes):
            for worker in processes:
                _raise_if_failed(*worker)
            time.sleep(poll_s)
        for worker in processes:
            _raise_if_failed(*worker)
    finally:
        for _, _, process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
