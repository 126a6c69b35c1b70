"""One home per default: every pipeline parameter and CLI option default is its config dataclass's.

A default that differs on purpose is listed, with its reason, in `cityseg.components.defaults.OVERRIDES`.
"""

import ast
import dataclasses
import importlib
from pathlib import Path

import click
import pytest

from cityseg.cli import COMMANDS
from cityseg.components.crops.config import CropsConfig
from cityseg.components.defaults import OVERRIDES, RECIPE, WORK_DIR, defaults
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.push.config import PushConfig
from cityseg.components.remap.config import RemapConfig
from cityseg.components.runner import RUNNER_PARAMS, RunnerConfig
from cityseg.components.serve.config import ServeConfig, WebAppConfig
from cityseg.components.shard.config import ShardConfig
from cityseg.components.sweep.config import SweepConfig
from cityseg.components.sweep.presets import DEFAULT_PRESET, PRESETS
from cityseg.components.synth.config import SynthConfig
from cityseg.components.train.config import TrainConfig
from cityseg.components.train.launch import Launch
from cityseg.components.validate.config import ValidateConfig
from cityseg.pipelines.local import RUNNERS, pipeline_inputs, sweep_inputs

synth, shard, train, push, launch = (
    defaults(SynthConfig),
    defaults(ShardConfig),
    defaults(TrainConfig),
    defaults(PushConfig),
    defaults(Launch),
)
sweep = defaults(SweepConfig)
validate = defaults(ValidateConfig)
deploy = defaults(DeployConfig)
# What each pipeline parameter's default must be, read from the dataclass that is its home.
SHARED = {
    "data": "",  # no default source: empty generates the synthetic set
    "synthetic_frames": synth.cities * synth.frames_per_city,
    "synthetic_height": synth.height,
    "synthetic_width": synth.width,
    "height": shard.height,
    "width": shard.width,
    "shards": shard.shards,
    "select_fraction": shard.select_fraction,
    "seed": train.seed,
    "epochs": train.epochs,
    "early_stopping_patience": train.early_stopping_patience,
    "corruptions": defaults(EvaluateConfig).corruptions,
    "batch_size": train.batch_size,
    "learning_rate": train.learning_rate,
    "class_weighting": train.class_weighting,
    "gpus_per_worker": launch.gpus_per_worker,
    "min_dice": push.min_dice,
    "min_improvement": push.min_improvement,
    # KFP parameters cannot be None: a negative drop means no int8 gate.
    "max_int8_iou_drop": -1.0 if push.max_int8_iou_drop is None else push.max_int8_iou_drop,
    "registered_model": push.name,
    "serving_dir": push.serving_dir or "",
    "mlflow_tracking_uri": push.tracking_uri or "",
    "mlflow_experiment": train.experiment,
    "min_frames": validate.min_frames,
    "max_void_share": validate.max_void_share,
    "drift_metric": validate.drift_metric,
    "drift_threshold": validate.drift_threshold,
    "drift_policy": validate.drift_policy,
    "canary_traffic_percent": deploy.canary_traffic_percent,
    "ready_timeout_s": deploy.ready_timeout_s,
    **{param: getattr(RunnerConfig(), field) for param, field in RUNNER_PARAMS.items()},
}
PIPELINES = {
    "training pipeline": (
        pipeline_inputs,
        {
            **SHARED,
            "model": train.model,
            "loss": train.loss,
            "augment": ",".join(train.augment),
            "workers": launch.workers,
            "skip_unchanged": validate.skip_unchanged,
        },
    ),
    "compare pipeline": (
        sweep_inputs,
        {
            **SHARED,
            "models": list(sweep.models),
            "losses": list(sweep.losses),
            "augment": list(sweep.augment),
            "seeds": list(sweep.seeds),
            "crossed": sweep.crossed,
            # The sweep's budget rule is SweepConfig's: at most max_epochs, early stopping on patience.
            "epochs": sweep.budget.max_epochs,
            "early_stopping_patience": sweep.budget.patience,
            "corruptions": sweep.corruptions,
            # What the local default preset changes for its sweep to fit its machine has its home there.
            **PRESETS[DEFAULT_PRESET].settings,
        },
    ),
}
# Options of `cityseg run` / `cityseg compare` that are not pipeline parameters -> their home's value.
OTHER_HOMES = {"work_dir": WORK_DIR, "preset": DEFAULT_PRESET, "runner": RUNNERS[0], "pipeline": "training"}
# Step command -> the dataclasses its options come from (an option's name is its field's).
COMMAND_CONFIGS = {
    "synth": (SynthConfig,),
    "remap": (RemapConfig,),
    "shard": (ShardConfig,),
    "crops": (CropsConfig,),
    "validate": (ValidateConfig,),
    "train": (TrainConfig, Launch),
    "evaluate": (EvaluateConfig,),
    "push": (PushConfig,),
    "deploy": (DeployConfig,),
    "promote": (PushConfig,),
    "rollback": (PushConfig,),
    "serve": (ServeConfig,),
    "app": (WebAppConfig,),
}


def _differs(where: str, actual, expected) -> list[str]:
    if actual == expected or where in OVERRIDES:
        return []
    return [f"{where}: default {actual!r}, its dataclass says {expected!r}"]


def _command(name: str) -> click.Command:
    module, attribute = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def _options_with_defaults(command: click.Command):
    for option in command.params:
        unset = option.default is None or option.default is click.core.UNSET
        # A plain on-switch (`--verbose`) has no default to keep; `--x/--no-x` pairs do.
        plain_flag = (
            getattr(option, "is_flag", False) and not option.secondary_opts and option.default is False
        )
        if isinstance(option, click.Option) and not option.required and not unset and not plain_flag:
            yield option


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_every_pipeline_default_is_its_dataclass_default(pipeline):
    inputs, expected = PIPELINES[pipeline]
    specs = inputs()
    assert set(specs) == set(expected), "a pipeline parameter without a home in SHARED/PIPELINES"
    wrong = [
        problem
        for name, spec in specs.items()
        for problem in _differs(f"{pipeline}: {name}", spec.default, expected[name])
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(COMMAND_CONFIGS))
def test_every_step_command_default_is_its_dataclass_default(name):
    fields = {}
    for config in reversed(COMMAND_CONFIGS[name]):
        fields.update(vars(defaults(config)))
    wrong = []
    for option in _options_with_defaults(_command(name)):
        where = f"cityseg {name} {option.opts[0]}"
        if option.name not in fields:
            wrong += [] if where in OVERRIDES else [f"{where}: not a field of {COMMAND_CONFIGS[name]}"]
            continue
        expected = fields[option.name]
        # Lists travel as comma-separated text on the command line.
        expected = ",".join(expected) if isinstance(expected, tuple) else expected
        wrong += _differs(where, option.default, expected)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("name", "inputs"), [("run", pipeline_inputs), ("compare", sweep_inputs)])
def test_pipeline_commands_take_their_defaults_from_the_pipeline(name, inputs):
    specs = inputs()
    for option in _options_with_defaults(_command(name)):
        if option.name in OTHER_HOMES:
            assert str(option.default) == OTHER_HOMES[option.name], f"cityseg {name} {option.opts[0]}"
            continue
        default = specs[option.name].default
        expected = ",".join(map(str, default)) if isinstance(default, list) else default
        assert option.default == expected, f"cityseg {name} {option.opts[0]}"


def test_the_recipe_decides_what_a_default_run_trains():
    recipe = dataclasses.asdict(RECIPE)
    assert {key: recipe[key] for key in ("model", "loss", "epochs", "batch_size", "learning_rate")} == {
        key: getattr(train, key) for key in ("model", "loss", "epochs", "batch_size", "learning_rate")
    }
    assert (train.augment, train.class_weighting) == (RECIPE.augment, RECIPE.class_weighting)
    assert (shard.height, shard.width) == (RECIPE.height, RECIPE.width)
    assert synth.cities * synth.frames_per_city == RECIPE.synthetic_cities * RECIPE.synthetic_frames_per_city
    assert pipeline_inputs()["epochs"].default == RECIPE.epochs


def test_every_override_names_a_real_entry_point_and_says_why():
    for where, reason in OVERRIDES.items():
        assert where.startswith(("training pipeline: ", "compare pipeline: ", "cityseg ")), where
        assert len(reason.split()) >= 5, where
    assert sweep_inputs()["mlflow_experiment"].default != train.experiment


def test_components_take_their_parameters_without_defaults():
    # KFP ships only a component function's source: a default there would be a second home.
    root = Path(__file__).resolve().parents[2]
    found = []
    for path in sorted((root / "components").glob("*/component.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                arguments = node.args
                with_defaults = arguments.args[len(arguments.args) - len(arguments.defaults) :]
                with_defaults += [
                    a
                    for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
                    if d is not None
                ]
                found += [f"{path.relative_to(root)}: {node.name}({a.arg}=...)" for a in with_defaults]
    assert not found, "\n".join(found)
