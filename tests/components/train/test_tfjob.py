"""The TFJob the train step creates for multi-worker training on the cluster."""

import re
from pathlib import Path

import pytest
import yaml

from cityseg.components import container_images
from cityseg.components.train.cli import train_argv
from cityseg.components.train.config import TrainConfig
from cityseg.components.train.launch import SEGMENTATION, Launch, Trainer, tfjob_name, train_model
from cityseg.components.train.tfjob import TFJobSpec, build_tfjob

ROOT = Path(__file__).resolve().parents[3]
CONFIG = TrainConfig(
    data="gs://YOUR_BUCKET/cityseg/shards",
    out="/mnt/checkpoints/manual/train",
    model="unet",
    loss="ce_dice",
    epochs=40,
    batch_size=16,
    height=512,
    width=1024,
)


def _spec(**overrides) -> TFJobSpec:
    fields = {
        "name": "cityseg-train-manual",
        "image": container_images.image("train"),
        "command": ["cityseg", *train_argv(CONFIG)],
        "workers": 2,
    }
    return TFJobSpec(**{**fields, **overrides})


def test_tfjob_runs_n_identical_gpu_workers_of_the_train_image():
    job = build_tfjob(_spec(workers=4, gpus_per_worker=2))
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "TFJob")
    assert list(job["spec"]["tfReplicaSpecs"]) == ["Worker"]
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 4
    assert worker["restartPolicy"] == "ExitCode"
    (container,) = worker["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow"
    assert container["image"] == "ghcr.io/cityseg/cityseg-train:" + container_images.DEFAULT_TAG
    assert container["command"][:6] == ["cityseg", "train", "--data", CONFIG.data, "--out", CONFIG.out]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"}
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
    pod = worker["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "cityseg-checkpoints"}} in pod[
        "volumes"
    ]
    secrets = {
        env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env
    }
    assert secrets["MLFLOW_TRACKING_URI"] == {
        "name": "mlflow-credentials",
        "key": "tracking-uri",
        "optional": False,
    }
    assert job["spec"]["runPolicy"] == {"backoffLimit": 3, "cleanPodPolicy": "Running"}


def test_cpu_workers_ask_for_no_gpu_and_no_gpu_node():
    pod = build_tfjob(_spec(gpus_per_worker=0))["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in pod and "tolerations" not in pod


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("workers", 0, "a TFJob needs at least 1 worker, got 0"), ("gpus_per_worker", -1, "gpus_per_worker")],
)
def test_bad_specs_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        build_tfjob(_spec(**{field: value}))


def test_the_committed_template_is_what_the_train_step_builds():
    template = yaml.safe_load((ROOT / "manifests" / "training" / "tfjob.yaml").read_text())
    assert template == build_tfjob(_spec())


def test_one_worker_is_a_tfjob_too_so_the_launcher_pod_never_trains():
    worker = build_tfjob(_spec(workers=1))["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 1
    assert worker["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_train_argv_round_trips_through_the_train_command():
    from cityseg.components.train.cli import train

    argv = train_argv(CONFIG)
    assert argv[0] == "train"
    context = train.make_context("train", argv[1:])
    assert TrainConfig(**{k: v for k, v in context.params.items() if k != "workers"}) == CONFIG


def test_a_tfjob_needs_a_shared_checkpoint_volume(tmp_path):
    with pytest.raises(ValueError, match="a TFJob writes its model to a shared volume: set checkpoint_root"):
        train_model(CONFIG, Launch(workers=2, launcher="tfjob"))
    with pytest.raises(ValueError, match="launcher: unknown value 'slurm'"):
        train_model(CONFIG, Launch(launcher="slurm"))


def test_tfjob_names_are_kubernetes_names_fixed_per_run():
    run_id = "4F6C1A2E-9B3D-4C8E-A1F0-5D2B7E9C3A10-extra"
    longest = Trainer("a" * 18, "folder", SEGMENTATION.train, SEGMENTATION.argv)
    assert tfjob_name(SEGMENTATION, run_id) == "cityseg-train-4f6c1a2e-9b3d-4c8e-a1f0-5d2b7e9c3a10"
    assert tfjob_name(SEGMENTATION, None) == "cityseg-train-manual"
    name = tfjob_name(longest, run_id)
    # RFC 1123 label, as Kubernetes names a TFJob's pods and services after it.
    assert len(name) == 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)


@pytest.mark.parametrize("name", ["Objects", "a" * 19, "objects_x", "-objects", ""])
def test_a_trainer_name_that_would_break_its_tfjob_name_is_refused(name):
    with pytest.raises(ValueError, match="lowercase letters, digits and dashes, at most 18 characters"):
        Trainer(name, "folder", SEGMENTATION.train, SEGMENTATION.argv)
