"""The sweep pipeline carries the presets, seeds, budget and corruptions to its steps."""

import pytest
import yaml
from kfp import compiler

from cityseg.components.sweep.presets import preset_params
from cityseg.pipelines.steps import GKE, LOCAL
from cityseg.pipelines.sweep import create_pipeline


def compiled(tmp_path, target) -> dict:
    path = tmp_path / "compare.yaml"
    compiler.Compiler().compile(create_pipeline(target), str(path))
    return next(yaml.safe_load_all(path.read_text()))


def defaults(spec: dict) -> dict:
    return {
        name: value.get("defaultValue")
        for name, value in spec["root"]["inputDefinitions"]["parameters"].items()
    }


@pytest.mark.parametrize(("target", "preset"), [(GKE, "full"), (LOCAL, "quick")])
def test_the_cluster_pipeline_defaults_to_the_full_preset_and_the_local_one_to_quick(
    tmp_path, target, preset
):
    found = defaults(compiled(tmp_path, target))
    for name, value in preset_params(preset).items():
        assert found[name] == value, name


def test_every_configuration_gets_its_seed_budget_and_corruptions(tmp_path):
    spec = compiled(tmp_path, GKE)
    root = spec["root"]["dag"]["tasks"]
    start = root["start-sweep"]["inputs"]["parameters"]
    for name in ("seeds", "crossed", "epochs", "early_stopping_patience"):
        assert start[name]["componentInputParameter"] == name
    loop = next(task for task in root.values() if "parameterIterator" in task)
    body = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    train = body["train"]["inputs"]["parameters"]
    assert (
        train["early_stopping_patience"]["componentInputParameter"]
        == "pipelinechannel--early_stopping_patience"
    )
    corruptions = body["evaluate"]["inputs"]["parameters"]["corruptions"]
    assert corruptions["componentInputParameter"] == "pipelinechannel--corruptions"
