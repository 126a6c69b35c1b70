"""`cityseg run --runner docker`: every task in its own image, hardened as the cluster runs its pods.

kfp.local's DockerRunner hands these docker-py `containers.run` arguments to every task container:

- uid 1000, a read-only root filesystem, every capability dropped and no privilege escalation: the
  securityContext of every cityseg pod in manifests/ (Docker's default seccomp profile is the
  RuntimeDefault those pods ask for);
- writable tmpfs only where those pods mount emptyDir volumes: `$HOME` (/home/cityseg) and /tmp;
  the images point every cache (Keras, Matplotlib, MLflow, TensorFlow Datasets) into `$HOME`;
- the host network, so a task reaches the MLflow server and `cityseg serve` by the URLs the host uses.

kfp.local bind-mounts the run folder (every artifact) at its own path; `cityseg.pipelines.local`
adds the earlier runs read-only, where cached outputs stay. Local paths among the pipeline's
parameters (the Cityscapes data, the serving folder) are bind-mounted at their own paths too, the
data read-only; gs:// paths go through components/storage.py as on the cluster.
"""

import os
from collections.abc import Iterable
from pathlib import Path

from cityseg.components import image_base

HOME = "/home/cityseg"
# Mount path -> tmpfs size: the emptyDirs of the train worker (manifests/training/tfjob.yaml) and of
# the predictor (manifests/serving/inferenceservice.yaml), the pods that run the cityseg images.
SCRATCH = {HOME: "4g", "/tmp": "4g"}
UID, GID = 1000, 1000
# Pipeline parameters that name host folders: name -> whether the task may write there.
HOST_FOLDERS = {"data": False, "serving_dir": True}


def scratch_tmpfs() -> dict[str, str]:
    """The tmpfs mounts: mount path -> options. Owned by the task's user, as the pods' fsGroup makes
    their emptyDirs; docker keeps a folder's mode when the image has it, so `mode=` would not do."""
    return {path: f"rw,nosuid,nodev,size={size},uid={UID},gid={GID}" for path, size in SCRATCH.items()}


def host_folders(params: dict) -> dict[str, bool]:
    """The local folders that `params` names: absolute path -> writable.

    Raises:
        ValueError: a read-only folder (the data) does not exist, naming the parameter.
    """
    folders = {}
    for name, writable in HOST_FOLDERS.items():
        value = str(params.get(name) or "")
        if not value or "://" in value:
            continue
        path = Path(value).resolve()
        if writable:
            path.mkdir(parents=True, exist_ok=True)
            writable_by_tasks(path)
        elif not path.exists():
            raise ValueError(f"{name}: {value} does not exist on this machine")
        folders[str(path)] = writable
    return folders


def writable_by_tasks(folder: Path) -> None:
    """Let the tasks' user write into `folder`, as the pods' fsGroup lets them write into their volumes:
    hand it to that user when this process is root, else open it to all."""
    if os.geteuid() == 0:
        os.chown(folder, UID, GID)
    elif os.geteuid() != UID:
        folder.chmod(0o777)


def container_run_args(folders: dict[str, bool]) -> dict:
    """The docker-py `containers.run` arguments of every task container; `folders` as `host_folders`."""
    from docker.types import Mount

    return {
        "user": f"{UID}:{GID}",
        "read_only": True,
        "tmpfs": scratch_tmpfs(),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "network_mode": "host",
        "mounts": [
            Mount(target=path, source=path, type="bind", read_only=not writable)
            for path, writable in sorted(folders.items())
        ],
    }


def params_with_folders(params: dict) -> dict:
    """`params` with each local folder of `HOST_FOLDERS` made absolute: tasks see it at that path."""
    return {**params, **{name: str(Path(params[name]).resolve()) for name in _local(params)}}


def _local(params: dict) -> list[str]:
    return [name for name in HOST_FOLDERS if params.get(name) and "://" not in str(params[name])]


def image_labels() -> dict[str, dict[str, str]]:
    """The labels of every image the docker daemon holds, by tag."""
    import docker

    client = docker.from_env()
    try:
        return {tag: held.labels or {} for held in client.images.list() for tag in held.tags}
    finally:
        client.close()


def image_problems(
    references: Iterable[str], labels: dict[str, dict[str, str]], source_key: str
) -> list[str]:
    """What keeps the images `references` from running this checkout's steps, given every held
    image's `labels`: each one not built (kfp.local would try to pull it), or built from other sources
    than those of `source_key`. kfp.local ships each component's function from here while the package
    comes from the image, so an image of older sources would run a mix of both.
    """
    missing = sorted(reference for reference in set(references) if reference not in labels)
    stale = sorted(
        reference
        for reference in set(references) - set(missing)
        if labels[reference].get(image_base.SOURCE_LABEL) != source_key
    )
    problems = [f"not built: {', '.join(missing)}"] if missing else []
    return problems + ([f"built from other sources than this checkout: {', '.join(stale)}"] if stale else [])


def check_tracking_uri(uri: str) -> None:
    """Containers share no file with the host's MLflow store: they need a server, as on the cluster.

    Raises:
        ValueError: `uri` is not an http(s) URL, saying how to start a server.
    """
    if not uri.startswith(("http://", "https://")):
        raise ValueError(
            f"--runner docker reaches MLflow through a server, not {uri}: start one (`mlflow server "
            "--serve-artifacts --host 127.0.0.1 --port 5000`, or the cityseg-mlflow image) and pass "
            "--mlflow-tracking-uri http://127.0.0.1:5000"
        )
