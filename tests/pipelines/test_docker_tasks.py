"""`cityseg run --runner docker`: the task containers carry the manifests' hardening (no docker needed)."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from kfp import local

from cityseg.pipelines import docker_tasks
from cityseg.pipelines.cli import run
from cityseg.pipelines.local import task_runner
from tests.manifests.workloads import workloads

# The pods that run cityseg images: the TFJob's train worker and the predictor.
CITYSEG_PODS = ("TFJob/cityseg-train-manual", "InferenceService/cityseg")


def _cityseg_pods() -> list[tuple[str, dict]]:
    return [(label, pod) for label, pod in workloads() if any(name in label for name in CITYSEG_PODS)]


def test_the_containers_run_as_the_manifests_user_read_only_without_capabilities_or_escalation():
    args = docker_tasks.container_run_args({})
    assert args["user"] == "1000:1000"
    assert args["read_only"] is True
    assert args["cap_drop"] == ["ALL"]
    assert args["security_opt"] == ["no-new-privileges"]
    assert args["mounts"] == []
    for label, pod in _cityseg_pods():
        context = {**pod.get("securityContext", {}), **pod["containers"][0]["securityContext"]}
        assert context["runAsUser"] == docker_tasks.UID, label
        assert context["runAsGroup"] == docker_tasks.GID, label
        assert context["readOnlyRootFilesystem"] is True and context["capabilities"] == {"drop": ["ALL"]}


def test_the_writable_mounts_are_exactly_the_emptydirs_of_the_cityseg_pods():
    pods = _cityseg_pods()
    assert len(pods) == len(CITYSEG_PODS)
    for label, pod in pods:
        scratch = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        mounted = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"] if m["name"] in scratch}
        assert mounted == set(docker_tasks.SCRATCH), label
    tmpfs = docker_tasks.container_run_args({})["tmpfs"]
    assert set(tmpfs) == {"/home/cityseg", "/tmp"}
    assert tmpfs["/home/cityseg"] == "rw,nosuid,nodev,size=4g,uid=1000,gid=1000"


def test_kfp_local_accepts_the_arguments():
    runner = local.DockerRunner(**docker_tasks.container_run_args({}))
    assert runner.container_run_args["network_mode"] == "host"


def test_local_folders_are_bind_mounted_at_their_own_path_the_data_read_only(tmp_path):
    data = tmp_path / "cityscapes"
    data.mkdir()
    params = {"data": str(data), "serving_dir": str(tmp_path / "serving")}
    folders = docker_tasks.host_folders(params)
    assert folders == {str(data): False, str(tmp_path / "serving"): True}
    assert (tmp_path / "serving").is_dir()
    mounts = docker_tasks.container_run_args(folders)["mounts"]
    assert [(m["Source"], m["Target"], m["ReadOnly"]) for m in mounts] == [
        (str(data), str(data), True),
        (str(tmp_path / "serving"), str(tmp_path / "serving"), False),
    ]
    assert docker_tasks.host_folders({"data": "gs://bucket/cityscapes", "serving_dir": ""}) == {}


def test_a_missing_data_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"data: {tmp_path / 'nowhere'} does not exist"):
        docker_tasks.host_folders({"data": str(tmp_path / "nowhere")})


def test_relative_folders_become_absolute_for_the_tasks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = docker_tasks.params_with_folders({"data": "", "serving_dir": "serving", "epochs": 1})
    assert params == {"data": "", "serving_dir": str(tmp_path / "serving"), "epochs": 1}


@pytest.mark.parametrize("uri", ["sqlite:///work/mlflow.db", "/work/mlruns", "file:///work/mlruns"])
def test_the_docker_runner_needs_an_mlflow_server(uri):
    with pytest.raises(ValueError, match="reaches MLflow through a server"):
        task_runner("docker", {"mlflow_tracking_uri": uri}, Path("work"))


def test_an_unknown_runner_is_refused_by_the_cli():
    result = CliRunner().invoke(run, ["--runner", "kubernetes"])
    assert result.exit_code == 2
    assert "'kubernetes' is not one of 'subprocess', 'docker'" in result.output


def test_the_subprocess_runner_stays_the_default():
    assert isinstance(task_runner("subprocess", {}, Path("work")), local.SubprocessRunner)
    with pytest.raises(ValueError, match="unknown runner 'podman'"):
        task_runner("podman", {}, Path("work"))


def test_images_not_built_or_built_from_other_sources_are_named():
    label = "io.cityseg.source-key"
    labels = {"r/cityseg-train:1": {label: "k1"}, "r/cityseg-push:1": {label: "k0"}, "r/cityseg-serve:1": {}}
    references = ["r/cityseg-train:1", "r/cityseg-push:1", "r/cityseg-serve:1", "r/cityseg-synth:1"]
    assert docker_tasks.image_problems(references, labels, "k1") == [
        "not built: r/cityseg-synth:1",
        "built from other sources than this checkout: r/cityseg-push:1, r/cityseg-serve:1",
    ]
    assert docker_tasks.image_problems(["r/cityseg-train:1"], labels, "k1") == []
