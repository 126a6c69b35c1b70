"""Pictures of an evaluation: the confusion-matrix heatmap, per-category bars and one HTML page.

The HTML page embeds every image as base64 so that it is a single self-contained file: the KFP UI
shows an HTML artifact on its own, with no way to fetch files beside it.
"""

import base64
import html
import io

import cv2
import matplotlib
import numpy as np

from cityseg.components.evaluate.litert import FIGURES, VARIANTS
from cityseg.components.labels import CATEGORY_NAMES, category_colors, colorize

matplotlib.use("Agg")

import matplotlib.pyplot as plt

SUMMARY_KEYS = (
    "mean_dice",
    "mean_iou",
    "mean_dice_8",
    "mean_iou_8",
    "pixel_accuracy",
    "latency_ms_per_image",
    "images_per_s",
)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def confusion_matrix_png(cm: np.ndarray) -> bytes:
    """Heatmap of the confusion matrix normalised per true category, each cell annotated with its count."""
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    figure, axes = plt.subplots(figsize=(7.5, 6.5))
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true category")
    ticks = range(len(CATEGORY_NAMES))
    axes.set_xticks(ticks, CATEGORY_NAMES, rotation=45, ha="right")
    axes.set_yticks(ticks, CATEGORY_NAMES)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix (rows normalised; cells: share and pixel count)")
    for i in ticks:
        for j in ticks:
            colour = "white" if normalised[i, j] > 0.5 else "black"
            axes.text(
                j,
                i,
                f"{normalised[i, j]:.2f}\n{cm[i, j]:,}",
                ha="center",
                va="center",
                fontsize=6,
                color=colour,
            )
    return _png(figure)


def per_category_png(scores: dict) -> bytes:
    """IoU and Dice bars per category; a category absent from the split is marked n/a."""
    figure, axes = plt.subplots(figsize=(9, 4.2))
    x = np.arange(len(CATEGORY_NAMES))
    width = 0.38
    for offset, metric, label in ((-width / 2, "iou", "IoU"), (width / 2, "dice", "Dice")):
        values = [scores.get(f"{metric}_{name}") for name in CATEGORY_NAMES]
        bars = axes.bar(x + offset, [v or 0.0 for v in values], width, label=label)
        # Void is scored as an eighth class only; hatching keeps it apart from the 7 in the means.
        bars[0].set_hatch("//")
        for bar, value in zip(bars, values, strict=True):
            text = "n/a" if value is None else f"{value:.2f}"
            axes.text(
                bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01, text, ha="center", fontsize=7
            )
    axes.set_xticks(x, CATEGORY_NAMES, rotation=30, ha="right")
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("score")
    mean_dice, mean_iou = scores.get("mean_dice"), scores.get("mean_iou")
    axes.set_title(
        f"Per-category scores (void is not in the means): "
        f"mean IoU {_fmt(mean_iou)}, mean Dice {_fmt(mean_dice)}"
    )
    axes.legend(loc="upper right")
    return _png(figure)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _rgb_png(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode a sample image as PNG")
    return encoded.tobytes()


def _legend() -> str:
    swatches = "".join(
        f'<span class="swatch"><i style="background:rgb({r},{g},{b})"></i>{html.escape(name)}</span>'
        for name, (r, g, b) in zip(CATEGORY_NAMES, category_colors().tolist(), strict=True)
    )
    return f'<div class="legend">{swatches}</div>'


def _triptychs(images: np.ndarray, true_masks: np.ndarray, predicted_masks: np.ndarray) -> str:
    rows = []
    for i, (image, true, predicted) in enumerate(zip(images, true_masks, predicted_masks, strict=True)):
        cells = "".join(
            f'<figure><img alt="{caption} {i + 1}" src="{_data_uri(_rgb_png(rgb))}">'
            f"<figcaption>{caption}</figcaption></figure>"
            for caption, rgb in (
                ("image", image),
                ("true", colorize(true)),
                ("predicted", colorize(predicted)),
            )
        )
        rows.append(f'<div class="triptych">{cells}</div>')
    return "\n".join(rows)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.legend { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 0.5rem 0 1rem; }
.swatch i { display: inline-block; width: 1rem; height: 1rem; margin-right: 0.3rem;
  vertical-align: middle; border: 1px solid #888; }
.triptych { display: flex; gap: 0.5rem; margin-bottom: 0.8rem; }
figure { margin: 0; } figure img { max-width: 100%; image-rendering: pixelated; width: 320px; }
figcaption { font-size: 0.8rem; text-align: center; }
.plots img { max-width: 48%; vertical-align: top; }
"""


def _exports_table(scores: dict) -> str:
    """The TFLite exports scored with LiteRT against the Keras model; empty when none was scored."""
    variants = [v for v in VARIANTS if f"tflite_{v}_mean_iou" in scores]
    if not variants:
        return ""
    rows = "".join(
        f"<tr><td>{variant}</td>"
        + "".join(f"<td>{_fmt(scores.get(f'tflite_{variant}_{key}'))}</td>" for key in FIGURES)
        + "</tr>"
        for variant in variants
    )
    header = "".join(f"<th>{key}</th>" for key in FIGURES)
    return (
        "<h2>Embedded exports (LiteRT, 1 CPU thread, 1 image per call)</h2>"
        "<p>delta: the export's score minus the float32 Keras model's.</p>"
        f"<table><tr><th>export</th>{header}</tr>"
        f"<tr><td>float32 (Keras)</td><td>{_fmt(scores.get('mean_iou'))}</td>"
        f"<td>{_fmt(scores.get('mean_dice'))}</td><td></td><td></td><td></td><td></td></tr>{rows}</table>"
    )


def report_html(
    scores: dict,
    images: np.ndarray,
    true_masks: np.ndarray,
    predicted_masks: np.ndarray,
    *,
    confusion_png: bytes,
    per_category_png: bytes,
) -> str:
    """A self-contained HTML page: summary, per-category table, both plots and sample triptychs."""
    summary = "".join(f"<tr><td>{key}</td><td>{_fmt(scores.get(key))}</td></tr>" for key in SUMMARY_KEYS)
    per_category = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(scores.get(f'iou_{name}'))}</td>"
        f"<td>{_fmt(scores.get(f'dice_{name}'))}</td></tr>"
        for name in CATEGORY_NAMES
    )
    title = f"cityseg evaluation: {scores.get('model_ref', 'model')} on {scores.get('split', '?')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{scores.get("examples", 0)} images; scores from one confusion matrix over every pixel of the split.
Means are over the 7 non-void categories (Cityscapes category IoU: void ground-truth pixels are
ignored); the <code>_8</code> variants count void as a class.</p>
<table><tr><th>metric</th><th>value</th></tr>{summary}</table>
<table><tr><th>category</th><th>IoU</th><th>Dice</th></tr>{per_category}</table>
{_exports_table(scores)}
<div class="plots"><img alt="confusion matrix" src="{_data_uri(confusion_png)}">
<img alt="per-category scores" src="{_data_uri(per_category_png)}"></div>
<h2>Samples: image | true | predicted</h2>
{_legend()}
{_triptychs(images, true_masks, predicted_masks)}
</body></html>
"""
