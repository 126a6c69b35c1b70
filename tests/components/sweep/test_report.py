import csv
import dataclasses
import html.parser
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from cityseg.cli import main
from cityseg.components.sweep.config import SweepConfig
from cityseg.components.sweep.core import BEST_RUN_TAG, start_parent_run
from cityseg.components.sweep.report import build_report, report_sweep
from cityseg.components.sweep.results import EVALUATED_CATEGORIES, collect_results, parent_run, sweep_of
from tests.components.sweep.builders import SCORES, SWEEP, frame_confusions, log_sweep

TITLES = [
    "1. Goal and metric",
    "2. Models",
    "3. Training setup",
    "4. Results",
    "5. Per-category IoU per model",
    "6. Loss comparison",
    "7. Augmentation gains",
    "8. Robustness per corruption",
    "9. Conclusion",
]
FIGURES = ["dice_vs_time.png", "per_category.png", "augmentation.png", "robustness.png"]


class Tables(html.parser.HTMLParser):
    """Every `<table id=...>` of a page: id -> rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._table, self._cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs)["id"], [])
        elif self._table is not None and tag == "tr":
            self._table.append([])
        elif self._table is not None and tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif self._table is not None and tag in ("td", "th"):
            self._table[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def tables(path: Path) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(path.read_text())
    return parser.tables


@pytest.fixture
def sweep(mlflow_uri, tmp_path):
    experiment_id = mlflow.create_experiment(f"compare-report-{tmp_path.name}")
    return log_sweep(experiment_id, tmp_path)


@pytest.fixture
def one_seed_sweep(mlflow_uri, tmp_path):
    """The sweep with seed 0 only, each child run with its evaluation/frame_confusions.npz."""
    experiment_id = mlflow.create_experiment(f"compare-one-seed-{tmp_path.name}")
    scores = {recipe: per_seed[:1] for recipe, per_seed in SCORES.items()}
    return log_sweep(
        experiment_id, tmp_path, scores, dataclasses.replace(SWEEP, seeds=(0,)), with_frames=True
    )


def test_the_parent_run_records_the_sweep_it_ran(sweep):
    parent_id, _ = sweep
    assert sweep_of(parent_run(parent_id)) == SWEEP


def test_collect_results_reads_every_run_smallest_model_first(sweep):
    parent_id, run_ids = sweep
    results = collect_results(parent_id)
    assert [(r.label, r.seed) for r in results][:4] == [
        ("unet_mini/ce/flip", 0),
        ("unet_mini/ce/flip", 1),
        ("unet_mini/ce_dice/flip", 0),
        ("unet_mini/ce_dice/flip", 1),
    ]
    unet = results[-1]
    assert (unet.run_id, unet.mean_dice, unet.num_params, unet.epochs) == (
        run_ids[("unet", "ce_dice", "flip", 1)],
        0.83,
        1_945_640,
        4,
    )
    assert unet.robustness["corrupt_mean_iou"] == 0.41
    assert unet.robustness["corrupt_jpeg_3_mean_iou"] == pytest.approx(0.41 + 0.02 - 0.05)
    assert unet.iou["vehicle"] == pytest.approx(0.83 - 0.3)


def test_report_is_the_technical_note_with_its_nine_sections(sweep, tmp_path):
    parent_id, run_ids = sweep
    out = tmp_path / "note" / "report.html"
    best = report_sweep(parent_id, out.parent)
    assert best.run_id == run_ids[("unet", "ce_dice", "flip", 1)]

    page, note = out.read_text(), out.with_suffix(".md").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page) == TITLES
    assert re.findall(r"^## (.*)$", note, re.MULTILINE) == TITLES
    assert page.count('src="data:image/png;base64,') == 4
    for name in FIGURES:
        assert f"]({name})" in note and (out.parent / name).read_bytes().startswith(b"\x89PNG")

    found = tables(out)
    assert found["results"][-1] == [
        "unet/ce_dice/flip (best) *", "ladder", "2", "0.815 ± 0.021", "0.715 ± 0.021", "0.405 ± 0.007", "3.5",
        "60",
    ]  # fmt: skip
    assert found["augmentation"][1:] == [
        ["flip", "unet_mini/ce_dice/none", "0.710 ± 0.014", "+0.105 [+0.041, +0.169], gain (2 seeds)",
         "0.335 ± 0.007", "+0.030 [+0.030, +0.030], gain (2 seeds)"],
        ["noise", "unet_mini/ce_dice/none", "0.625 ± 0.049",
         "+0.020 [-0.361, +0.401], within noise (2 seeds)", "0.460 ± 0.014",
         "+0.155 [+0.091, +0.219], gain (2 seeds)"],
    ]  # fmt: skip
    assert found["losses"][1][3] == "+0.005 [-0.186, +0.196], within noise (2 seeds)"
    assert found["models"][1][:4] == ["unet_mini", found["models"][1][1], "482,152", "8"]
    assert ["class_weighting", "median"] in found["shared"]
    assert found["robustness"][0][-2:] == ["mean", "relative"]
    assert (
        "Budget rule: every configuration trains until select_mean_dice has not improved for 3 epochs" in page
    )
    assert (
        "Recommended configuration: unet/ce_dice/flip, chosen on the select split (mean Dice 0.815) and "
        "judged on val: mean Dice 0.815 ± 0.021 (2 seeds)"
    ) in note
    assert "The selection split chose (best) by its mean Dice" in page
    assert (
        "| flip | unet_mini/ce_dice/none | 0.710 ± 0.014 | +0.105 [+0.041, +0.169], gain (2 seeds) |" in note
    )

    client = MlflowClient()
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[BEST_RUN_TAG] == best.run_id
    assert parent.data.metrics["best_mean_dice"] == 0.83
    assert sorted(f.path for f in client.list_artifacts(parent_id, "report")) == sorted(
        f"report/{name}" for name in ["report.html", "report.md", "report.csv", *FIGURES]
    )


def test_csv_has_one_row_per_run_equal_to_its_metrics(sweep, tmp_path):
    parent_id, run_ids = sweep
    build_report(parent_id, tmp_path / "report.html")
    with (tmp_path / "report.csv").open() as f:
        table = list(csv.DictReader(f))
    assert sorted(row["run_id"] for row in table) == sorted(run_ids.values())
    client = MlflowClient()
    for row in table:
        metrics = client.get_run(row["run_id"]).data.metrics
        assert float(row["mean_dice"]) == metrics["eval_mean_dice"]
        assert float(row["corrupt_mean_iou"]) == metrics["eval_corrupt_mean_iou"]
        for name in EVALUATED_CATEGORIES:
            assert float(row[f"iou_{name}"]) == metrics[f"eval_iou_{name}"]


def test_cli_report_rebuilds_the_same_note_from_mlflow(sweep, tmp_path):
    parent_id, _ = sweep
    build_report(parent_id, tmp_path / "first" / "report.html")
    out = tmp_path / "again" / "report.html"
    result = CliRunner().invoke(main, ["report", "--parent-run", parent_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert tables(out) == tables(tmp_path / "first" / "report.html")
    assert out.with_suffix(".csv").read_text() == (tmp_path / "first" / "report.csv").read_text()
    assert "unet/ce_dice/flip" in result.output and str(out.with_suffix(".md").resolve()) in result.output


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


def test_cli_report_refuses_a_run_that_is_not_a_sweep(mlflow_uri):
    mlflow.set_experiment("compare-not-a-sweep")
    with mlflow.start_run() as run:
        mlflow.log_param("model", "unet")
    result = CliRunner().invoke(main, ["report", "--parent-run", run.info.run_id])
    assert result.exit_code == 1
    assert (
        f"parent run {run.info.run_id} does not record a sweep (params sweep_* and budget_*)" in result.output
    )


def test_results_read_the_per_frame_confusions_back_from_mlflow(sweep, one_seed_sweep, tmp_path):
    assert {result.frame_confusions is None for result in collect_results(sweep[0])} == {True}
    # Two shared seeds everywhere: no comparison bootstraps over frames, so none is downloaded.
    two_seeds, _ = log_sweep(
        mlflow.create_experiment(f"two-{tmp_path.name}"), tmp_path / "two", with_frames=True
    )
    assert {result.frame_confusions is None for result in collect_results(two_seeds)} == {True}
    results = collect_results(one_seed_sweep[0])
    mini = next(r for r in results if r.label == "unet_mini/ce_dice/flip")
    expected = frame_confusions("unet_mini/ce_dice/flip/0", 0.70, 0.33)
    assert mini.frame_confusions.keys() == expected.keys()
    assert all(np.array_equal(mini.frame_confusions[key], expected[key]) for key in expected)


def test_a_broken_frame_confusions_artifact_names_its_run(mlflow_uri, tmp_path):
    experiment_id = mlflow.create_experiment(f"compare-broken-{tmp_path.name}")
    scores = {
        recipe: SCORES[recipe][:1]
        for recipe in [("unet_mini", "ce_dice", "flip"), ("unet", "ce_dice", "flip")]
    }
    parent_id, run_ids = log_sweep(experiment_id, tmp_path, scores)
    run_id = run_ids[("unet_mini", "ce_dice", "flip", 0)]
    (tmp_path / "frame_confusions.npz").write_bytes(b"not an npz")
    MlflowClient().log_artifact(run_id, str(tmp_path / "frame_confusions.npz"), "evaluation")
    with pytest.raises(ValueError, match=f"run {run_id} evaluation/frame_confusions.npz: not a readable npz"):
        collect_results(parent_id)


def test_a_one_seed_report_states_its_frame_bootstrap(one_seed_sweep, tmp_path):
    parent_id, _ = one_seed_sweep
    out = tmp_path / "note" / "report.html"
    build_report(parent_id, out)
    page, note = out.read_text(), out.with_suffix(".md").read_text()
    method = (
        "with a single seed, a paired bootstrap over the 20 validation frames (2000 resamples, the same "
        "frames for both configurations), which covers frame-to-frame variation only, not seed-to-seed noise"
    )
    assert f"95% intervals: {method}." in note
    assert f"A gain is claimed only when its 95% interval ({method}) excludes 0" in note
    assert "Validation scores, one seed per configuration, so no spread over seeds;" in note
    assert "Student t" not in page and "Student t" not in note
    caveat = "(1 seed; 95% bootstrap over 20 validation frames: seed-to-seed noise not included)"
    found = tables(out)
    assert found["augmentation"][1][3] == f"+0.100 [+0.086, +0.114], gain {caveat}"
    assert found["losses"][1][3].endswith(caveat)
    assert (
        "rest on one seed: their intervals (bootstrap over validation frames) leave out seed-to-seed noise"
        in note
    )


def test_a_report_of_several_seeds_states_the_seed_interval(sweep, tmp_path):
    parent_id, _ = sweep
    build_report(parent_id, tmp_path / "report.html")
    note = (tmp_path / "report.md").read_text()
    assert "95% intervals: Student t on the per-seed differences (2 shared seeds)." in note
    assert (
        "A gain is claimed only when its 95% interval (Student t on the per-seed differences (2 shared"
        in note
    )
    assert "Validation scores, mean ± standard deviation over seeds" in note
    assert "bootstrap" not in note
