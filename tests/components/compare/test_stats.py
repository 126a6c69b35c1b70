import pytest

from cityseg.components.compare.stats import GAIN, LOSS, NOISE, ONE_SEED, mean_std, paired_difference


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
