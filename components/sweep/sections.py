"""The technical note's nine sections as plain blocks (text, bullets, tables, figures).

The HTML page and the Markdown file render the same blocks, so both always say the same thing.
"""

import dataclasses

from cityseg.components.evaluate.corruptions import CORRUPTIONS, SEVERITIES, metric_key
from cityseg.components.sweep import conclusion, plots
from cityseg.components.sweep.analysis import (
    CLEAN,
    ROBUST,
    Comparison,
    Summary,
    best,
    category_means,
    pareto_front,
)
from cityseg.components.sweep.config import SweepConfig
from cityseg.components.sweep.core import augmentation_list
from cityseg.components.sweep.results import EVALUATED_CATEGORIES, ConfigResult
from cityseg.components.sweep.stats import interval_methods


@dataclasses.dataclass(frozen=True)
class Table:
    key: str
    headers: list[str]
    rows: list[list[str]]


@dataclasses.dataclass(frozen=True)
class Figure:
    name: str
    alt: str
    png: bytes


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclasses.dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: list


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pm(summary: Summary, name: str, digits: int = 3) -> str:
    mean, std = summary.stat(name)
    return _num(mean, digits) if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def goal() -> Section:
    """1. What is scored and why."""
    return Section("goal", "1. Goal and metric", [
        "Each pixel of a street photo gets one of the 8 Cityscapes categories (flat, construction, "
        "object, nature, sky, human, vehicle, and void). The score is the Dice coefficient "
        "2|P∩T|/(|P|+|T|) and the IoU |P∩T|/|P∪T| of each category, from one confusion matrix "
        "accumulated over every pixel of the validation split, averaged over the 7 non-void "
        "categories (the Cityscapes category convention: void pixels are ignored). Dice weighs "
        "overlap like F1 and is the course metric; IoU is the Cityscapes benchmark's; both punish "
        "a missed small category as much as a missed road, unlike pixel accuracy. Training time "
        "is the second indicator.",
    ])  # fmt: skip


def models(summaries: list[Summary]) -> Section:
    """2. Each model: what it is, parameters, stride, inference time."""
    from cityseg.components.train.models import MODELS

    rows = []
    for name in dict.fromkeys(summary.recipe[0] for summary in summaries):
        runs = [summary for summary in summaries if summary.recipe[0] == name]
        spec = MODELS.get(name)
        rows.append([
            name,
            spec.description if spec else "?",
            _num(runs[0].runs[0].num_params, 0),
            str(spec.stride) if spec else "?",
            _num(runs[0].mean("latency_ms_per_image"), 2),
            _num(runs[0].mean("tflite_mb"), 2),
        ])  # fmt: skip
    headers = ["model", "what it is", "parameters", "stride", "inference ms/image", "TFLite fp16 MB"]
    return Section("models", "2. Models", [Table("models", headers, rows)])


def setup(results: list[ConfigResult], sweep: SweepConfig, comparisons: list[Comparison]) -> Section:
    """3. Budget rule, what is varied, what every run shares, how the intervals were computed."""
    varied = {"model", "loss", "augment", "seed", "epochs", "data_manifest_hash"}
    shared = {}
    for key in sorted({key for run in results for key in run.params} - varied):
        values = {run.params.get(key) for run in results}
        shared[key] = (
            next(iter(values)) if len(values) == 1 else "varies: " + ", ".join(sorted(map(str, values)))
        )
    settings = [f"{setting} ({augmentation_list(setting) or 'no augmentation'})" for setting in sweep.augment]
    design = (
        "every model x loss x augmentation setting (crossed)"
        if sweep.crossed
        else f"one factor at a time around the reference {sweep.reference_model} / {sweep.reference_loss} / "
        f"{sweep.reference_augment}: the model ladder, the losses on {sweep.reference_model}, the "
        f"augmentation settings on {sweep.reference_model} / {sweep.reference_loss}"
    )
    return Section("setup", "3. Training setup", [
        Bullets([
            f"Budget rule: {sweep.budget.rule()}.",
            f"Design: {design}.",
            f"Models: {', '.join(sweep.models)}. Losses: {', '.join(sweep.losses)}.",
            f"Augmentation settings: {'; '.join(settings)}.",
            f"Seeds: {', '.join(map(str, sweep.seeds))}; every configuration runs with each, so "
            "configurations pair by seed (same shuffles and augmentation draws).",
            f"95% intervals: {interval_methods([c.difference for c in comparisons])}.",
        ]),
        "Varied: model, loss, augmentation and seed. Shared by every run (from the training "
        "pipeline's defaults unless the preset or a flag changed them):",
        Table("shared", ["setting", "value"], [[key, str(value)] for key, value in shared.items()]),
    ])  # fmt: skip


def results_table(summaries: list[Summary]) -> Section:
    """4. One row per configuration, mean ± std over seeds, best and Pareto front marked."""
    top, front = best(summaries), pareto_front(summaries)
    rows = [
        [
            summary.label + (" (best)" if summary is top else "") + (" *" if summary in front else ""),
            ", ".join(summary.studies) or "–",
            str(len(summary.runs)),
            _pm(summary, CLEAN),
            _pm(summary, "mean_iou"),
            _pm(summary, ROBUST),
            _num(summary.epochs(), 1),
            _num(summary.mean("training_time_s"), 0),
        ]
        for summary in summaries
    ]
    headers = [
        "configuration",
        "studies",
        "seeds",
        "mean Dice",
        "mean IoU",
        "corrupted IoU",
        "epochs",
        "train s",
    ]
    seeds = {len(summary.runs) for summary in summaries}
    spread = (
        "one seed per configuration, so no spread over seeds"
        if seeds == {1}
        else "mean ± standard deviation over seeds (a single value where a configuration ran one seed)"
    )
    return Section("results", "4. Results", [
        f"Validation scores, {spread}; * marks the Pareto front of Dice against training time (no "
        "other configuration is both better and faster). The selection split chose (best) by its mean "
        "Dice, as it chose every epoch; the val split judged, and no choice read it.",
        Table("results", headers, rows),
        Figure("dice_vs_time.png", "Dice against training time", plots.dice_vs_time(summaries, front)),
    ])  # fmt: skip


def per_category(summaries: list[Summary], sweep: SweepConfig) -> Section:
    """5. Each category's IoU for each model (its ladder configuration, else its best)."""
    rows = []
    for name in dict.fromkeys(summary.recipe[0] for summary in summaries):
        of_model = [s for s in summaries if s.recipe[0] == name]
        ladder = [s for s in of_model if "ladder" in s.studies]
        rows.append(ladder[0] if ladder else best(of_model))
    table = [[s.label, *(_num(v) for v in category_means(s).values())] for s in rows]
    return Section("categories", "5. Per-category IoU per model", [
        Table("categories", ["configuration", *EVALUATED_CATEGORIES], table),
        Figure("per_category.png", "per-category IoU", plots.per_category(rows)),
    ])  # fmt: skip


def _difference_rows(comparisons: list[Comparison]) -> list[list[str]]:
    return [
        [
            c.candidate.label,
            c.baseline.label,
            _pm(c.candidate, c.metric),
            c.difference.describe() if c.difference else "no shared seed",
        ]
        for c in comparisons
    ]


def losses(comparisons: list[Comparison]) -> Section:
    """6. Each loss against the reference loss, paired by seed."""
    rows = _difference_rows([c for c in comparisons if c.study == "loss"])
    headers = ["configuration", "against", "mean Dice", "difference [95% interval], verdict"]
    blocks = [Table("losses", headers, rows)] if rows else ["The sweep compared no loss against another."]
    return Section("losses", "6. Loss comparison", blocks)


def augmentation(comparisons: list[Comparison]) -> Section:
    """7. Each augmentation setting against none: clean Dice and corrupted IoU, with intervals."""
    ours = [c for c in comparisons if c.study == "augmentation"]
    if not ours:
        return Section("augmentation", "7. Augmentation gains", ["No setting ran beside no augmentation."])
    clean = {c.candidate.recipe: c for c in ours if c.metric == CLEAN}
    robust = {c.candidate.recipe: c for c in ours if c.metric == ROBUST}
    rows = [
        [
            recipe[2], c.baseline.label, _pm(c.candidate, CLEAN),
            c.difference.describe() if c.difference else "no shared seed",
            _pm(robust[recipe].candidate, ROBUST),
            robust[recipe].difference.describe() if robust[recipe].difference else "no corrupted scores",
        ]
        for recipe, c in clean.items()
    ]  # fmt: skip
    headers = [
        "setting",
        "against",
        "clean Dice",
        "clean gain [95%]",
        "corrupted IoU",
        "robustness gain [95%]",
    ]
    return Section("augmentation", "7. Augmentation gains", [
        f"A gain is claimed only when its 95% interval ({interval_methods([c.difference for c in ours])}) "
        "excludes 0; otherwise the difference is within noise.",
        Table("augmentation", headers, rows),
        Figure("augmentation.png", "augmentation gains", plots.gains(ours)),
    ])  # fmt: skip


def robustness(summaries: list[Summary]) -> Section:
    """8. mean IoU per corruption (mean over severities), mean over corruptions, relative robustness."""
    rows = [s for s in summaries if s.mean(ROBUST) is not None]
    if not rows:
        return Section("robustness", "8. Robustness per corruption", ["No run was scored under corruptions."])
    headers = [
        "configuration",
        "clean IoU",
        *(c.stands_for for c in CORRUPTIONS.values()),
        "mean",
        "relative",
    ]
    table = [
        [s.label, _num(s.mean("clean_mean_iou")), *(_num(s.mean(metric_key(n))) for n in CORRUPTIONS),
         _num(s.mean(ROBUST)), _num(s.mean("relative_robustness"))]
        for s in rows
    ]  # fmt: skip
    levels = [f"{c.stands_for}: {', '.join(map(str, c.levels))} ({c.unit})" for c in CORRUPTIONS.values()]
    top = best(rows)
    severities = [[n, *(_num(top.mean(metric_key(n, s))) for s in SEVERITIES)] for n in CORRUPTIONS]
    return Section("robustness", "8. Robustness per corruption", [
        "The validation split again under ImageNet-C style corruptions (albumentations, seeded), "
        "at severities 1, 2, 3; relative robustness is corrupted mean IoU over clean mean IoU.",
        Bullets(levels),
        Table("robustness", headers, table),
        f"Per severity, {top.label}:",
        Table("severities", ["corruption", *(f"severity {s}" for s in SEVERITIES)], severities),
        Figure("robustness.png", "mean IoU against severity", plots.robustness(rows)),
    ])  # fmt: skip


def closing(summaries: list[Summary], comparisons: list[Comparison], sweep: SweepConfig) -> Section:
    """9. The conclusion, generated from the numbers."""
    return Section("conclusion", "9. Conclusion", [
        *conclusion.recommendation(summaries, pareto_front(summaries)),
        *conclusion.findings(comparisons, sweep),
        "Next improvements the results point to:",
        Bullets(conclusion.improvements(summaries, comparisons, sweep)),
    ])  # fmt: skip
