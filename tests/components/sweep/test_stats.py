import numpy as np
import pytest

from cityseg.components.evaluate.corruptions import robustness_scores
from cityseg.components.evaluate.frame_matrices import CLEAN, corruption_of
from cityseg.components.metrics import scores
from cityseg.components.sweep.stats import (
    FRAMES,
    GAIN,
    LOSS,
    NOISE,
    ONE_SEED,
    SEEDS,
    PairedDifference,
    category_means,
    frame_bootstrap,
    interval_methods,
    mean_std,
    paired_difference,
)
from tests.components.sweep.builders import frame_confusions, frame_stack


def test_mean_std_uses_the_sample_standard_deviation():
    assert mean_std([0.5, 0.7, 0.9]) == (pytest.approx(0.7), pytest.approx(0.2))
    assert mean_std([0.4]) == (0.4, None)
    assert mean_std([]) == (None, None)


def test_paired_interval_on_hand_made_numbers():
    # Differences per seed: 0.02, 0.04, 0.06 -> mean 0.04, std 0.02, t(0.975, 2) = 4.302653;
    # half width 4.302653 * 0.02 / sqrt(3) = 0.049683.
    candidate = {0: 0.52, 1: 0.64, 2: 0.76}
    baseline = {0: 0.50, 1: 0.60, 2: 0.70}
    difference = paired_difference(candidate, baseline)
    assert difference.seeds == (0, 1, 2)
    assert difference.mean == pytest.approx(0.04)
    assert difference.std == pytest.approx(0.02)
    assert difference.low == pytest.approx(0.04 - 0.0496829, abs=1e-6)
    assert difference.high == pytest.approx(0.04 + 0.0496829, abs=1e-6)
    assert difference.verdict == NOISE
    assert difference.describe() == "+0.040 [-0.010, +0.090], within noise (3 seeds)"


def test_a_consistent_difference_is_a_gain_or_a_loss():
    # Differences 0.10, 0.11 -> mean 0.105, std 0.0070711, t(0.975, 1) = 12.706205;
    # half width 12.706205 * 0.0070711 / sqrt(2) = 0.0635310.
    gain = paired_difference({0: 0.60, 1: 0.71}, {0: 0.50, 1: 0.60})
    assert gain.low == pytest.approx(0.105 - 0.0635310, abs=1e-6)
    assert gain.high == pytest.approx(0.105 + 0.0635310, abs=1e-6)
    assert gain.verdict == GAIN
    loss = paired_difference({0: 0.50, 1: 0.60}, {0: 0.60, 1: 0.71})
    assert loss.verdict == LOSS


def test_only_shared_seeds_pair_and_one_seed_has_no_interval():
    difference = paired_difference({0: 0.7, 5: 0.9}, {0: 0.6, 1: 0.2})
    assert difference.seeds == (0,)
    assert difference.mean == pytest.approx(0.1)
    assert (difference.std, difference.low, difference.high) == (None, None, None)
    assert difference.verdict == ONE_SEED
    assert difference.describe() == "+0.100 (one seed: the interval cannot be computed)"
    assert paired_difference({0: 0.7}, {1: 0.6}) is None


def test_a_frame_bootstrap_describes_itself_and_the_noise_it_leaves_out():
    difference = PairedDifference((0,), 0.012, 0.008, -0.004, 0.028, FRAMES, 50)
    assert difference.verdict == NOISE
    assert difference.describe() == (
        "+0.012 [-0.004, +0.028], within noise "
        "(1 seed; 95% bootstrap over 50 validation frames: seed-to-seed noise not included)"
    )
    assert PairedDifference((0, 1), 0.1, 0.01, 0.05, 0.15).method == SEEDS


def test_batched_category_means_equal_metrics_scores():
    rng = np.random.default_rng(7)
    matrices = rng.integers(0, 50, (200, 8, 8))
    matrices[::3, 5, :] = 0  # a category absent from the ground truth ...
    matrices[::6, :, 5] = 0  # ... and, every other time, from the prediction too: no score
    matrices[7, 1:, :] = 0  # only void pixels: no category has a score
    batched = category_means(matrices)
    for index, matrix in enumerate(matrices):
        expected = scores(matrix)
        for name in ("mean_iou", "mean_dice"):
            value = batched[name][index]
            assert (np.isnan(value) and expected[name] is None) or value == pytest.approx(
                expected[name], abs=1e-15
            )
    assert np.isnan(batched["mean_dice"][7])


def test_identical_configurations_differ_by_exactly_zero():
    stacks = {CLEAN: frame_stack([60, 70, 80, 90, 75])}
    difference = frame_bootstrap(stacks, stacks, "mean_dice", seed=3)
    assert (difference.mean, difference.low, difference.high) == (0.0, 0.0, 0.0)
    assert (difference.seeds, difference.method, difference.frames, difference.verdict) == (
        (3,),
        FRAMES,
        5,
        NOISE,
    )


def test_a_candidate_better_on_every_frame_is_a_gain_by_the_all_frame_difference():
    # Dice of the sums: candidate 90 right of 100 on every frame, baseline (60 + 70 + 80 + 70) / 4 = 70.
    candidate = {CLEAN: frame_stack([90, 90, 90, 90])}
    baseline = {CLEAN: frame_stack([60, 70, 80, 70])}
    gain = frame_bootstrap(candidate, baseline, "mean_dice", seed=0)
    assert gain.mean == pytest.approx(0.2, abs=1e-12)
    assert 0 < gain.low <= gain.mean <= gain.high <= 0.3
    assert gain.verdict == GAIN
    loss = frame_bootstrap(baseline, candidate, "mean_dice", seed=0)
    assert (loss.mean, loss.low, loss.high) == (-gain.mean, -gain.high, -gain.low)
    assert loss.verdict == LOSS


def test_the_bootstrap_is_deterministic_and_recomputes_scores_from_resampled_sums():
    candidate = {CLEAN: frame_stack([70, 95, 60, 85, 80, 75])}
    baseline = {CLEAN: frame_stack([72, 80, 66, 81, 79, 70])}
    first = frame_bootstrap(candidate, baseline, "mean_dice", seed=0, resamples=40, rng_seed=11)
    assert frame_bootstrap(candidate, baseline, "mean_dice", seed=0, resamples=40, rng_seed=11) == first
    assert frame_bootstrap(candidate, baseline, "mean_dice", seed=0, resamples=40, rng_seed=12) != first
    # The same draws, one resample at a time, through metrics.scores.
    weights = np.random.default_rng(11).multinomial(6, np.full(6, 1 / 6), size=40)
    differences = [
        scores(np.einsum("f,fij->ij", w, candidate[CLEAN]))["mean_dice"]
        - scores(np.einsum("f,fij->ij", w, baseline[CLEAN]))["mean_dice"]
        for w in weights
    ]
    assert first.low == pytest.approx(np.percentile(differences, 2.5), abs=1e-12)
    assert first.high == pytest.approx(np.percentile(differences, 97.5), abs=1e-12)
    assert first.std == pytest.approx(np.std(differences, ddof=1), abs=1e-12)
    assert first.mean == pytest.approx((465 - 448) / 600, abs=1e-12)


def test_corrupt_mean_iou_uses_the_robustness_formula():
    candidate, baseline = frame_confusions("a", 0.7, 0.40), frame_confusions("b", 0.7, 0.30)

    def corrupt_mean_iou(stacks):
        sums = {
            None if key == CLEAN else corruption_of(key): stack.sum(axis=0) for key, stack in stacks.items()
        }
        return robustness_scores(sums)["corrupt_mean_iou"]

    difference = frame_bootstrap(candidate, baseline, "corrupt_mean_iou", seed=0)
    assert difference.mean == pytest.approx(
        corrupt_mean_iou(candidate) - corrupt_mean_iou(baseline), abs=1e-12
    )
    # right = 57 of 100 (IoU 57/143) against 46 (IoU 46/154) on every setting.
    assert difference.mean == pytest.approx(57 / 143 - 46 / 154, abs=1e-12)
    assert difference.verdict == GAIN


def test_frame_bootstrap_refuses_what_it_cannot_pair():
    five, four = {CLEAN: frame_stack([70] * 5)}, {CLEAN: frame_stack([70] * 4)}
    with pytest.raises(ValueError, match="must hold the same keys and frame counts"):
        frame_bootstrap(five, four, "mean_dice", seed=0)
    with pytest.raises(
        ValueError, match="statistic: unknown 'pixel_accuracy'; choose from mean_dice, corrupt_mean_iou"
    ):
        frame_bootstrap(five, five, "pixel_accuracy", seed=0)
    with pytest.raises(ValueError, match="no corrupted frame confusions"):
        frame_bootstrap(five, five, "corrupt_mean_iou", seed=0)
    empty = {CLEAN: np.zeros((3, 8, 8), np.int64)}
    assert frame_bootstrap(empty, empty, "mean_dice", seed=0) is None


def test_interval_methods_name_what_was_used():
    seeds = paired_difference({0: 0.6, 1: 0.7}, {0: 0.5, 1: 0.55})
    frames = PairedDifference((0,), 0.1, 0.01, 0.05, 0.15, FRAMES, 50)
    alone = paired_difference({0: 0.6}, {0: 0.5})
    assert interval_methods([seeds, None]) == "Student t on the per-seed differences (2 shared seeds)"
    assert interval_methods([frames, alone]) == (
        "with a single seed, a paired bootstrap over the 50 validation frames (2000 resamples, the same "
        "frames for both configurations), which covers frame-to-frame variation only, not seed-to-seed "
        "noise; none for 1 one-seed comparisons without per-frame scores"
    )
    assert interval_methods([]) == "no comparison was made"
