"""End to end: the whole pipeline in kfp.local at tiny size, against a real MLflow server."""

import json
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from cityseg.pipelines.console import task_console
from cityseg.pipelines.data import prepare_data
from cityseg.pipelines.local import run_local
from cityseg.pipelines.params import build_pipeline, data_params
from cityseg.pipelines.steps import Steps, TaskSettings
from cityseg.pipelines.summary import format_summary

TINY = {
    "synthetic_frames": 24,
    "synthetic_height": 64,
    "synthetic_width": 128,
    "height": 64,
    "width": 128,
    "model": "unet_mini",
    "epochs": 1,
    "batch_size": 4,
    "shards": 2,
    "select_fraction": 0.25,
}
DATA_PARAMS = (
    "synthetic_frames", "synthetic_height", "synthetic_width", "height", "width", "shards", "select_fraction"
)  # fmt: skip


@pytest.mark.slow
def test_local_run_registers_a_model_version_and_the_data_steps_are_cached(tmp_path, mlflow_uri, capsys):
    name = "cityseg-pipeline-e2e"
    summary = run_local({**TINY, "registered_model": name, "min_dice": 0.0}, tmp_path / "work")
    printed = capsys.readouterr().out.splitlines()

    version = MlflowClient().get_model_version_by_alias(name, "champion")
    assert summary.blessed is True
    assert summary.version == version.version
    assert summary.aliases == "champion"
    assert summary.tracking_uri == mlflow_uri
    # One of the 16 train frames is drawn into select by its id's hash.
    assert summary.splits == {"train": 15, "select": 1, "val": 4, "test": 4}
    assert summary.train_info["epochs_run"] == 1
    assert summary.train_info["mlflow_run_id"] == version.run_id
    metrics = json.loads(Path(summary.evaluation_dir, "metrics.json").read_text())
    assert summary.scores["mean_dice"] == metrics["mean_dice"]
    assert Path(summary.report).read_text().lstrip().lower().startswith("<!doctype html")
    assert mlflow.get_run(version.run_id).data.tags["kfp_run_id"]
    text = format_summary(summary)
    assert f"BLESSED: registered {name} version {version.version}, aliases: champion" in text
    assert f"mean_dice (val)     {metrics['mean_dice']:.4f}" in text
    assert f"  {mlflow_uri}" in text
    # One line as each task starts and one as it ends; the full logs are files in the run's folder.
    steps = ["synth", "remap", "shard", "validate", "train", "evaluate", "push", "deploy"]
    assert [line.split()[1:3] for line in printed] == [
        [step, event] for step in steps for event in ("started", "SUCCESS")
    ]
    logs = Path(summary.log_dir)
    assert logs.parent == Path(summary.run_dir)
    assert "epoch" in (logs / "train.log").read_text()
    assert sorted(path.stem for path in logs.glob("*.log")) == sorted([*steps, "pipeline"])
    assert f"--images {summary.data_dir} --images-split val" in text
    assert Path(summary.data_dir, "leftImg8bit", "val").is_dir()

    # A pipeline of the same data steps, run again: kfp.local serves all three from its cache.
    with task_console(tmp_path / "logs") as console:
        # Every argument explicit, as `cityseg run` passes them: kfp.local keys its cache on the values,
        # and a default it fills in itself comes as a float (0.0), unlike the int a caller passes.
        pipeline = _data_pipeline()
        arguments = {name: spec.default for name, spec in pipeline.component_spec.inputs.items()}
        pipeline(**{**arguments, "data": "", "seed": 0, **{key: TINY[key] for key in DATA_PARAMS}})
    assert console.cached == ["synth", "remap", "shard"]


def _data_pipeline():
    steps, configure = Steps.build(), TaskSettings(on_cluster=False)

    def wire(p) -> None:
        prepare_data(steps, configure, p)

    return build_pipeline("cityseg-data", "The data steps alone.", data_params(), wire)
