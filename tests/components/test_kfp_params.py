"""`step_config`: a step's config dataclass from its KFP component's parameters, and every component's use."""

import ast
import importlib
import inspect
import json
import textwrap
import typing
import warnings
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import pytest
from kfp import dsl, local

from cityseg.components.deploy.component import deploy as deploy_component
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.kfp_params import field_values, step_config
from cityseg.components.push.config import PushConfig
from cityseg.components.remap.component import remap as remap_component
from cityseg.components.runner import RUNNER_PARAMS, RunnerConfig
from cityseg.components.shard.component import shard as shard_component
from cityseg.components.synth.component import synth as synth_component
from cityseg.components.train.config import TrainConfig
from cityseg.components.validate.config import ValidateConfig

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Small:
    path: str
    name: str = "cityseg"
    label: str = ""
    count: int | None = None
    tags: tuple = field(default_factory=tuple)
    tracking_uri: str | None = None
    experiment: str = "cityseg"
    kfp_run_id: str | None = None


def test_the_common_renames_map_the_mlflow_and_run_parameters():
    params = {"mlflow_tracking_uri": "http://mlflow:5000", "mlflow_experiment": "sweeps", "run_id": "run-7"}
    assert step_config(Small, params, path="/p") == Small(
        path="/p", tracking_uri="http://mlflow:5000", experiment="sweeps", kfp_run_id="run-7"
    )


def test_a_call_renames_over_the_common_table():
    params = {"registered_model": "roads", "run_id": "run-7"}
    config = step_config(Small, params, rename={"registered_model": "name", "run_id": "label"}, path="/p")
    assert config == Small(path="/p", name="roads", label="run-7", kfp_run_id=None)


def test_an_empty_string_becomes_none_only_where_the_default_is_none():
    params = {
        "path": "",
        "label": "",
        "tags": "",
        "mlflow_tracking_uri": "",
        "mlflow_experiment": "",
        "run_id": "",
    }
    config = step_config(Small, params)
    assert (config.path, config.label, config.tags, config.experiment) == ("", "", "", "")
    assert (config.tracking_uri, config.kfp_run_id) == (None, None)
    # Only the empty string stands for None: 0 and False are values.
    assert step_config(Small, {"count": 0}, path="/p").count == 0


def test_artifacts_are_skipped_and_their_paths_passed_explicitly():
    shards = dsl.Dataset(name="shards", uri="/tmp/run/shards")
    models = [dsl.Model(name="m0", uri="/tmp/run/m0"), dsl.Model(name="m1", uri="/tmp/run/m1")]
    # `path` is both an artifact parameter and a field: the artifact itself never reaches the config.
    params = {"path": shards, "models": models, "report": dsl.HTML(name="report", uri="/r"), "label": "a"}
    assert step_config(Small, params, path=shards.path) == Small(path="/tmp/run/shards", label="a")
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'path'"):
        step_config(Small, params)


def test_a_parameter_that_maps_to_no_field_is_an_error_naming_it():
    with pytest.raises(TypeError, match=r"^Small: parameter 'mlflow_tracking_url' maps to no field"):
        step_config(Small, {"mlflow_tracking_url": "http://mlflow:5000"}, path="/p")


def test_others_are_left_to_the_body_and_must_name_a_parameter():
    assert step_config(Small, {"frames": 12, "label": "a"}, others=("frames",), path="/p") == Small(
        "/p", label="a"
    )
    with pytest.raises(TypeError, match=r"^Small: others names 'frame', not a parameter$"):
        step_config(Small, {"frames": 12}, others=("frame",), path="/p")


def test_a_rename_of_no_parameter_is_an_error():
    with pytest.raises(TypeError, match=r"^Small: rename names 'registerd_model', not a parameter$"):
        step_config(Small, {"registered_model": "x"}, rename={"registerd_model": "name"}, path="/p")


def test_values_win_over_parameters_and_must_name_a_field():
    assert step_config(Small, {"label": "a", "path": "/p"}, label="b") == Small("/p", label="b")
    # An explicit value is taken as given, even an empty string.
    assert step_config(Small, {}, path="/p", tracking_uri="").tracking_uri == ""
    with pytest.raises(TypeError, match=r"^Small: values names 'labels', not a field$"):
        step_config(Small, {}, path="/p", labels="b")


def test_two_parameters_for_one_field_are_an_error():
    with pytest.raises(
        TypeError, match=r"^Small: parameters 'run_id' and 'kfp_run_id' both map to 'kfp_run_id'$"
    ):
        step_config(Small, {"run_id": "a", "kfp_run_id": "b"}, path="/p")


def test_only_a_dataclass_is_built():
    with pytest.raises(TypeError, match="is not a dataclass"):
        step_config(dict, {})


# The deploy component's parameters, as the training pipeline passes them in kfp.local.
DEPLOY_PARAMS = {
    "blessed": True,
    "version": "7",
    "registered_model": "roads",
    "target": "local",
    "service": "cityseg",
    "namespace": "",
    "canary_traffic_percent": 20,
    "ready_timeout_s": 60.0,
    "serving_dir": "",
    "mlflow_tracking_uri": "",
}


def test_the_deploy_config_keeps_its_empty_strings_and_renames_the_model():
    config = step_config(DeployConfig, DEPLOY_PARAMS, rename={"registered_model": "name"})
    assert config == DeployConfig(version="7", name="roads", canary_traffic_percent=20, ready_timeout_s=60.0)
    # namespace and serving_dir default to "" (kept); tracking_uri defaults to None.
    assert (config.namespace, config.serving_dir, config.tracking_uri) == ("", "", None)


def test_the_push_config_turns_an_empty_serving_dir_into_none():
    params = {"serving_dir": "", "mlflow_tracking_uri": "http://mlflow:5000", "run_id": "", "min_dice": 0.5}
    config = step_config(PushConfig, params, model="/m", metrics="/e/metrics.json", data="/s")
    assert config == PushConfig(
        model="/m", metrics="/e/metrics.json", data="/s", min_dice=0.5, tracking_uri="http://mlflow:5000"
    )
    assert (config.serving_dir, config.kfp_run_id) == (None, None)


def test_the_train_and_validate_configs_from_pipeline_parameters():
    params = {
        "model_name": "unet_mini",
        "height": 64,
        "parent_run_id": "",
        "mlflow_experiment": "e",
        "workers": 2,
    }
    train = step_config(
        TrainConfig, params, rename={"model_name": "model"}, others=("workers",), data="/s", out="/o"
    )
    assert train == TrainConfig(data="/s", out="/o", model="unet_mini", height=64, experiment="e")
    validate = step_config(
        ValidateConfig, {"fingerprint": "", "mlflow_experiment": ""}, shards="/s", out="/o"
    )
    assert (validate.fingerprint, validate.experiment) == ("", "")


def _uses_step_config(node: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "step_config" for n in ast.walk(node))


def _step_config_components() -> dict:
    """Every component whose body calls step_config: `step.function` -> the component."""
    found = {}
    for path in sorted((ROOT / "components").glob("*/component.py")):
        module = importlib.import_module(f"cityseg.components.{path.parent.name}.component")
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and _uses_step_config(node):
                found[f"{path.parent.name}.{node.name}"] = getattr(module, node.name)
    return found


COMPONENTS = _step_config_components()


def test_every_component_that_builds_a_config_uses_step_config():
    segmentation = {"synth.synth", "remap.remap", "shard.shard", "validate.validate", "train.train"}
    segmentation |= {"evaluate.evaluate", "push.push", "deploy.deploy"}
    objects = {"synth.synth_objects", "crops.crops", "objects.train_objects", "objects.evaluate_objects"}
    assert set(COMPONENTS) == segmentation | objects | {"objects.push_objects"}


def _call(function: ast.FunctionDef) -> tuple[type, dict, tuple, set]:
    """The config class, rename, others and value names of the body's one step_config call."""
    [call] = [
        n
        for n in ast.walk(function)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "step_config"
    ]
    imports = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in function.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    module, name = imports[call.args[0].id]
    keywords = {k.arg: k.value for k in call.keywords}
    rename = ast.literal_eval(keywords.pop("rename")) if "rename" in keywords else {}
    others = ast.literal_eval(keywords.pop("others")) if "others" in keywords else ()
    return getattr(importlib.import_module(module), name), rename, others, set(keywords)


def _dummy(name: str, annotation):
    # Input[...] and Output[...] are Annotated types; a list of artifacts is an Input[list[...]].
    if typing.get_origin(annotation) is typing.Annotated:
        artifact = dsl.Artifact(name=name, uri=f"/tmp/{name}")
        return [artifact] if typing.get_origin(typing.get_args(annotation)[0]) is list else artifact
    return f"<{name}>"


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_every_component_parameter_reaches_a_field_or_is_left_out_on_purpose(name):
    function = ast.parse(textwrap.dedent(inspect.getsource(COMPONENTS[name].python_func))).body[0]
    # The parameters are captured before the imports add names to locals().
    first = function.body[1] if isinstance(function.body[0], ast.Expr) else function.body[0]
    assert ast.unparse(first) == "params = dict(locals())", name
    config_class, rename, others, value_names = _call(function)
    signature = inspect.signature(COMPONENTS[name].python_func).parameters
    params = {p: _dummy(p, spec.annotation) for p, spec in signature.items()}
    kwargs = field_values(
        config_class, params, rename=rename, others=others, **{v: f"<value {v}>" for v in value_names}
    )
    required = {f.name for f in fields(config_class) if f.default is MISSING and f.default_factory is MISSING}
    assert required <= set(kwargs), f"{name}: no value for {sorted(required - set(kwargs))}"
    taken = {value for value in kwargs.values() if isinstance(value, str)}
    for param, value in params.items():
        artifact = isinstance(value, list | dsl.Artifact)
        overridden = rename.get(param, param) in value_names
        assert artifact or param in others or overridden or value in taken, f"{name}: {param} is lost"


# The data steps' runner parameters for the local process pool.
LOCAL_RUNNER = {param: getattr(RunnerConfig(), field) for param, field in RUNNER_PARAMS.items()}


@pytest.mark.slow
def test_the_data_steps_and_deploy_build_their_configs_in_kfp_local(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def data_steps() -> dsl.Dataset:
        synth = synth_component(cities=3, frames=3, height=32, width=64, seed=0, workers=1)
        data, fingerprint = synth.outputs["data"], synth.outputs["fingerprint"]
        remap = remap_component(cityscapes=data, fingerprint=fingerprint, workers=1, **LOCAL_RUNNER)
        categories = remap.outputs["categories"]
        shard = shard_component(
            cityscapes=data,
            fingerprint=fingerprint,
            categories=categories,
            num_shards=1,
            height=32,
            width=64,
            select_fraction=0.0,
            **LOCAL_RUNNER,
        )
        return shard.outputs["shards"]

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*base image.*")
        shards = data_steps().output
        deployed = deploy_component(**DEPLOY_PARAMS).outputs
    manifest = json.loads((Path(shards.path) / "manifest.json").read_text())
    assert (manifest["height"], manifest["width"]) == (32, 64)
    assert sorted(p.name for p in Path(shards.path).glob("*.tfrecord")) == [
        f"{split}-00000-of-00001.tfrecord" for split in ("test", "train", "val")
    ]
    # No `cityseg serve` answers at the default URL here: the local deploy says nothing was deployed.
    assert (deployed["url"], deployed["version"], deployed["traffic"]) == ("", "7", "")
