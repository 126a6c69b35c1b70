import pytest
import yaml
from kfp import compiler

from cityseg.pipelines.steps import GKE, LOCAL
from cityseg.pipelines.sweep import create_pipeline


def compiled(tmp_path, target) -> tuple[dict, dict]:
    """The sweep pipeline's IR as dicts: pipeline spec, platform spec (empty without cluster settings)."""
    path = tmp_path / "compare.yaml"
    compiler.Compiler().compile(create_pipeline(target), str(path))
    spec, *platform = yaml.safe_load_all(path.read_text())
    return spec, platform[0] if platform else {}


@pytest.fixture(scope="module")
def cluster_ir(tmp_path_factory):
    return compiled(tmp_path_factory.mktemp("gke"), GKE)


@pytest.fixture(scope="module")
def local_ir(tmp_path_factory):
    return compiled(tmp_path_factory.mktemp("local"), LOCAL)


def test_sweep_runs_train_and_evaluate_in_a_parallel_for_over_start_sweep(cluster_ir):
    spec, _ = cluster_ir
    root = spec["root"]["dag"]["tasks"]
    loops = [name for name, task in root.items() if "parameterIterator" in task]
    assert len(loops) == 1
    loop = root[loops[0]]
    assert loop["parameterIterator"]["items"] == {"inputParameter": "pipelinechannel--start-sweep-Output"}
    assert loop["iteratorPolicy"] == {"parallelismLimit": 4}
    assert set(loop["dependentTasks"]) == {"shard", "start-sweep"}
    body = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert sorted(body) == ["evaluate", "train"]
    selectors = {
        name: value["parameterExpressionSelector"]
        for name, value in body["train"]["inputs"]["parameters"].items()
        if "parameterExpressionSelector" in value
    }
    assert selectors == {
        "model_name": 'parseJson(string_value)["model"]',
        "loss": 'parseJson(string_value)["loss"]',
        "augment": 'parseJson(string_value)["augmentations"]',
        "seed": 'parseJson(string_value)["seed"]',
        "parent_run_id": 'parseJson(string_value)["parent_run_id"]',
    }
    assert body["train"]["retryPolicy"]["maxRetryCount"] == 3


def test_report_collects_every_configuration_and_push_gets_the_best(cluster_ir):
    spec, _ = cluster_ir
    root = spec["root"]["dag"]["tasks"]
    loop = next(name for name, task in root.items() if "parameterIterator" in task)
    finish = root["finish-sweep"]["inputs"]
    assert finish["artifacts"]["models"]["taskOutputArtifact"] == {
        "outputArtifactKey": "pipelinechannel--train-model",
        "producerTask": loop,
    }
    assert finish["artifacts"]["evaluations"]["taskOutputArtifact"] == {
        "outputArtifactKey": "pipelinechannel--evaluate-evaluation",
        "producerTask": loop,
    }
    push = root["push"]["inputs"]["artifacts"]
    assert push["model"]["taskOutputArtifact"] == {
        "outputArtifactKey": "best_model",
        "producerTask": "finish-sweep",
    }
    assert push["evaluation"]["taskOutputArtifact"]["producerTask"] == "finish-sweep"
    assert push["shards"]["taskOutputArtifact"]["producerTask"] == "shard"


def test_caching_only_for_the_shared_data_steps(cluster_ir):
    spec, _ = cluster_ir
    root = spec["root"]["dag"]["tasks"]
    assert root["remap"]["cachingOptions"] == {"enableCache": True}
    assert root["shard"]["cachingOptions"] == {"enableCache": True}
    for name in ("start-sweep", "finish-sweep", "push"):
        assert root[name]["cachingOptions"] == {}, name


def test_cluster_sweep_trains_on_gpus_with_secrets_and_local_one_at_a_time(cluster_ir, local_ir):
    spec, platform = cluster_ir
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-train"]["nodeSelector"]["labels"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4"
    }
    assert {"exec-start-sweep", "exec-finish-sweep"} <= set(executors)
    assert spec["deploymentSpec"]["executors"]["exec-start-sweep"]["container"]["image"].startswith(
        "ghcr.io/cityseg/cityseg-base:"
    )

    local_spec, local_platform = local_ir
    assert local_platform == {}
    loop = next(task for task in local_spec["root"]["dag"]["tasks"].values() if "parameterIterator" in task)
    assert loop["iteratorPolicy"] == {"parallelismLimit": 1}
    assert "accelerator" not in local_spec["deploymentSpec"]["executors"]["exec-train"]["container"].get(
        "resources", {}
    )
