"""The object pipeline: its compiled DAG, its parameters, `cityseg run --pipeline objects` end to end."""

import pytest
import yaml
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import container_images
from cityseg.components.crops.config import CropsConfig
from cityseg.components.defaults import defaults
from cityseg.components.objects.config import ObjectsPushConfig, ObjectsTrainConfig
from cityseg.components.push import registry
from cityseg.components.train.launch import Launch
from cityseg.pipelines.client import compile_pipeline

STEPS = ["crops", "train-objects", "evaluate-objects", "push-objects"]


def _tasks(ir: dict) -> dict:
    tasks = dict(ir["root"]["dag"]["tasks"])
    for component in ir["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


@pytest.fixture(scope="module")
def gke(tmp_path_factory) -> tuple[dict, dict]:
    docs = list(
        yaml.safe_load_all(compile_pipeline("objects", tmp_path_factory.mktemp("ir") / "o.yaml").read_text())
    )
    return docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_the_steps_run_in_order_and_only_the_data_steps_are_cached(gke):
    ir, _ = gke
    tasks = _tasks(ir)
    assert "condition-branches-1" in tasks["crops"]["dependentTasks"]
    assert tasks["train-objects"]["dependentTasks"] == ["crops"]
    assert set(tasks["evaluate-objects"]["dependentTasks"]) == {"crops", "train-objects"}
    assert set(tasks["push-objects"]["dependentTasks"]) == {"crops", "evaluate-objects", "train-objects"}
    caching = {step: tasks[step]["cachingOptions"].get("enableCache", False) for step in STEPS}
    assert caching == {
        "crops": True,
        "train-objects": False,
        "evaluate-objects": False,
        "push-objects": False,
    }
    assert tasks["synth-objects"]["cachingOptions"] == {"enableCache": True}


def test_training_is_a_tfjob_on_the_checkpoint_volume_and_its_waiting_task_asks_for_no_gpu(gke):
    ir, platform = gke
    executors = ir["deploymentSpec"]["executors"]
    # train_objects only submits its TFJob and waits: the job's workers ask for the GPUs.
    assert "accelerator" not in executors["exec-train-objects"]["container"]["resources"]
    assert "nodeSelector" not in platform["exec-train-objects"]
    assert "tolerations" not in platform["exec-train-objects"]
    (mount,) = platform["exec-train-objects"]["pvcMount"]
    assert (mount["constant"], mount["mountPath"]) == ("cityseg-checkpoints", "/mnt/checkpoints")
    assert platform["exec-train-objects"]["podMetadata"]["annotations"] == {"gke-gcsfuse/volumes": "true"}
    task = _tasks(ir)["train-objects"]
    constants = {
        name: value["runtimeValue"]["constant"]
        for name, value in task["inputs"]["parameters"].items()
        if "runtimeValue" in value
    }
    assert constants["launcher"] == "tfjob" and constants["checkpoint_root"] == "/mnt/checkpoints"
    # The TFJob's workers run `cityseg objects train` in the train image.
    assert constants["image"] == container_images.image("train")
    assert task["inputs"]["parameters"]["workers"] == {"componentInputParameter": "workers"}
    assert task["inputs"]["parameters"]["gpus_per_worker"] == {"componentInputParameter": "gpus_per_worker"}
    assert task["retryPolicy"]["maxRetryCount"] == 3


def test_every_task_gets_its_image_and_secrets(gke):
    ir, platform = gke
    executors = ir["deploymentSpec"]["executors"]
    images = {
        name: executor["container"]["image"].rsplit("/", 1)[1].split(":")[0]
        for name, executor in executors.items()
    }
    assert images["exec-crops"] == "cityseg-shard" and images["exec-push-objects"] == "cityseg-push"
    assert images["exec-train-objects"] == "cityseg-train"
    for name in executors:
        assert platform[name]["secretAsVolume"][0]["secretName"] == "gcs-credentials", name


def test_locally_the_training_runs_in_its_task(tmp_path):
    from kfp import compiler

    from cityseg.pipelines.objects import create_pipeline
    from cityseg.pipelines.steps import LOCAL

    compiler.Compiler().compile(create_pipeline(LOCAL), str(tmp_path / "local.yaml"))
    ir, *platform = yaml.safe_load_all((tmp_path / "local.yaml").read_text())
    assert platform == []
    parameters = _tasks(ir)["train-objects"]["inputs"]["parameters"]
    assert parameters["launcher"] == {"runtimeValue": {"constant": "local"}}
    assert parameters["checkpoint_root"] == {"runtimeValue": {"constant": ""}}


def test_parameters_take_their_defaults_from_the_steps_dataclasses(gke):
    ir, _ = gke
    parameters = {
        name: spec.get("defaultValue") for name, spec in ir["root"]["inputDefinitions"]["parameters"].items()
    }
    crops, train, push = defaults(CropsConfig), defaults(ObjectsTrainConfig), defaults(ObjectsPushConfig)
    assert parameters["crop_size"] == crops.size and parameters["min_visible"] == crops.min_visible
    assert parameters["epochs"] == train.epochs and parameters["augment"] == ",".join(train.augment)
    assert parameters["registered_model"] == push.name == "cityseg-objects"
    assert parameters["min_macro_f1"] == push.min_macro_f1
    launch = defaults(Launch)
    assert (parameters["workers"], parameters["gpus_per_worker"]) == (launch.workers, launch.gpus_per_worker)


def test_run_refuses_flags_the_objects_pipeline_does_not_have():
    result = CliRunner().invoke(main, ["run", "--pipeline", "objects", "--loss", "dice"])
    assert result.exit_code == 2 and "--loss: not a parameter of the objects pipeline" in result.output
    result = CliRunner().invoke(main, ["run", "--param", "crop_size=32"])
    assert result.exit_code == 2 and "--param is for --pipeline objects" in result.output
    result = CliRunner().invoke(main, ["run", "--pipeline", "objects", "--param", "crop_size=0"])
    assert result.exit_code == 1 and "size must be at least 1" in result.output
    result = CliRunner().invoke(main, ["run", "--pipeline", "objects", "--workers", "0"])
    assert result.exit_code == 1 and "workers must be at least 1, got 0" in result.output


@pytest.mark.slow
def test_run_objects_locally_registers_a_blessed_classifier(tmp_path, mlflow_uri):
    name = "objects-run-test"
    params = {
        "synthetic_frames": "9", "synthetic_height": "128", "synthetic_width": "256", "crop_size": "16",
        "min_box": "8", "min_pixels": "20", "model_width": "4", "min_macro_f1": "0.0",
        "registered_model": name,
    }  # fmt: skip
    argv = ["run", "--pipeline", "objects", "--epochs", "1", "--work-dir", str(tmp_path / "work")]
    argv += [arg for key, value in params.items() for arg in ("--param", f"{key}={value}")]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert f"{name} v1 blessed" in result.stdout and "aliases: champion" in result.stdout
    assert registry.alias_version(name, registry.CHAMPION) == "1"
