"""The hardening of every KFP task pod in the compiled pipelines, and the TFJob launcher without GPUs."""

import pytest
import yaml

from cityseg.pipelines.client import compile_pipeline
from cityseg.pipelines.steps import RESOURCES


@pytest.fixture(scope="module", params=["training", "compare", "objects"])
def compiled(request, tmp_path_factory) -> tuple[str, dict, dict]:
    """(pipeline, IR executors, kubernetes platform executors) of the GKE pipeline."""
    path = compile_pipeline(request.param, tmp_path_factory.mktemp("ir") / "pipeline.yaml")
    ir, platform = yaml.safe_load_all(path.read_text())
    return (
        request.param,
        ir["deploymentSpec"]["executors"],
        platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"],
    )


def _step(executor_name: str) -> str:
    # exec-train-2 is the second train task of a DAG.
    name = executor_name.removeprefix("exec-").replace("-", "_")
    return name if name in RESOURCES else name.rsplit("_", 1)[0]


def test_every_task_runs_as_uid_1000_and_never_as_root(compiled):
    _, executors, platform = compiled
    for name in executors:
        assert platform[name]["securityContext"] == {
            "runAsUser": "1000",
            "runAsGroup": "1000",
            "runAsNonRoot": True,
        }


def test_every_task_is_limited_to_what_it_requests(compiled):
    _, executors, _ = compiled
    for name, executor in executors.items():
        resources = executor["container"]["resources"]
        cpu, memory = RESOURCES[_step(name)]
        assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"]) == (cpu, cpu), name
        assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == (memory, memory), (
            name
        )


def test_the_train_task_that_launches_a_tfjob_asks_for_no_gpu(compiled):
    pipeline, executors, platform = compiled
    task = "exec-train-objects" if pipeline == "objects" else "exec-train"
    train = executors[task]["container"]["resources"]
    if pipeline in ("training", "objects"):
        # The run's only training is a TFJob: its workers ask for the GPUs, the waiting task for none.
        assert "accelerator" not in train
        assert "nodeSelector" not in platform[task] and "tolerations" not in platform[task]
    else:
        # A sweep's configurations train in their own task, on a GPU each.
        assert train["accelerator"]["resourceType"] == "NVIDIA_L4"
    if pipeline != "objects":
        assert executors["exec-evaluate"]["container"]["resources"]["accelerator"]["resourceCount"] == "1"
