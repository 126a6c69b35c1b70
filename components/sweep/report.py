"""The sweep's technical note, rebuilt from MLflow alone: report.html (self-contained), report.md
with its PNGs beside it (renders on GitHub), and report.csv (one row per run, full precision)."""

import csv
import datetime
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from cityseg.components import storage, tracking
from cityseg.components.sweep import render, sections
from cityseg.components.sweep.analysis import Summary, best, comparisons, summarize
from cityseg.components.sweep.core import BEST_RUN_TAG, sweep_parent
from cityseg.components.sweep.results import (
    EVALUATED_CATEGORIES,
    ConfigResult,
    collect_results,
    parent_run,
    sweep_of,
)

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"

# (column key, header); the CSV keeps full precision, one row per run (configuration and seed).
COLUMNS: list[tuple[str, str]] = [
    ("config", "configuration"),
    ("model", "model"),
    ("num_params", "parameters"),
    ("loss", "loss"),
    ("augment", "augmentation"),
    ("seed", "seed"),
    ("mean_dice", "mean_dice"),
    ("mean_iou", "mean_iou"),
    *[(f"iou_{name}", f"IoU {name}") for name in EVALUATED_CATEGORIES],
    ("corrupt_mean_iou", "corrupted mean_iou"),
    ("relative_robustness", "relative robustness"),
    ("epochs", "epochs"),
    ("training_time_s", "training time (s)"),
    ("train_images_per_s", "train images/s"),
    ("latency_ms_per_image", "inference ms/image"),
    ("tflite_mb", "TFLite fp16 (MB)"),
    ("run_id", "MLflow run"),
]


def table_rows(results: list[ConfigResult]) -> list[dict]:
    """One dict per run, keyed by the COLUMNS keys, numbers unrounded."""
    return [
        {
            "config": result.label,
            "model": result.model,
            "num_params": result.num_params,
            "loss": result.loss,
            "augment": result.augment,
            "seed": result.seed,
            "mean_dice": result.mean_dice,
            "mean_iou": result.mean_iou,
            **{f"iou_{name}": result.iou[name] for name in EVALUATED_CATEGORIES},
            "corrupt_mean_iou": result.robustness.get("corrupt_mean_iou"),
            "relative_robustness": result.robustness.get("relative_robustness"),
            "epochs": result.epochs,
            "training_time_s": result.training_time_s,
            "train_images_per_s": result.train_images_per_s,
            "latency_ms_per_image": result.latency_ms_per_image,
            "tflite_mb": result.tflite_mb,
            "run_id": result.run_id,
        }
        for result in results
    ]


def write_table_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """The per-run table as CSV, full precision, empty cells for missing values."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    storage.write_text(path, buffer.getvalue())


def note_sections(results: list[ConfigResult], sweep) -> tuple[list[sections.Section], Summary]:
    """The nine sections of the note and the best configuration."""
    summaries = summarize(results, sweep)
    found = comparisons(summaries, sweep)
    return [
        sections.goal(),
        sections.models(summaries),
        sections.setup(results, sweep, found),
        sections.results_table(summaries),
        sections.per_category(summaries, sweep),
        sections.losses(found),
        sections.augmentation(found),
        sections.robustness(summaries),
        sections.closing(summaries, found, sweep),
    ], best(summaries)


def build_report(parent_run_id: str, out: str | os.PathLike) -> tuple[list[ConfigResult], ConfigResult]:
    """Read the sweep from MLflow; write `out` (HTML) and, beside it, report.md, its PNGs and the CSV.

    Returns:
        The runs in table order, and the run offered to the push gate: the best seed of the
        configuration with the highest mean_dice averaged over its seeds.

    Raises:
        ValueError: the parent run does not exist, records no sweep, has no child runs, or none was
            evaluated.
    """
    parent = parent_run(parent_run_id)
    sweep = sweep_of(parent)
    results = collect_results(parent_run_id)
    parts, top = note_sections(results, sweep)
    experiment = mlflow.get_experiment(parent.info.experiment_id)
    facts = {
        "parent run": f"{parent.info.run_name} ({parent_run_id})",
        "experiment": experiment.name,
        "tracking URI": mlflow.get_tracking_uri(),
        "runs": f"{len(results)} ({len({r.recipe for r in results})} configurations x seeds)",
        "built": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    title = f"cityseg model comparison: {parent.info.run_name}"
    out = Path(out)
    storage.write_text(out, render.html_page(parts, title, facts))
    storage.write_text(out.with_suffix(".md"), render.markdown(parts, title, facts))
    for section in parts:
        for block in section.blocks:
            if isinstance(block, sections.Figure):
                storage.write_bytes(out.parent / block.name, block.png)
    write_table_csv(table_rows(results), out.with_suffix(".csv"))
    log.info("report of %d runs written to %s", len(results), out)
    return results, top.best_run()


def finish_parent_run(parent_run_id: str, best_run: ConfigResult, report_dir: str) -> None:
    """Log the best run and the report folder to the parent run, then mark it FINISHED."""
    client = MlflowClient()
    client.set_tag(parent_run_id, BEST_RUN_TAG, best_run.run_id)
    client.set_tag(parent_run_id, "cityseg.best_config", best_run.label)
    client.log_metric(parent_run_id, "best_mean_dice", best_run.mean_dice)
    if best_run.mean_iou is not None:
        client.log_metric(parent_run_id, "best_mean_iou", best_run.mean_iou)
    client.log_artifacts(parent_run_id, report_dir, artifact_path="report")
    client.set_terminated(parent_run_id, "FINISHED")


def report_sweep(parent_run_id: str, out_dir: str | os.PathLike) -> ConfigResult:
    """End a sweep: write the report to out_dir, log it and the best run to the parent run, close it."""
    _, best_run = build_report(parent_run_id, Path(out_dir) / REPORT_FILE)
    finish_parent_run(parent_run_id, best_run, str(out_dir))
    log.info("best run %s (%s): mean_dice %.4f", best_run.run_id, best_run.label, best_run.mean_dice)
    return best_run


def _run_id_of(folder: str, file_name: str) -> str | None:
    path = Path(folder) / file_name
    if not path.exists():
        raise ValueError(f"{path} does not exist: {folder} is not a finished step's folder")
    return json.loads(path.read_text()).get("mlflow_run_id")


def best_artifacts(best_run_id: str, model_dirs: list[str], evaluation_dirs: list[str]) -> tuple[str, str]:
    """The model folder (train_info.json) and evaluation folder (metrics.json) of MLflow run `best_run_id`.

    Raises:
        ValueError: no model or no evaluation folder names that run.
    """
    models = [folder for folder in model_dirs if _run_id_of(folder, "train_info.json") == best_run_id]
    evaluations = [folder for folder in evaluation_dirs if _run_id_of(folder, "metrics.json") == best_run_id]
    if not models or not evaluations:
        raise ValueError(
            f"run {best_run_id}: {len(models)} of {len(model_dirs)} model folders and {len(evaluations)} of "
            f"{len(evaluation_dirs)} evaluation folders name it; expected one of each"
        )
    return models[0], evaluations[0]


def finish_sweep(
    configs: list[dict],
    model_dirs: list[str],
    evaluation_dirs: list[str],
    *,
    report_path: str,
    best_model_dir: str,
    best_evaluation_dir: str,
    tracking_uri: str | None = None,
) -> ConfigResult:
    """The sweep's last step: the report, the best run on the parent run, its model and evaluation copied.

    Returns:
        The best run, whose model and evaluation now sit in best_model_dir and best_evaluation_dir.
    """
    tracking.connect(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        best_run = report_sweep(sweep_parent(configs), tmp)
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / REPORT_FILE, report_path)
    model_dir, evaluation_dir = best_artifacts(best_run.run_id, model_dirs, evaluation_dirs)
    shutil.copytree(model_dir, best_model_dir, dirs_exist_ok=True)
    shutil.copytree(evaluation_dir, best_evaluation_dir, dirs_exist_ok=True)
    return best_run
