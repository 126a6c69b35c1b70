import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from cityseg.cli import main
from cityseg.components.sweep.core import BEST_RUN_TAG, PARENT_TAG
from tests.components.sweep.test_report import FIGURES, TITLES, tables

# 2 configurations (unet_mini / ce / none and flip), 1 seed, 1 epoch.
TINY = [
    "--synthetic-frames", "24", "--height", "64", "--width", "128", "--shards", "1", "--epochs", "1",
    "--early-stopping-patience", "0", "--batch-size", "4", "--models", "unet_mini", "--losses", "ce",
    "--augment", "none,flip", "--seeds", "0", "--min-dice", "0",
    "--registered-model", "cityseg-sweep-test", "--mlflow-experiment", "sweep-test",
]  # fmt: skip


def line(output: str, label: str) -> str:
    """The value printed after `label` in the closing lines of `cityseg compare`."""
    match = re.search(rf"^{label}\s+(\S+)", output, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1)


@pytest.fixture(scope="module")
def sweep(mlflow_server, tmp_path_factory):
    """One tiny `cityseg compare` against the real MLflow server."""
    work_dir = tmp_path_factory.mktemp("sweep")
    result = CliRunner().invoke(
        main, ["compare", *TINY, "--mlflow-tracking-uri", mlflow_server, "--work-dir", str(work_dir)]
    )
    assert result.exit_code == 0, result.output
    return result.output, MlflowClient(mlflow_server)


@pytest.mark.slow
def test_tiny_sweep_runs_end_to_end_in_kfp_local(sweep, tmp_path):
    output, client = sweep
    parent = client.get_run(line(output, "parent run"))
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'"
    )
    assert parent.info.status == "FINISHED"
    assert parent.data.params["budget_rule"] == "every configuration trains exactly 1 epoch"
    assert sorted((c.data.params["augment"], c.data.params["seed"]) for c in children) == [
        ("flip", "0"),
        ("none", "0"),
    ]
    for child in children:
        metrics = child.data.metrics
        assert metrics["eval_corrupt_mean_iou"] > 0 and "eval_corrupt_jpeg_3_mean_iou" in metrics
        assert metrics["eval_relative_robustness"] == pytest.approx(
            metrics["eval_corrupt_mean_iou"] / metrics["eval_clean_mean_iou"]
        )
    # Chosen on the select split: each child logged its kept weights' score there, apart from val's.
    best = max(children, key=lambda child: child.data.metrics["kept_select_mean_dice"])
    assert parent.data.tags[BEST_RUN_TAG] == best.info.run_id
    # min_dice 0 and a fresh registered model: the best configuration is blessed as version 1.
    assert "BLESSED: registered cityseg-sweep-test version 1, aliases: champion" in output
    assert client.get_model_version("cityseg-sweep-test", "1").run_id == best.info.run_id

    note = Path(line(output, "markdown")).read_text()
    assert re.findall(r"^## (.*)$", note, re.MULTILINE) == TITLES
    # One seed: the evaluate step's per-frame confusions give flip against none a frame bootstrap.
    flip = tables(Path(line(output, "KFP artifact")))["augmentation"][1]
    caveat = r"\(1 seed; 95% bootstrap over \d+ validation frames: seed-to-seed noise not included\)"
    assert re.fullmatch(rf"[+-]\d\.\d{{3}} \[[+-]\d\.\d{{3}}, [+-]\d\.\d{{3}}\], .+ {caveat}", flip[3]), flip
    assert "95% intervals: with a single seed, a paired bootstrap over the" in note
    kfp_report = Path(line(output, "KFP artifact"))
    assert re.findall(r"<h2>(.*?)</h2>", kfp_report.read_text()) == TITLES
    logged = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{name}" for name in ["report.html", "report.md", "report.csv", *FIGURES]} <= logged


@pytest.mark.slow
def test_cli_report_rebuilds_the_pipeline_report(sweep, tmp_path, monkeypatch):
    output, client = sweep
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    out = tmp_path / "rebuilt.html"
    result = CliRunner().invoke(
        main, ["report", "--parent-run", line(output, "parent run"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert tables(out)["results"] == tables(Path(line(output, "KFP artifact")))["results"]
