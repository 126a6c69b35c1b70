"""The compiled training pipeline: DAG shape, per-task settings, images, and the committed IR."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import container_images
from cityseg.pipelines.client import compile_pipeline

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["remap", "shard", "validate", "train", "evaluate", "push"]


def _tasks(ir: dict) -> dict:
    """Every task of the IR by name, whatever DAG (root, condition, loop) it sits in."""
    tasks = dict(ir["root"]["dag"]["tasks"])
    for component in ir["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def _load(path: Path) -> tuple[dict, dict]:
    docs = list(yaml.safe_load_all(path.read_text()))
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
    return docs[0], platform


@pytest.fixture(scope="module")
def gke(tmp_path_factory) -> tuple[dict, dict]:
    return _load(compile_pipeline("training", tmp_path_factory.mktemp("ir") / "pipeline.yaml"))


def test_the_steps_run_in_order_after_the_ingest_branches(gke):
    ir, _ = gke
    root = ir["root"]["dag"]["tasks"]
    assert sorted(root) == ["condition-branches-1", "condition-branches-4", "remap", "shard", "validate"]
    tasks = _tasks(ir)
    previous = "condition-branches-1"
    for step in ("remap", "shard", "validate"):
        assert previous in tasks[step]["dependentTasks"], step
        previous = step
    # train -> evaluate -> push run in the branch that validate's `retrain` opens.
    assert {"shard", "validate"} <= set(root["condition-branches-4"]["dependentTasks"])
    assert "train" in tasks["evaluate"]["dependentTasks"]
    assert {"train", "evaluate"} <= set(tasks["push"]["dependentTasks"])
    branches = ir["components"]["comp-condition-branches-1"]["dag"]["tasks"]
    inner = {name: next(iter(task["componentRef"].values())) for name, task in _branch_tasks(ir, branches)}
    assert inner == {"synth": "comp-synth", "check-source": "comp-check-source"}


def _branch_tasks(ir, branches):
    for branch in branches.values():
        yield from ir["components"][branch["componentRef"]["name"]]["dag"]["tasks"].items()


def test_caching_is_on_for_the_data_steps_and_off_for_train_evaluate_push(gke):
    ir, _ = gke
    tasks = _tasks(ir)
    assert {step: tasks[step]["cachingOptions"].get("enableCache", False) for step in STEPS} == {
        "remap": True,
        "shard": True,
        "validate": False,
        "train": False,
        "evaluate": False,
        "push": False,
    }
    branch_tasks = dict(_branch_tasks(ir, ir["components"]["comp-condition-branches-1"]["dag"]["tasks"]))
    assert branch_tasks["synth"]["cachingOptions"] == {"enableCache": True}


def test_train_retries_and_only_train_does(gke):
    ir, _ = gke
    tasks = _tasks(ir)
    assert tasks["train"]["retryPolicy"] == {
        "backoffDuration": "60s",
        "backoffFactor": 2.0,
        "backoffMaxDuration": "3600s",
        "maxRetryCount": 3,
    }
    assert [step for step in STEPS if "retryPolicy" in tasks[step]] == ["train"]


def test_evaluate_gets_a_gpu_on_the_gke_pool_and_the_tfjob_launcher_none(gke):
    ir, platform = gke
    executors = ir["deploymentSpec"]["executors"]
    # train only submits its TFJob and waits: the job's workers ask for the GPUs, the task none.
    assert "accelerator" not in executors["exec-train"]["container"]["resources"]
    assert executors["exec-evaluate"]["container"]["resources"]["accelerator"]["resourceCount"] == "1"
    assert platform["exec-evaluate"]["nodeSelector"] == {
        "labels": {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    }
    assert platform["exec-evaluate"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    for step in ("remap", "shard", "push", "train"):
        assert "accelerator" not in executors[f"exec-{step}"]["container"]["resources"]
        assert "nodeSelector" not in platform[f"exec-{step}"]
    assert platform["exec-train"]["pvcMount"][0]["mountPath"] == "/mnt/checkpoints"
    assert platform["exec-train"]["podMetadata"]["annotations"] == {"gke-gcsfuse/volumes": "true"}


def test_every_task_requests_cpu_and_memory_and_gets_secrets(gke):
    ir, platform = gke
    for name, executor in ir["deploymentSpec"]["executors"].items():
        resources = executor["container"]["resources"]
        assert resources["resourceCpuRequest"] and resources["resourceMemoryRequest"], name
        envs = [pair["envVar"] for entry in platform[name]["secretAsEnv"] for pair in entry["keyToEnv"]]
        assert envs == ["MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"], name
        assert platform[name]["secretAsVolume"][0]["secretName"] == "gcs-credentials", name


def test_components_use_their_own_image_without_pip_installs(gke):
    ir, _ = gke
    for name, executor in ir["deploymentSpec"]["executors"].items():
        container = executor["container"]
        # Executor `exec-check-source` runs task check_source, in the image the table of steps gives it.
        assert container["image"] == container_images.image(name[5:].replace("-", "_")), name
        assert "pip install" not in " ".join(container["command"]), name


def test_every_component_image_has_a_dockerfile(gke):
    ir, _ = gke
    used = {executor["container"]["image"] for executor in ir["deploymentSpec"]["executors"].values()}
    for reference in used:
        name = reference.rsplit("/", 1)[1].split(":")[0].removeprefix("cityseg-")
        assert container_images.BY_NAME[name].dockerfile.is_file(), reference


def test_pipeline_parameters_have_defaults_and_descriptions(gke):
    ir, _ = gke
    parameters = ir["root"]["inputDefinitions"]["parameters"]
    for name in (
        "data",
        "model",
        "loss",
        "epochs",
        "batch_size",
        "height",
        "width",
        "shards",
        "workers",
        "gpus_per_worker",
        "min_dice",
        "min_improvement",
        "registered_model",
        "mlflow_tracking_uri",
    ):
        assert "defaultValue" in parameters[name] or parameters[name].get("isOptional"), name
        assert parameters[name]["description"], name


def test_registry_and_tag_reach_every_image(tmp_path):
    ir, _ = _load(
        compile_pipeline("training", tmp_path / "p.yaml", registry="europe-docker.pkg.dev/p/r", tag="v9")
    )
    used = {executor["container"]["image"] for executor in ir["deploymentSpec"]["executors"].values()}
    assert used == {
        f"europe-docker.pkg.dev/p/r/cityseg-{name}:v9"
        for name in ("synth", "remap", "shard", "validate", "train", "evaluate", "push")
    }
    train_image = _tasks(ir)["train"]["inputs"]["parameters"]["image"]
    assert train_image == {"runtimeValue": {"constant": "europe-docker.pkg.dev/p/r/cityseg-train:v9"}}


def test_local_platform_leaves_the_cluster_settings_out(tmp_path):
    from kfp import compiler

    from cityseg.pipelines.steps import LOCAL
    from cityseg.pipelines.training import create_pipeline

    compiler.Compiler().compile(create_pipeline(LOCAL), str(tmp_path / "local.yaml"))
    ir, platform = _load(tmp_path / "local.yaml")
    assert platform == {}
    # kfp.local ignores resources (and warns about each), so the local pipeline requests none.
    assert "resources" not in ir["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert _tasks(ir)["train"]["inputs"]["parameters"]["launcher"] == {"runtimeValue": {"constant": "local"}}


@pytest.mark.parametrize(
    ("pipeline", "committed"),
    [
        ("training", "pipeline.yaml"),
        ("compare", "pipeline-compare.yaml"),
        ("objects", "pipeline-objects.yaml"),
    ],
)
def test_committed_pipeline_yaml_is_up_to_date(tmp_path, pipeline, committed):
    out = tmp_path / committed
    result = CliRunner().invoke(main, ["compile", "--pipeline", pipeline, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (ROOT / committed).read_text(), (
        f"{committed} is stale: run `cityseg compile --pipeline {pipeline} --out {committed}`"
    )
