"""The report's conclusion, written from the numbers: what to use, what helped, what to try next.

Every sentence here is chosen by a comparison's verdict or a measured figure; nothing is said about
a technique that the numbers do not support (a difference within noise is never a gain).
"""

from cityseg.components.evaluate.corruptions import CORRUPTIONS, metric_key
from cityseg.components.sweep.analysis import (
    CLEAN,
    ROBUST,
    SELECTION,
    Comparison,
    Summary,
    best,
    category_means,
    difference,
)
from cityseg.components.sweep.config import SweepConfig
from cityseg.components.sweep.stats import FRAMES, GAIN, LOSS, NOISE, ONE_SEED

# The augmentation that imitates each corruption, where the train step has one.
REMEDY = {"gaussian_noise": "noise", "darkness": "color_jitter", "fog": "color_jitter"}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _score(summary: Summary, name: str = CLEAN) -> str:
    mean, std = summary.stat(name)
    spread = "" if std is None else f" ± {std:.3f}"
    seeds = len(summary.by_seed(name))
    return f"{_fmt(mean)}{spread} ({seeds} seed{'' if seeds == 1 else 's'})"


def _by_verdict(comparisons: list[Comparison], name: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {GAIN: [], NOISE: [], LOSS: [], ONE_SEED: []}
    for comparison in comparisons:
        if comparison.metric == name and comparison.difference is not None:
            what = f"{comparison.candidate.label} ({comparison.difference.describe()})"
            groups[comparison.difference.verdict].append(what)
    return groups


def _study_sentence(subject: str, baseline: str, groups: dict[str, list[str]]) -> str:
    parts = []
    for verdict, phrase in ((GAIN, "better than"), (LOSS, "worse than"), (NOISE, "within noise of")):
        if groups[verdict]:
            parts.append(f"{phrase} {baseline}: {'; '.join(groups[verdict])}")
    if groups[ONE_SEED]:
        parts.append(f"one seed, so no verdict: {'; '.join(groups[ONE_SEED])}")
    return f"{subject}: " + ("; ".join(parts) if parts else "nothing to compare") + "."


def recommendation(summaries: list[Summary], front: list[Summary]) -> list[str]:
    """The recommended configuration, and a cheaper one where it is within noise of it."""
    top = best(summaries)
    lines = [
        f"Recommended configuration: {top.label}, chosen on the select split (mean Dice "
        f"{_fmt(top.mean(SELECTION))}) and judged on val: mean Dice {_score(top)}, mean IoU "
        f"{_fmt(top.mean('mean_iou'))}, {_fmt(top.mean('training_time_s'), 0)} s of training."
    ]
    for other in sorted(front, key=lambda summary: summary.mean("training_time_s")):
        if other is top or other.mean("training_time_s") >= top.mean("training_time_s"):
            continue
        gap = difference(other, top, CLEAN)
        if gap is not None and gap.verdict == NOISE:
            lines.append(
                f"{other.label} is within noise of it ({gap.describe()}) and trains in "
                f"{_fmt(other.mean('training_time_s'), 0)} s: prefer it where training time counts."
            )
            break
    return lines


def findings(comparisons: list[Comparison], sweep: SweepConfig) -> list[str]:
    """One sentence per study: which candidates beat the baseline beyond noise, which did not."""
    ladder = [c for c in comparisons if c.study == "ladder"]
    losses = [c for c in comparisons if c.study == "loss"]
    augmentation = [c for c in comparisons if c.study == "augmentation"]
    lines = [
        _study_sentence("Models", sweep.reference_model, _by_verdict(ladder, CLEAN)),
        _study_sentence("Losses", sweep.reference_loss, _by_verdict(losses, CLEAN)),
        _study_sentence("Augmentation, clean Dice", "no augmentation", _by_verdict(augmentation, CLEAN)),
        _study_sentence("Augmentation, corrupted IoU", "no augmentation", _by_verdict(augmentation, ROBUST)),
    ]
    clean_gains = _by_verdict(augmentation, CLEAN)[GAIN]
    if augmentation and not clean_gains:
        lines.append("No augmentation setting improved clean Dice beyond noise in this sweep.")
    return lines


def _weakest_category(top: Summary) -> tuple[str, float] | None:
    means = {name: value for name, value in category_means(top).items() if value is not None}
    return min(means.items(), key=lambda item: item[1]) if means else None


def _worst_corruption(top: Summary) -> tuple[str, float] | None:
    values = {name: top.mean(metric_key(name)) for name in CORRUPTIONS}
    values = {name: value for name, value in values.items() if value is not None}
    return min(values.items(), key=lambda item: item[1]) if values else None


def improvements(summaries: list[Summary], comparisons: list[Comparison], sweep: SweepConfig) -> list[str]:
    """The next steps the numbers point to, most specific first."""
    top, steps = best(summaries), []
    weakest = _weakest_category(top)
    if weakest:
        steps.append(
            f"{weakest[0]} is the weakest category of {top.label} (IoU {weakest[1]:.3f}): more frames "
            f"with {weakest[0]} pixels, a higher input resolution or a class weighting that favours it."
        )
    worst = _worst_corruption(top)
    if worst:
        name, value = worst
        remedy = REMEDY.get(name)
        cure = (
            f"train with the {remedy} augmentation"
            if remedy
            else f"add a {name} augmentation to the train step"
        )
        steps.append(
            f"{top.label} degrades most under {CORRUPTIONS[name].stands_for} (mean IoU {value:.3f} against "
            f"{_fmt(top.mean('clean_mean_iou'))} clean): {cure}."
        )
    robust = _by_verdict([c for c in comparisons if c.study == "augmentation"], ROBUST)[GAIN]
    if robust:
        steps.append(f"Augmentations that raised corrupted IoU beyond noise: {'; '.join(robust)}.")
    runs = [run for summary in summaries for run in summary.runs]
    capped = [run for run in runs if run.epochs is not None and run.epochs >= sweep.budget.max_epochs]
    if sweep.budget.patience and capped:
        steps.append(
            f"{len(capped)} of {len(runs)} runs trained all {sweep.budget.max_epochs} epochs without early "
            f"stopping: they may not have converged; raise the epoch cap (cityseg compare --epochs)."
        )
    steps += _noise_steps(comparisons, sweep)
    return steps


def _noise_steps(comparisons: list[Comparison], sweep: SweepConfig) -> list[str]:
    """What more seeds would buy: narrower t-intervals, or seed noise that frame bootstraps leave out."""
    steps = []
    by_frames = [c for c in comparisons if c.difference is not None and c.difference.method == FRAMES]
    if by_frames:
        steps.append(
            f"{len(by_frames)} of {len(comparisons)} comparisons rest on one seed: their intervals "
            "(bootstrap over validation frames) leave out seed-to-seed noise, so a gain there may not "
            "survive another seed; rerun with 3 or more seeds before relying on it."
        )
    undecided = [
        c
        for c in comparisons
        if c.difference is not None
        and c.difference.method != FRAMES
        and c.difference.verdict in (NOISE, ONE_SEED)
    ]
    if undecided:
        steps.append(
            f"{len(undecided)} of {len(comparisons)} comparisons are within noise or had one seed: more "
            f"seeds (now {len(sweep.seeds)}) would narrow the intervals."
        )
    return steps
