import csv
import html.parser
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from cityseg.cli import main
from cityseg.components.compare.core import (
    BEST_RUN_TAG,
    EVALUATED_CATEGORIES,
    SweepConfig,
    collect_results,
    start_parent_run,
)
from cityseg.components.compare.report import build_report, report_sweep

# model, loss, augment, num_params, mean_dice, training_time_s; the IoUs derive from mean_dice.
CHILDREN = [
    ("unet", "ce", True, 50_000, 0.61, 30.0),
    ("unet_mini", "ce", False, 2_000, 0.42, 10.0),
    ("unet_mini", "ce", True, 2_000, 0.53, 12.5),
]
TFLITE_BYTES = 3 * 1024


def iou(mean_dice: float, index: int) -> float:
    return round(mean_dice - 0.01 * index, 6)


class TableParser(html.parser.HTMLParser):
    """The cells of the report's `<table id="comparison">`, one list per row."""

    def __init__(self):
        super().__init__()
        self.rows, self._in_table, self._cell = [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._in_table = dict(attrs).get("id") == "comparison"
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif self._in_table and tag in ("td", "th"):
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def html_rows(path: Path) -> list[list[str]]:
    parser = TableParser()
    parser.feed(path.read_text())
    return parser.rows


@pytest.fixture
def sweep(mlflow_uri, tmp_path):
    """A parent run with the CHILDREN logged as child runs the way train and evaluate log them."""
    experiment_id = mlflow.create_experiment(f"compare-report-{tmp_path.name}")
    sweep = SweepConfig(models=("unet_mini", "unet"), losses=("ce",), augment=(True, False))
    parent_id = start_parent_run(experiment_id, "sweep-test", sweep, {"epochs": 1}, {})
    children = {}
    for model, loss, augment, num_params, dice, seconds in CHILDREN:
        with mlflow.start_run(experiment_id=experiment_id, parent_run_id=parent_id) as run:
            # The names the train step (params, metrics) and the evaluate step (eval_*) log.
            mlflow.log_params(
                {"model": model, "loss": loss, "augment": "flip,scale_crop" if augment else "none"}
            )
            mlflow.log_metrics(
                {
                    "num_params": num_params,
                    "training_time_s": seconds,
                    "train_images_per_s": 100 / seconds,
                    "eval_mean_dice": dice,
                    "eval_mean_iou": dice - 0.1,
                    "eval_latency_ms_per_image": seconds / 10,
                    **{f"eval_iou_{n}": iou(dice, i) for i, n in enumerate(EVALUATED_CATEGORIES)},
                }
            )
            if model == "unet_mini":
                tflite = tmp_path / f"{run.info.run_id}" / "model_float16.tflite"
                tflite.parent.mkdir()
                tflite.write_bytes(b"\0" * TFLITE_BYTES)
                mlflow.log_artifact(str(tflite), artifact_path="tflite")
        children[(model, augment)] = run.info.run_id
    return parent_id, children


def test_collect_results_reads_every_child_smallest_model_first(sweep):
    parent_id, children = sweep
    results = collect_results(parent_id)
    assert [(r.model, r.augment) for r in results] == [
        ("unet_mini", True),
        ("unet_mini", False),
        ("unet", True),
    ]
    mini = results[0]
    assert mini.run_id == children[("unet_mini", True)]
    assert (mini.loss, mini.num_params, mini.mean_dice, mini.training_time_s) == ("ce", 2000, 0.53, 12.5)
    assert mini.mean_iou == pytest.approx(0.43)
    assert mini.iou["vehicle"] == iou(0.53, 6)
    assert mini.tflite_mb == TFLITE_BYTES / 2**20
    assert results[2].tflite_mb is None  # that run logged no TFLite file


def test_report_table_has_one_row_per_child_equal_to_its_metrics(sweep, tmp_path):
    parent_id, children = sweep
    out = tmp_path / "report" / "report.html"
    best = report_sweep(parent_id, out.parent)
    assert best.run_id == children[("unet", True)]

    with out.with_suffix(".csv").open() as f:
        table = list(csv.DictReader(f))
    client = MlflowClient()
    assert len(table) == 3
    for row in table:
        metrics = client.get_run(row["run_id"]).data.metrics
        assert float(row["mean_dice"]) == metrics["eval_mean_dice"]
        assert float(row["mean_iou"]) == metrics["eval_mean_iou"]
        assert float(row["training_time_s"]) == metrics["training_time_s"]
        assert float(row["latency_ms_per_image"]) == metrics["eval_latency_ms_per_image"]
        for name in EVALUATED_CATEGORIES:
            assert float(row[f"iou_{name}"]) == metrics[f"eval_iou_{name}"]

    rows = html_rows(out)
    assert rows[0][:6] == ["configuration", "model", "parameters", "loss", "augmentation", "mean_dice"]
    assert [row[0] for row in rows[1:]] == ["unet_mini/ce/aug", "unet_mini/ce/noaug", "unet/ce/aug"]
    assert rows[1][2:7] == ["2,000", "ce", "on", "0.5300", "0.4300"]
    assert rows[3][-1] == children[("unet", True)]
    page = out.read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "<td>unet_mini</td><td>ce</td><td>0.4200</td><td>0.5300</td><td>+0.1100</td>" in page

    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[BEST_RUN_TAG] == children[("unet", True)]
    assert parent.data.metrics["best_mean_dice"] == 0.61
    assert sorted(f.path for f in client.list_artifacts(parent_id, "report")) == [
        "report/report.csv",
        "report/report.html",
    ]


def test_cli_report_rebuilds_the_same_table_from_mlflow(sweep, tmp_path):
    parent_id, _ = sweep
    build_report(parent_id, tmp_path / "first.html")
    out = tmp_path / "again" / "rebuilt.html"
    result = CliRunner().invoke(main, ["report", "--parent-run", parent_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert html_rows(out) == html_rows(tmp_path / "first.html")
    assert out.with_suffix(".csv").read_text() == (tmp_path / "first.csv").read_text()
    assert "unet_mini/ce/aug" in result.output and str(out.resolve()) in result.output


def test_cli_report_names_an_unknown_parent_run(mlflow_uri):
    result = CliRunner().invoke(main, ["report", "--parent-run", "0123456789abcdef0123456789abcdef"])
    assert result.exit_code == 1
    assert "parent run '0123456789abcdef0123456789abcdef' not found in http://127.0.0.1:" in result.output


def test_cli_report_says_when_the_parent_has_no_children(mlflow_uri):
    experiment_id = mlflow.create_experiment("compare-empty")
    parent_id = start_parent_run(experiment_id, "empty", SweepConfig(), {}, {})
    result = CliRunner().invoke(main, ["report", "--parent-run", parent_id])
    assert result.exit_code == 1
    assert f"parent run {parent_id} has no child runs" in result.output
