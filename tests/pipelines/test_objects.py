"""The object pipeline: its compiled DAG, its parameters, `cityseg run --pipeline objects` end to end."""

import pytest
import yaml
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.crops.config import CropsConfig
from cityseg.components.defaults import defaults
from cityseg.components.objects.config import ObjectsPushConfig, ObjectsTrainConfig
from cityseg.components.push import registry
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


def test_training_gets_a_gpu_and_every_task_its_image_and_secrets(gke):
    ir, platform = gke
    executors = ir["deploymentSpec"]["executors"]
    assert executors["exec-train-objects"]["container"]["resources"]["accelerator"]["resourceCount"] == "1"
    images = {
        name: executor["container"]["image"].rsplit("/", 1)[1].split(":")[0]
        for name, executor in executors.items()
    }
    assert images["exec-crops"] == "cityseg-shard" and images["exec-push-objects"] == "cityseg-push"
    for name in executors:
        assert platform[name]["secretAsVolume"][0]["secretName"] == "gcs-credentials", name


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


def test_run_refuses_flags_the_objects_pipeline_does_not_have():
    result = CliRunner().invoke(main, ["run", "--pipeline", "objects", "--loss", "dice"])
    assert result.exit_code == 2 and "--loss: not a parameter of the objects pipeline" in result.output
    result = CliRunner().invoke(main, ["run", "--param", "crop_size=32"])
    assert result.exit_code == 2 and "--param is for --pipeline objects" in result.output
    result = CliRunner().invoke(main, ["run", "--pipeline", "objects", "--param", "crop_size=0"])
    assert result.exit_code == 1 and "size must be at least 1" in result.output


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
