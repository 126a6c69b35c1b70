"""The retraining loop's wiring, read from the compiled pipelines: fingerprint, validate, skip."""

import pytest
import yaml
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.pipelines.client import compile_pipeline


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compiled")
    return {
        name: next(yaml.safe_load_all(compile_pipeline(name, folder / f"{name}.yaml").read_text()))
        for name in ("training", "compare")
    }


def _dags(spec) -> dict:
    """Every DAG of the spec (root and sub-DAGs) by component name: task name -> task."""
    dags = {"root": spec["root"]["dag"]["tasks"]}
    dags.update({name: comp["dag"]["tasks"] for name, comp in spec["components"].items() if "dag" in comp})
    return dags


def _find(spec, task: str) -> tuple[str, dict]:
    (found,) = [(dag, tasks[task]) for dag, tasks in _dags(spec).items() if task in tasks]
    return found


def _contains(spec, component: str, target: str) -> bool:
    if component == target:
        return True
    tasks = spec["components"][component].get("dag", {}).get("tasks", {})
    return any(_contains(spec, task["componentRef"]["name"], target) for task in tasks.values())


def _upstream(tasks: dict, name: str) -> set[str]:
    found, todo = set(), [name]
    while todo:
        for dependency in tasks[todo.pop()].get("dependentTasks", []):
            if dependency not in found:
                found.add(dependency)
                todo.append(dependency)
    return found


@pytest.mark.parametrize("name", ["training", "compare"])
def test_remap_and_shard_are_keyed_on_the_source_fingerprint(specs, name):
    spec = specs[name]
    for step in ("remap", "shard", "validate"):
        _, task = _find(spec, step)
        # The fingerprint comes from the synth | check-source branch (a dsl.OneOf of their outputs).
        producer = task["inputs"]["parameters"]["fingerprint"]["taskOutputParameter"]["producerTask"]
        assert producer == "condition-branches-1", step
    branches = spec["components"]["comp-condition-branches-1"]["outputDefinitions"]["parameters"]
    assert len(branches) == 2  # the source and its fingerprint
    for step in ("synth", "check-source"):
        outputs = spec["components"][f"comp-{step}"]["outputDefinitions"]["parameters"]
        assert set(outputs) == {"data", "fingerprint"}


@pytest.mark.parametrize("name", ["training", "compare"])
def test_validate_runs_after_shard_and_before_every_training(specs, name):
    spec = specs[name]
    dag, validate = _find(spec, "validate")
    assert dag == "root" and "shard" in validate["dependentTasks"]
    assert validate["cachingOptions"] == {}  # not cached: the champion it compares with moves
    # The train task sits in a sub-DAG (a condition or a loop) whose root task waits for validate.
    train_dag, _ = _find(spec, "train")
    root = _dags(spec)["root"]
    (holder,) = [
        name for name, task in root.items() if _contains(spec, task["componentRef"]["name"], train_dag)
    ]
    assert "validate" in _upstream(root, holder)
    skip = spec["components"]["comp-validate"]["inputDefinitions"]["parameters"]["skip_unchanged"]
    assert skip["parameterType"] == "BOOLEAN"


def test_training_skips_train_evaluate_push_when_validate_says_unchanged(specs):
    spec = specs["training"]
    branches = spec["components"]["comp-condition-branches-4"]["dag"]["tasks"]
    conditions = {name: task["triggerPolicy"]["condition"] for name, task in branches.items()}
    changed, unchanged = sorted(conditions)
    assert conditions[changed] == "inputs.parameter_values['pipelinechannel--validate-retrain'] == true"
    assert conditions[unchanged] == f"!({conditions[changed]})"
    trained = spec["components"][f"comp-{changed}"]["dag"]["tasks"]
    assert set(trained) == {"train", "evaluate", "push", "deploy"}
    # Deploy runs after push on push's verdict and version; it deploys only a blessed version.
    deploy_inputs = trained["deploy"]["inputs"]["parameters"]
    for name in ("blessed", "version"):
        assert deploy_inputs[name] == {
            "taskOutputParameter": {"outputParameterKey": name, "producerTask": "push"}
        }
    assert set(spec["components"][f"comp-{unchanged}"]["dag"]["tasks"]) == {"skip-training"}
    _, push = _find(spec, "push")
    assert push["inputs"]["artifacts"]["statistics"] == {
        "componentInputArtifact": "pipelinechannel--validate-statistics"
    }
    assert push["inputs"]["parameters"]["pipeline_name"]["runtimeValue"]["constant"] == "cityseg-training"
    outputs = spec["root"]["outputDefinitions"]
    assert {"retrain", "outcome", "blessed", "version"} <= set(outputs["parameters"])
    assert set(outputs["artifacts"]) == {"shards", "statistics"}


def test_the_sweep_validates_but_never_skips(specs):
    _, validate = _find(specs["compare"], "validate")
    assert validate["inputs"]["parameters"]["skip_unchanged"]["runtimeValue"]["constant"] is False


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--drift-policy", "ignore", "must be one of warn, fail, got 'ignore'"),
        ("--max-void-share", "1.5", "must lie in (0, 1], got 1.5"),
        ("--min-frames", "0", "must be at least 1, got 0"),
    ],
)
def test_bad_validation_parameters_fail_before_any_step(tmp_path, flag, value, message):
    result = CliRunner().invoke(main, ["run", "--work-dir", str(tmp_path), flag, value])
    assert result.exit_code == 2
    assert f"Invalid value for {flag}: {message}" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_skipped_run_says_why_and_shows_the_fingerprint_and_cache_hits():
    from cityseg.pipelines.summary import RunSummary, format_summary

    summary = RunSummary(
        params={"registered_model": "cityseg"},
        splits={"train": 6, "val": 6, "test": 3},
        train_info={},
        scores={},
        blessed=False,
        version="",
        aliases="",
        reason="data unchanged since champion v2: nothing to retrain",
        run_dir="/w/runs/r",
        log_dir="/w/runs/r/logs",
        data_dir="/data/cityscapes",
        shards_dir="/w/cache/shard/shards",
        model_dir="",
        evaluation_dir="",
        report="",
        tracking_uri="http://127.0.0.1:5000",
        wall_time_s=21.0,
        cached=["remap", "shard"],
        retrain=False,
        fingerprint="9b41" * 16,
        outcome="data unchanged since champion v2: nothing to retrain",
    )
    lines = format_summary(summary).splitlines()
    assert "splits         train 6, val 6, test 3" in lines
    assert f"fingerprint    {'9b41' * 16}" in lines
    assert "validation     data unchanged since champion v2: nothing to retrain" in lines
    assert "from cache     remap, shard" in lines
    assert not [line for line in lines if line.startswith(("model ", "epochs", "mean_dice"))]
    assert (
        "SKIPPED: data unchanged since champion v2: nothing to retrain; nothing was trained or registered, "
        "aliases unchanged." in lines
    )
    assert (
        "  cityseg serve --model models:/cityseg@champion --tracking-uri http://127.0.0.1:5000"
        in "\n".join(lines)
    )
