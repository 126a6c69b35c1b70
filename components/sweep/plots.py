"""The report's figures as PNG bytes: Dice against time, per-category IoU, augmentation gains, robustness."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use(): pyplot must not pick a GUI backend

from cityseg.components.evaluate.corruptions import CORRUPTIONS, SEVERITIES, metric_key
from cityseg.components.sweep.analysis import CLEAN, Comparison, Summary, category_means
from cityseg.components.sweep.results import EVALUATED_CATEGORIES


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def dice_vs_time(summaries: list[Summary], front: list[Summary]) -> bytes:
    """mean_dice (± std over seeds) against training time, the Pareto front joined by a line."""
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.get_cmap("tab10")
    models = list(dict.fromkeys(summary.recipe[0] for summary in summaries))
    for summary in summaries:
        (dice, std), seconds = summary.stat(CLEAN), summary.mean("training_time_s")
        if dice is None or seconds is None:
            continue
        color = colors(models.index(summary.recipe[0]) % 10)
        axes.errorbar(seconds, dice, yerr=std or 0, fmt="o", color=color, capsize=3)
        axes.annotate(summary.label, (seconds, dice), fontsize=6.5, xytext=(4, 3), textcoords="offset points")
    points = sorted((s.mean("training_time_s"), s.mean(CLEAN)) for s in front)
    if points:
        axes.plot(*zip(*points, strict=True), "--", color="black", linewidth=1, label="Pareto front")
    for index, model in enumerate(models):
        axes.scatter([], [], color=colors(index % 10), label=model)
    axes.set_xlabel("training time (s, mean over seeds)")
    axes.set_ylabel("mean Dice (7 categories, val)")
    axes.set_title("Dice against training time")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def per_category(rows: list[Summary]) -> bytes:
    """Grouped bars of each category's IoU (mean over seeds), one group per category, one bar per row."""
    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(rows), 1)
    for index, summary in enumerate(rows):
        means = category_means(summary)
        positions = [c + index * width for c in range(len(EVALUATED_CATEGORIES))]
        axes.bar(positions, [means[name] or 0.0 for name in EVALUATED_CATEGORIES], width, label=summary.label)
    axes.set_xticks([c + 0.4 - width / 2 for c in range(len(EVALUATED_CATEGORIES))], EVALUATED_CATEGORIES)
    axes.set_ylim(0, 1)
    axes.set_ylabel("IoU (val)")
    axes.set_title("Per-category IoU per model")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=7)
    return _png(figure)


def gains(comparisons: list[Comparison]) -> bytes:
    """Paired differences against the baseline with their 95% intervals, one bar per comparison."""
    shown = [c for c in comparisons if c.difference is not None]
    figure, axes = plt.subplots(figsize=(max(4.0, 0.9 * len(shown) + 2), 3.8))
    labels = [f"{c.candidate.recipe[2]}\n{'clean' if c.metric == CLEAN else 'corrupted'}" for c in shown]
    means = [c.difference.mean for c in shown]
    errors = [
        [0 if c.difference.low is None else c.difference.mean - c.difference.low for c in shown],
        [0 if c.difference.high is None else c.difference.high - c.difference.mean for c in shown],
    ]
    colors = ["tab:blue" if c.metric == CLEAN else "tab:orange" for c in shown]
    axes.bar(range(len(shown)), means, yerr=errors, color=colors, capsize=3)
    axes.set_xticks(range(len(shown)), labels, fontsize=7)
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylabel("difference to no augmentation")
    axes.set_title("Augmentation gain (clean mean Dice, corrupted mean IoU), 95% intervals")
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def robustness(rows: list[Summary]) -> bytes:
    """mean_iou against severity (0 = clean), one panel per corruption, one line per row."""
    figure, panels = plt.subplots(1, len(CORRUPTIONS), figsize=(3 * len(CORRUPTIONS), 3.2), sharey=True)
    for panel, name in zip(panels, CORRUPTIONS, strict=True):
        for summary in rows:
            values = [
                summary.mean("clean_mean_iou"),
                *(summary.mean(metric_key(name, s)) for s in SEVERITIES),
            ]
            if None not in values:
                panel.plot([0, *SEVERITIES], values, marker="o", label=summary.label)
        panel.set_title(CORRUPTIONS[name].stands_for, fontsize=9)
        panel.set_xticks([0, *SEVERITIES])
        panel.set_xlabel("severity")
        panel.grid(alpha=0.3)
    panels[0].set_ylabel("mean IoU (val)")
    panels[-1].legend(fontsize=6)
    return _png(figure)
