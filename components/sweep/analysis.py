"""From child runs to findings: each configuration over its seeds, paired comparisons, the Pareto front."""

import dataclasses
import statistics

from cityseg.components.evaluate.frame_matrices import CLEAN as CLEAN_FRAMES
from cityseg.components.sweep.config import NO_AUGMENTATION, SweepConfig
from cityseg.components.sweep.core import configurations
from cityseg.components.sweep.results import EVALUATED_CATEGORIES, ConfigResult
from cityseg.components.sweep.stats import (
    FRAME_STATISTICS,
    PairedDifference,
    frame_bootstrap,
    mean_std,
    paired_difference,
)

CLEAN, ROBUST = "mean_dice", "corrupt_mean_iou"
# What the sweep chooses on: the selection split's score. CLEAN and ROBUST are val's, which only judge.
SELECTION = "select_mean_dice"


def metric(result: ConfigResult, name: str) -> float | None:
    """A run's score by name: a ConfigResult field, an `iou_<category>`, or a robustness figure."""
    if name.startswith("iou_"):
        return result.iou.get(name.removeprefix("iou_"))
    if hasattr(result, name):
        return getattr(result, name)
    return result.robustness.get(name)


@dataclasses.dataclass(frozen=True)
class Summary:
    """One configuration (model, loss, augmentation) over its seeds, and the studies it belongs to."""

    recipe: tuple[str, str, str]
    runs: tuple[ConfigResult, ...]
    studies: tuple[str, ...]

    @property
    def label(self) -> str:
        """E.g. `unet_mini/ce_dice/flip`."""
        return "/".join(self.recipe)

    def by_seed(self, name: str) -> dict[int, float]:
        """The metric per seed, seeds without it left out."""
        return {run.seed: metric(run, name) for run in self.runs if metric(run, name) is not None}

    def stat(self, name: str) -> tuple[float | None, float | None]:
        """(mean, std) of the metric over the seeds; std is None below two seeds."""
        return mean_std(list(self.by_seed(name).values()))

    def mean(self, name: str) -> float | None:
        """The metric's mean over the seeds."""
        return self.stat(name)[0]

    def best_run(self) -> ConfigResult:
        """The seed with the best select_mean_dice: the model this configuration offers to the push gate."""
        return max(self.runs, key=lambda run: -1.0 if run.select_mean_dice is None else run.select_mean_dice)

    def epochs(self) -> float | None:
        """Epochs trained, mean over the seeds."""
        values = [run.epochs for run in self.runs if run.epochs is not None]
        return statistics.fmean(values) if values else None


def summarize(results: list[ConfigResult], sweep: SweepConfig) -> list[Summary]:
    """The runs grouped by configuration, in the order of the results (smallest model first)."""
    studies = {(model, loss, augment): names for model, loss, augment, names in configurations(sweep)}
    grouped: dict[tuple[str, str, str], list[ConfigResult]] = {}
    for result in results:
        grouped.setdefault(result.recipe, []).append(result)
    return [Summary(recipe, tuple(runs), studies.get(recipe, ())) for recipe, runs in grouped.items()]


def _frame_stacks(summary: Summary, seed: int, name: str) -> dict | None:
    """The per-frame confusions of `summary`'s run with `seed` that metric `name` is computed from."""
    # The run `by_seed` reads the metric from: the last of the seed's runs that has it.
    run = [run for run in summary.runs if run.seed == seed and metric(run, name) is not None][-1]
    stacks = run.frame_confusions
    if stacks is None:
        return None
    wanted = {CLEAN_FRAMES} if name == CLEAN else set(stacks) - {CLEAN_FRAMES}
    return {key: stacks[key] for key in sorted(wanted)} if wanted else None


def difference(candidate: Summary, baseline: Summary, name: str) -> PairedDifference | None:
    """`candidate - baseline` on metric `name`: a t-interval over seeds with two or more shared seeds.

    With exactly one shared seed, a paired bootstrap over the validation frames when both runs
    logged per-frame confusions that cover the same frames and settings (`stats.frame_bootstrap`);
    otherwise the one-seed difference without an interval. None when no seed is shared.
    """
    a, b = candidate.by_seed(name), baseline.by_seed(name)
    shared = set(a) & set(b)
    if len(shared) == 1 and name in FRAME_STATISTICS:
        seed = next(iter(shared))
        stacks = _frame_stacks(candidate, seed, name), _frame_stacks(baseline, seed, name)
        shapes = [None if s is None else {k: v.shape for k, v in s.items()} for s in stacks]
        if None not in shapes and shapes[0] == shapes[1]:
            found = frame_bootstrap(*stacks, name, seed)
            if found is not None:
                return found
    return paired_difference(a, b)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """`candidate - baseline` on one metric (see `difference`); None when no seed is shared."""

    study: str
    candidate: Summary
    baseline: Summary
    metric: str
    difference: PairedDifference | None


def _compare(study: str, pairs, by_recipe: dict, metrics: tuple[str, ...]) -> list[Comparison]:
    comparisons = []
    for candidate, baseline in pairs:
        if candidate == baseline or candidate not in by_recipe or baseline not in by_recipe:
            continue
        for name in metrics:
            a, b = by_recipe[candidate], by_recipe[baseline]
            comparisons.append(Comparison(study, a, b, name, difference(a, b, name)))
    return comparisons


def comparisons(summaries: list[Summary], sweep: SweepConfig) -> list[Comparison]:
    """The sweep's comparisons, each paired by seed (by frame with a single seed, see `difference`).

    - ladder: each model against the reference model (reference loss and augmentation);
    - loss: each loss against the reference loss (reference model and augmentation);
    - augmentation: each setting against none, on clean mean_dice and on corrupt_mean_iou; in a
      crossed sweep for every model and loss, else on the reference model and loss.
    """
    by_recipe = {summary.recipe: summary for summary in summaries}
    model, loss, augment = sweep.reference_model, sweep.reference_loss, sweep.reference_augment
    ladder = [((m, loss, augment), (model, loss, augment)) for m in sweep.models]
    losses = [((model, name, augment), (model, loss, augment)) for name in sweep.losses]
    slices = [(m, name) for m in sweep.models for name in sweep.losses] if sweep.crossed else [(model, loss)]
    augmentation = [
        ((m, name, setting), (m, name, NO_AUGMENTATION)) for m, name in slices for setting in sweep.augment
    ]
    return [
        *_compare("ladder", ladder, by_recipe, (CLEAN,)),
        *_compare("loss", losses, by_recipe, (CLEAN,)),
        *_compare("augmentation", augmentation, by_recipe, (CLEAN, ROBUST)),
    ]


def best(summaries: list[Summary]) -> Summary:
    """The evaluated configuration with the highest select_mean_dice averaged over its seeds.

    Chosen on the selection split, so that its val scores (CLEAN) judge a choice they did not make.

    Raises:
        ValueError: no configuration has both scores (no child run was evaluated, or none logged
            the selection split's score).
    """
    scored = [s for s in summaries if s.mean(CLEAN) is not None and s.mean(SELECTION) is not None]
    if not scored:
        runs = sum(len(summary.runs) for summary in summaries)
        raise ValueError(
            f"none of the {runs} child runs has both eval_mean_dice and kept_select_mean_dice: was "
            "evaluation run, and were the models trained on shards with a select split?"
        )
    return max(scored, key=lambda summary: summary.mean(SELECTION))


def pareto_front(summaries: list[Summary]) -> list[Summary]:
    """The configurations that no other beats on both mean_dice (higher) and training time (lower)."""
    points = [
        (summary, summary.mean(CLEAN), summary.mean("training_time_s"))
        for summary in summaries
        if summary.mean(CLEAN) is not None and summary.mean("training_time_s") is not None
    ]
    return [
        summary
        for summary, dice, seconds in points
        if not any(
            d >= dice and s <= seconds and (d > dice or s < seconds)
            for other, d, s in points
            if other is not summary
        )
    ]


def category_means(summary: Summary) -> dict[str, float | None]:
    """Each evaluated category's IoU, mean over the seeds."""
    return {name: summary.mean(f"iou_{name}") for name in EVALUATED_CATEGORIES}
