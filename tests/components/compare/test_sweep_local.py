import csv
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from cityseg.cli import main
from cityseg.components.compare.core import BEST_RUN_TAG, PARENT_TAG
from tests.components.compare.test_report import html_rows

TINY = [
    "--synthetic-frames", "24", "--height", "64", "--width", "128", "--shards", "1", "--epochs", "1",
    "--batch-size", "4", "--models", "unet_mini", "--losses", "ce", "--augment", "on,off", "--min-dice", "0",
    "--registered-model", "cityseg-sweep-test", "--mlflow-experiment", "sweep-test",
]  # fmt: skip


def line(output: str, label: str) -> str:
    """The value printed after `label` in the closing lines of `cityseg compare`."""
    match = re.search(rf"^{label}\s+(\S+)", output, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1)


@pytest.fixture(scope="module")
def sweep(mlflow_server, tmp_path_factory):
    """One tiny `cityseg compare` (2 configurations, 1 epoch) against the real MLflow server."""
    work_dir = tmp_path_factory.mktemp("sweep")
    result = CliRunner().invoke(
        main, ["compare", *TINY, "--mlflow-tracking-uri", mlflow_server, "--work-dir", str(work_dir)]
    )
    assert result.exit_code == 0, result.output
    return result.output, MlflowClient(mlflow_server), mlflow_server


@pytest.mark.slow
def test_sweep_logs_a_parent_run_with_one_child_per_configuration(sweep):
    output, client, _ = sweep
    parent = client.get_run(line(output, "parent run"))
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'"
    )
    assert parent.info.status == "FINISHED"
    assert sorted(child.data.params["augment"] for child in children) == ["flip,scale_crop", "none"]
    assert {child.data.params["model"] for child in children} == {"unet_mini"}
    best = max(children, key=lambda child: child.data.metrics["eval_mean_dice"])
    assert parent.data.tags[BEST_RUN_TAG] == best.info.run_id
    assert f"mean_dice {best.data.metrics['eval_mean_dice']:.4f}, run {best.info.run_id})" in output
    # min_dice 0 and a fresh registered model: the best configuration is blessed as version 1.
    assert "BLESSED: registered cityseg-sweep-test version 1, aliases: champion" in output
    version = client.get_model_version("cityseg-sweep-test", "1")
    assert version.run_id == best.info.run_id


@pytest.mark.slow
def test_report_table_has_one_row_per_child_run_equal_to_its_metrics(sweep, tmp_path):
    output, client, _ = sweep
    parent_id = line(output, "parent run")
    local_csv = client.download_artifacts(parent_id, "report/report.csv", str(tmp_path))
    with open(local_csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        child = client.get_run(row["run_id"])
        metrics = child.data.metrics
        assert child.data.tags[PARENT_TAG] == parent_id
        assert row["augment"] == ("off" if child.data.params["augment"] == "none" else "on")
        assert int(row["num_params"]) == metrics["num_params"]
        for column, metric in [
            ("mean_dice", "eval_mean_dice"),
            ("mean_iou", "eval_mean_iou"),
            ("iou_vehicle", "eval_iou_vehicle"),
            ("training_time_s", "training_time_s"),
            ("train_images_per_s", "train_images_per_s"),
            ("latency_ms_per_image", "eval_latency_ms_per_image"),
        ]:
            assert float(row[column]) == metrics[metric], column
        assert float(row["tflite_mb"]) > 0
    kfp_report = Path(line(output, "KFP artifact"))
    assert [cells[0] for cells in html_rows(kfp_report)[1:]] == ["unet_mini/ce/aug", "unet_mini/ce/noaug"]


@pytest.mark.slow
def test_cli_report_rebuilds_the_pipeline_report_table(sweep, tmp_path, monkeypatch):
    output, _, uri = sweep
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = tmp_path / "rebuilt.html"
    result = CliRunner().invoke(
        main, ["report", "--parent-run", line(output, "parent run"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert html_rows(out) == html_rows(Path(line(output, "KFP artifact")))
