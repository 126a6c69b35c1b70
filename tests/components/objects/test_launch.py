"""The object classifier through the train step's launcher: its TFJob, against the stand-in Kubernetes API."""

import dataclasses
import functools
import json

from cityseg.components import container_images
from cityseg.components.objects.cli import train as train_command
from cityseg.components.objects.cli import train_argv
from cityseg.components.objects.config import ObjectsTrainConfig
from cityseg.components.objects.launch import TRAINER
from cityseg.components.train.launch import Launch, train_model
from cityseg.components.train.tfjob_client import run_tfjob
from tests.components.train.tfjob_api import NAMESPACE, TFJobAPI, serve

RUN_ID = "4f6c1a2e-9b3d-4c8e-a1f0-5d2b7e9c3a10"


def _config_of(argv: list[str]) -> ObjectsTrainConfig:
    """The config that `cityseg objects train` builds from `argv` (after "objects train")."""
    params = train_command.make_context("train", argv).params
    return ObjectsTrainConfig(**{name: value for name, value in params.items() if name != "workers"})


def test_a_tfjob_of_objects_workers_runs_cityseg_objects_train_and_its_model_becomes_the_artifact(tmp_path):
    config = ObjectsTrainConfig(
        data="/gcs/bucket/crops", out=str(tmp_path / "artifact"), epochs=7, batch_size=48,
        learning_rate=0.01, width=8, augment=("flip", "color"), class_weighting="none", seed=3,
        tracking_uri="http://mlflow.kubeflow:5000", experiment="objects-x", kfp_run_id=RUN_ID,
    )  # fmt: skip
    launch = Launch(
        workers=3, launcher="tfjob", gpus_per_worker=2, image=container_images.image("train_objects"),
        checkpoint_root=str(tmp_path / "checkpoints"), data_uri="gs://bucket/crops",
    )  # fmt: skip
    # What the job's chief leaves on the shared volume (no pod runs here).
    work = tmp_path / "checkpoints" / RUN_ID / "objects"
    work.mkdir(parents=True)
    (work / "train_info.json").write_text(json.dumps({"val_accuracy": 0.75}))
    (work / "model.keras").write_bytes(b"weights")

    state = TFJobAPI(name=f"cityseg-objects-{RUN_ID}")
    with serve(state) as api:
        info = train_model(
            config, launch, TRAINER, run_job=functools.partial(run_tfjob, api=api, poll_s=0.001)
        )

    assert [request[:2] for request in state.requests] == [("POST", 201)] + [("GET", 200)] * 3
    job = state.job
    assert (job["metadata"]["name"], job["metadata"]["namespace"]) == (f"cityseg-objects-{RUN_ID}", NAMESPACE)
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 3
    (container,) = worker["template"]["spec"]["containers"]
    assert container["image"] == container_images.image("train")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    command = container["command"]
    # The pods read the crops at their URI and write to the run's folder on the volume.
    assert command == [
        "cityseg", "objects", "train", "--data", "gs://bucket/crops", "--out", str(work),
        "--epochs", "7", "--batch-size", "48", "--learning-rate", "0.01", "--width", "8",
        "--augment", "flip,color", "--class-weighting", "none", "--seed", "3",
        "--mlflow-tracking-uri", "http://mlflow.kubeflow:5000", "--experiment", "objects-x",
        "--kfp-run-id", RUN_ID, "--work-dir", "work",
    ]  # fmt: skip
    assert _config_of(command[3:]) == dataclasses.replace(config, data="gs://bucket/crops", out=str(work))
    assert info == {"val_accuracy": 0.75}
    assert sorted(path.name for path in (tmp_path / "artifact").iterdir()) == [
        "model.keras",
        "train_info.json",
    ]


def test_train_argv_round_trips_through_the_command_even_without_augmentation():
    config = ObjectsTrainConfig(data="crops", out="model", augment=(), tracking_uri=None, kfp_run_id=None)
    argv = train_argv(config)
    assert argv[:2] == ["objects", "train"] and argv[argv.index("--augment") + 1] == "none"
    assert "--mlflow-tracking-uri" not in argv and "--kfp-run-id" not in argv
    assert _config_of(argv[2:]) == config
