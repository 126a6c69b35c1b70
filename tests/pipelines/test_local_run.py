"""End to end: the whole pipeline in kfp.local at tiny size, against a real MLflow server."""

import json
from pathlib import Path

import mlflow
import pytest
from kfp import dsl
from mlflow.tracking import MlflowClient

from cityseg.pipelines.local import cache_hits, format_summary, run_local
from cityseg.pipelines.training import Steps, TaskSettings, prepare_data

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
}
DATA_PARAMS = ("synthetic_frames", "synthetic_height", "synthetic_width", "height", "width", "shards")


@pytest.mark.slow
def test_local_run_registers_a_model_version_and_the_data_steps_are_cached(tmp_path, mlflow_uri):
    name = "cityseg-pipeline-e2e"
    summary = run_local({**TINY, "registered_model": name, "min_dice": 0.0}, tmp_path / "work")

    version = MlflowClient().get_model_version_by_alias(name, "champion")
    assert summary.blessed is True
    assert summary.version == version.version
    assert summary.aliases == "champion"
    assert summary.tracking_uri == mlflow_uri
    assert summary.splits == {"train": 16, "val": 4, "test": 4}
    assert summary.train_info["epochs_run"] == 1
    assert summary.train_info["mlflow_run_id"] == version.run_id
    metrics = json.loads(Path(summary.evaluation_dir, "metrics.json").read_text())
    assert summary.scores["mean_dice"] == metrics["mean_dice"]
    assert Path(summary.report).read_text().lstrip().lower().startswith("<!doctype html")
    assert mlflow.get_run(version.run_id).data.tags["kfp_run_id"]
    text = format_summary(summary)
    assert f"BLESSED: registered {name} version {version.version}, aliases: champion" in text
    assert f"mean_dice (val)     {metrics['mean_dice']:.4f}" in text
    assert f"MLflow UI      {mlflow_uri}" in text

    # A pipeline of the same data steps, run again: kfp.local serves all three from its cache.
    with cache_hits() as hits:
        # Every argument explicit, as `cityseg run` passes them: kfp.local keys its cache on the values,
        # and a default it fills in itself comes as a float (0.0), unlike the int a caller passes.
        _data_pipeline()(data="", seed=0, **{key: TINY[key] for key in DATA_PARAMS})
    assert hits.tasks == ["synth", "remap", "shard"]


def _data_pipeline():
    steps = Steps.build()

    @dsl.pipeline(name="cityseg-data")
    def data_pipeline(
        synthetic_frames: int,
        synthetic_height: int,
        synthetic_width: int,
        height: int,
        width: int,
        shards: int,
        data: str = "",
        seed: int = 0,
    ):
        prepare_data(
            steps,
            TaskSettings(on_cluster=False),
            data=data,
            synthetic_frames=synthetic_frames,
            synthetic_size=(synthetic_height, synthetic_width),
            height=height,
            width=width,
            shards=shards,
            seed=seed,
        )

    return data_pipeline
