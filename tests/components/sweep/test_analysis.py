import dataclasses

import pytest

from cityseg.components.sweep import conclusion
from cityseg.components.sweep.analysis import best, comparisons, pareto_front, summarize
from cityseg.components.sweep.config import Budget
from tests.components.sweep.builders import SCORES, SWEEP, result, results_of


@pytest.fixture
def summaries():
    return summarize(results_of(), SWEEP)


def test_summaries_group_seeds_and_carry_their_studies(summaries):
    assert [(s.label, len(s.runs), s.studies) for s in summaries] == [
        ("unet_mini/ce_dice/flip", 2, ("ladder", "loss", "augmentation")),
        ("unet/ce_dice/flip", 2, ("ladder",)),
        ("unet_mini/ce/flip", 2, ("loss",)),
        ("unet_mini/ce_dice/none", 2, ("augmentation",)),
        ("unet_mini/ce_dice/noise", 2, ("augmentation",)),
    ]
    mean, std = summaries[1].stat("mean_dice")
    assert (mean, std) == (pytest.approx(0.815), pytest.approx(0.0212132, abs=1e-6))
    assert summaries[1].best_run().seed == 1


def test_each_study_compares_against_its_baseline_paired_by_seed(summaries):
    found = [
        (c.study, c.candidate.recipe[:2] if c.study == "loss" else c.candidate.recipe[0::2], c.baseline.label,
         c.metric[:9], c.difference.describe())
        for c in comparisons(summaries, SWEEP)
    ]  # fmt: skip
    mini, none = "unet_mini/ce_dice/flip", "unet_mini/ce_dice/none"
    assert found == [
        ("ladder", ("unet", "flip"), mini, "mean_dice", "+0.105 [+0.041, +0.169], gain (2 seeds)"),
        ("loss", ("unet_mini", "ce"), mini, "mean_dice", "+0.005 [-0.186, +0.196], within noise (2 seeds)"),
        ("augmentation", ("unet_mini", "flip"), none, "mean_dice", "+0.105 [+0.041, +0.169], gain (2 seeds)"),
        ("augmentation", ("unet_mini", "flip"), none, "corrupt_m", "+0.030 [+0.030, +0.030], gain (2 seeds)"),
        (
            "augmentation",
            ("unet_mini", "noise"),
            none,
            "mean_dice",
            "+0.020 [-0.361, +0.401], within noise (2 seeds)",
        ),
        (
            "augmentation",
            ("unet_mini", "noise"),
            none,
            "corrupt_m",
            "+0.155 [+0.091, +0.219], gain (2 seeds)",
        ),
    ]


def test_pareto_front_and_best(summaries):
    assert [s.label for s in pareto_front(summaries)] == ["unet/ce_dice/flip", "unet_mini/ce/flip"]
    assert best(summaries).label == "unet/ce_dice/flip"


def test_the_sweep_chooses_on_the_select_split_and_val_only_judges():
    # unet is better on val, unet_mini on select; within unet_mini, seed 0 on val and seed 1 on select.
    results = [
        result("unet_mini", "ce_dice", "flip", 0, 0.75, select_mean_dice=0.80),
        result("unet_mini", "ce_dice", "flip", 1, 0.70, select_mean_dice=0.84),
        result("unet", "ce_dice", "flip", 0, 0.90, select_mean_dice=0.78),
    ]
    top = best(summarize(results, SWEEP))
    assert (top.label, top.best_run().seed) == ("unet_mini/ce_dice/flip", 1)
    unselected = [dataclasses.replace(run, select_mean_dice=None) for run in results]
    with pytest.raises(ValueError, match="none of the 3 child runs has both eval_mean_dice and kept_select"):
        best(summarize(unselected, SWEEP))


def test_conclusion_recommends_from_the_numbers(summaries):
    front = pareto_front(summaries)
    assert conclusion.recommendation(summaries, front) == [
        "Recommended configuration: unet/ce_dice/flip, chosen on the select split (mean Dice 0.815) and "
        "judged on val: mean Dice 0.815 ± 0.021 (2 seeds), mean IoU 0.715, 60 s of training.",
        "unet_mini/ce/flip is within noise of it (-0.100 [-0.227, +0.027], within noise (2 seeds)) and "
        "trains in 20 s: prefer it where training time counts.",
    ]
    lines = conclusion.findings(comparisons(summaries, SWEEP), SWEEP)
    assert (
        lines[0]
        == "Models: better than unet_mini: unet/ce_dice/flip (+0.105 [+0.041, +0.169], gain (2 seeds))."
    )
    assert lines[2].startswith(
        "Augmentation, clean Dice: better than no augmentation: unet_mini/ce_dice/flip"
    )
    assert "within noise of no augmentation: unet_mini/ce_dice/noise" in lines[2]
    assert not any("No augmentation setting improved" in line for line in lines)


def test_conclusion_says_when_augmentation_did_not_help():
    scores = {**SCORES, ("unet_mini", "ce_dice", "none"): [(0.75, 0.30), (0.77, 0.31)]}
    summaries = summarize(results_of(scores), SWEEP)
    lines = conclusion.findings(comparisons(summaries, SWEEP), SWEEP)
    assert lines[-1] == "No augmentation setting improved clean Dice beyond noise in this sweep."
    assert (
        "worse than no augmentation: unet_mini/ce_dice/flip (-0.050 [-0.050, -0.050], loss (2 seeds))"
        in lines[2]
    )


def test_improvements_point_at_the_weakest_category_corruption_cap_and_noise(summaries):
    sweep = dataclasses.replace(SWEEP, budget=Budget(max_epochs=3, patience=2))
    steps = conclusion.improvements(summaries, comparisons(summaries, sweep), sweep)
    assert steps[0].startswith("vehicle is the weakest category of unet/ce_dice/flip (IoU 0.515)")
    assert steps[1] == (
        "unet/ce_dice/flip degrades most under sensor noise (mean IoU 0.385 against 0.715 clean): "
        "train with the noise augmentation."
    )
    assert steps[2].startswith("Augmentations that raised corrupted IoU beyond noise: unet_mini/ce_dice/flip")
    assert steps[3] == (
        "10 of 10 runs trained all 3 epochs without early stopping: they may not have converged; "
        "raise the epoch cap (cityseg compare --epochs)."
    )
    assert steps[4] == (
        "2 of 6 comparisons are within noise or had one seed: more seeds (now 2) would narrow the intervals."
    )


def test_one_seed_never_claims_a_gain():
    one_seed = {recipe: per_seed[:1] for recipe, per_seed in SCORES.items()}
    sweep = dataclasses.replace(SWEEP, seeds=(0,))
    summaries = summarize(results_of(one_seed), sweep)
    found = comparisons(summaries, sweep)
    assert {c.difference.verdict for c in found} == {"one seed: no interval"}
    assert found[0].difference.describe() == "+0.100 (one seed: the interval cannot be computed)"
    assert "one seed, so no verdict" in conclusion.findings(found, sweep)[0]


def test_one_seed_with_frame_confusions_gets_a_frame_bootstrap():
    one_seed = {recipe: per_seed[:1] for recipe, per_seed in SCORES.items()}
    sweep = dataclasses.replace(SWEEP, seeds=(0,))
    found = comparisons(summarize(results_of(one_seed, with_frames=True), sweep), sweep)
    assert {(c.difference.method, c.difference.frames, c.difference.seeds) for c in found} == {
        ("frames", 20, (0,))
    }
    caveat = "(1 seed; 95% bootstrap over 20 validation frames: seed-to-seed noise not included)"
    ladder = found[0].difference
    assert (found[0].study, found[0].metric) == ("ladder", "mean_dice")
    assert ladder.mean == pytest.approx(0.80 - 0.70, abs=1e-12)
    assert ladder.verdict == "gain" and ladder.describe().endswith(f"gain {caveat}")
    robust = [c for c in found if c.metric == "corrupt_mean_iou"]
    assert [c.candidate.recipe[2] for c in robust] == ["flip", "noise"]
    assert all(c.difference.describe().endswith(caveat) for c in found)
    steps = conclusion.improvements(summarize(results_of(one_seed, with_frames=True), sweep), found, sweep)
    assert steps[-1] == (
        "6 of 6 comparisons rest on one seed: their intervals (bootstrap over validation frames) leave out "
        "seed-to-seed noise, so a gain there may not survive another seed; rerun with 3 or more seeds "
        "before relying on it."
    )


def test_two_seeds_keep_the_seed_interval_and_a_run_without_frames_has_none():
    with_frames = comparisons(summarize(results_of(with_frames=True), SWEEP), SWEEP)
    without = comparisons(summarize(results_of(), SWEEP), SWEEP)
    assert [c.difference for c in with_frames] == [c.difference for c in without]
    assert {c.difference.method for c in with_frames} == {"seeds"}

    one_seed = {recipe: per_seed[:1] for recipe, per_seed in SCORES.items()}
    sweep = dataclasses.replace(SWEEP, seeds=(0,))
    results = [
        dataclasses.replace(r, frame_confusions=None) if r.recipe == ("unet_mini", "ce_dice", "none") else r
        for r in results_of(one_seed, with_frames=True)
    ]
    found = comparisons(summarize(results, sweep), sweep)
    verdicts = {(c.study, c.candidate.recipe[2], c.metric): c.difference.verdict for c in found}
    assert verdicts[("augmentation", "flip", "mean_dice")] == "one seed: no interval"
    assert verdicts[("augmentation", "noise", "corrupt_mean_iou")] == "one seed: no interval"
    assert verdicts[("ladder", "flip", "mean_dice")] == "gain"
