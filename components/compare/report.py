"""The sweep's technical report: one self-contained HTML page (PNG plots inlined) built from MLflow alone."""

import base64
import csv
import datetime
import html
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use(): pyplot must not pick a GUI backend
import mlflow
from mlflow.tracking import MlflowClient

from cityseg.components import storage, tracking
from cityseg.components.compare.core import (
    EVALUATED_CATEGORIES,
    ConfigResult,
    augmentation_gain,
    best_artifacts,
    collect_results,
    finish_parent_run,
    pick_best,
    sweep_parent,
)

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"

# (column key, header, decimals for the HTML table; None for text). The CSV keeps full precision.
COLUMNS: list[tuple[str, str, int | None]] = [
    ("config", "configuration", None),
    ("model", "model", None),
    ("num_params", "parameters", 0),
    ("loss", "loss", None),
    ("augment", "augmentation", None),
    ("mean_dice", "mean_dice", 4),
    ("mean_iou", "mean_iou", 4),
    *[(f"iou_{name}", f"IoU {name}", 4) for name in EVALUATED_CATEGORIES],
    ("training_time_s", "training time (s)", 1),
    ("train_images_per_s", "train images/s", 1),
    ("latency_ms_per_image", "inference ms/image", 2),
    ("tflite_mb", "TFLite fp16 (MB)", 2),
    ("run_id", "MLflow run", None),
]


def table_rows(results: list[ConfigResult]) -> list[dict]:
    """One dict per configuration, keyed by the COLUMNS keys, numbers unrounded."""
    return [
        {
            "config": result.label,
            "model": result.model,
            "num_params": result.num_params,
            "loss": result.loss,
            "augment": "on" if result.augment else "off",
            "mean_dice": result.mean_dice,
            "mean_iou": result.mean_iou,
            **{f"iou_{name}": result.iou[name] for name in EVALUATED_CATEGORIES},
            "training_time_s": result.training_time_s,
            "train_images_per_s": result.train_images_per_s,
            "latency_ms_per_image": result.latency_ms_per_image,
            "tflite_mb": result.tflite_mb,
            "run_id": result.run_id,
        }
        for result in results
    ]


def _cell(value, decimals: int | None) -> str:
    if value is None:
        return "–"
    if decimals is None:
        return html.escape(str(value))
    return f"{value:,.{decimals}f}"


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def dice_vs_time_plot(results: list[ConfigResult]) -> str:
    """Scatter of mean_dice against training time, one labelled point per configuration (base64 PNG)."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    models = list(dict.fromkeys(r.model for r in results))
    colors = plt.get_cmap("tab10")
    for result in results:
        if result.mean_dice is None or result.training_time_s is None:
            continue
        axes.scatter(
            result.training_time_s,
            result.mean_dice,
            color=colors(models.index(result.model) % 10),
            marker="o" if result.augment else "s",
            s=60,
        )
        axes.annotate(
            result.label,
            (result.training_time_s, result.mean_dice),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    for index, model in enumerate(models):
        axes.scatter([], [], color=colors(index % 10), label=model)
    axes.scatter([], [], color="grey", marker="o", label="augmented")
    axes.scatter([], [], color="grey", marker="s", label="not augmented")
    axes.set_xlabel("training time (s)")
    axes.set_ylabel("mean Dice (7 categories, val)")
    axes.set_title("Dice against training time")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def per_category_plot(results: list[ConfigResult]) -> str:
    """Grouped bars of each category's IoU for the best configuration of each model (base64 PNG)."""
    best_per_model = {}
    for result in results:
        current = best_per_model.get(result.model)
        if current is None or (result.mean_dice or -1) > (current.mean_dice or -1):
            best_per_model[result.model] = result
    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(best_per_model), 1)
    for index, result in enumerate(best_per_model.values()):
        positions = [c + index * width for c in range(len(EVALUATED_CATEGORIES))]
        values = [result.iou[name] or 0.0 for name in EVALUATED_CATEGORIES]
        axes.bar(
            positions,
            values,
            width,
            label=f"{result.model} ({result.loss}, {'aug' if result.augment else 'no aug'})",
        )
    axes.set_xticks([c + 0.4 - width / 2 for c in range(len(EVALUATED_CATEGORIES))], EVALUATED_CATEGORIES)
    axes.set_ylim(0, 1)
    axes.set_ylabel("IoU (val)")
    axes.set_title("Per-category IoU, best configuration of each model")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def augmentation_plot(gains: list[dict]) -> str:
    """Bars of the mean_dice gain from augmentation per model and loss (base64 PNG)."""
    figure, axes = plt.subplots(figsize=(max(3.5, 1.2 * len(gains) + 2), 3.5))
    labels = [f"{gain['model']}\n{gain['loss']}" for gain in gains]
    values = [gain["gain"] for gain in gains]
    axes.bar(labels, values, color=["tab:green" if value >= 0 else "tab:red" for value in values])
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylabel("mean Dice: with - without")
    axes.set_title("Augmentation gain")
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def _table_html(rows: list[dict], best_run_id: str) -> str:
    header = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in COLUMNS)
    body = []
    for row in rows:
        cells = "".join(f"<td>{_cell(row[key], decimals)}</td>" for key, _, decimals in COLUMNS)
        css = ' class="best"' if row["run_id"] == best_run_id else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return f'<table id="comparison"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _gain_html(gains: list[dict]) -> str:
    if not gains:
        return "<p>No model and loss ran both with and without augmentation, so there is no gain to show.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(g['model'])}</td><td>{html.escape(g['loss'])}</td><td>{g['without']:.4f}</td>"
        f"<td>{g['with']:.4f}</td><td>{g['gain']:+.4f}</td></tr>"
        for g in gains
    )
    return (
        '<table id="augmentation"><thead><tr><th>model</th><th>loss</th><th>mean_dice without</th>'
        f"<th>mean_dice with</th><th>gain</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<img alt="augmentation gain" src="data:image/png;base64,{augmentation_plot(gains)}">'
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }
th { background: #f0f0f0; }
#comparison td:nth-child(-n+5), #augmentation td:nth-child(-n+2) { text-align: left; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1.5em; font-size: 0.9em; }
dt { font-weight: bold; }
dd { margin: 0; }
tr.best { background: #e6f4e6; font-weight: bold; }
img { max-width: 100%; }
"""


def render_html(results: list[ConfigResult], title: str, facts: dict[str, str]) -> str:
    """The whole report as one self-contained HTML page."""
    best = pick_best(results)
    gains = augmentation_gain(results)
    facts_html = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<dl>{facts_html}</dl>
<p>Best configuration by mean_dice: <strong>{html.escape(best.label)}</strong>
(mean_dice {best.mean_dice:.4f}, run {html.escape(best.run_id)}); it is the one offered to the push gate.</p>
<h2>Comparison</h2>
<p>Scores are on the validation split: mean_dice and mean_iou average the 7 non-void categories
(Cityscapes convention, void pixels ignored). Training time is the wall clock of fit.</p>
{_table_html(table_rows(results), best.run_id)}
<h2>Dice against training time</h2>
<img alt="Dice against training time" src="data:image/png;base64,{dice_vs_time_plot(results)}">
<h2>Per-category IoU per model</h2>
<img alt="per-category IoU" src="data:image/png;base64,{per_category_plot(results)}">
<h2>Augmentation gain per model</h2>
{_gain_html(gains)}
</body></html>
"""


def write_table_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """The comparison table as CSV, full precision, empty cells for missing values."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    storage.write_text(path, buffer.getvalue())


def build_report(parent_run_id: str, out: str | os.PathLike) -> list[ConfigResult]:
    """Read the parent's child runs from MLflow; write the HTML report to `out`, the table as CSV beside it.

    The CSV has the report's name with a `.csv` suffix.

    Returns:
        The results the report shows, in table order.

    Raises:
        ValueError: the parent run does not exist, has no child runs, or none was evaluated.
    """
    results = collect_results(parent_run_id)
    parent = MlflowClient().get_run(parent_run_id)
    experiment = mlflow.get_experiment(parent.info.experiment_id)
    facts = {
        "parent run": f"{parent.info.run_name} ({parent_run_id})",
        "experiment": experiment.name,
        "tracking URI": mlflow.get_tracking_uri(),
        "configurations": str(len(results)),
        **dict(sorted(parent.data.params.items())),
        "built": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    out = Path(out)
    page = render_html(results, f"cityseg model comparison: {parent.info.run_name}", facts)
    storage.write_text(out, page)
    write_table_csv(table_rows(results), out.with_suffix(".csv"))
    log.info("report of %d configurations written to %s", len(results), out)
    return results


def report_sweep(parent_run_id: str, out_dir: str | os.PathLike) -> ConfigResult:
    """End a sweep: write the report to out_dir, log it and the best config to the parent run, close it.

    Returns:
        The best configuration by mean_dice, the one the push gate gets.
    """
    results = build_report(parent_run_id, Path(out_dir) / REPORT_FILE)
    best = pick_best(results)
    finish_parent_run(parent_run_id, best, str(out_dir))
    log.info("best configuration %s: mean_dice %.4f (run %s)", best.label, best.mean_dice, best.run_id)
    return best


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
    """The sweep's last step: the report, the best config on the parent run, its model and evaluation copied.

    Returns:
        The best configuration, whose model and evaluation now sit in best_model_dir and best_evaluation_dir.
    """
    tracking.connect(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        best = report_sweep(sweep_parent(configs), tmp)
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / REPORT_FILE, report_path)
    model_dir, evaluation_dir = best_artifacts(best.run_id, model_dirs, evaluation_dirs)
    shutil.copytree(model_dir, best_model_dir, dirs_exist_ok=True)
    shutil.copytree(evaluation_dir, best_evaluation_dir, dirs_exist_ok=True)
    return best
