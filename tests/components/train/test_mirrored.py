"""`fit` under MirroredStrategy (one node, several devices) takes the step of one replica."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
# The default loss holds the cross-entropy and Dice sums, focal the other per-pixel sum; Adam hides
# a gradient N times too large, plain SGD does not; unet's batch norm must see the global batch.
CASES = ["unet_mini:ce_dice:adam", "unet_mini:focal:adam", "unet_mini:ce_dice:sgd", "unet:ce_dice:sgd"]
# unet with batch norm left per replica: the check above must tell it apart from one replica.
CONTROL = "unet:ce_dice:sgd:local_bn"
# The same numbers, not twice them: losses to this relative tolerance, weights to this absolute one.
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-4


def test_two_replicas_give_the_loss_and_weights_of_one_on_the_same_global_batch():
    completed = subprocess.run(
        [sys.executable, "-m", "tests.components.train.mirrored_step", *CASES, CONTROL],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    *results, control = json.loads(completed.stdout.strip().splitlines()[-1])
    assert [result["case"] for result in results] == CASES
    for result in results:
        assert result["replicas"] == 2
        # Training loss, then validation loss.
        assert result["mirrored"] == pytest.approx(result["one"], rel=LOSS_RTOL), result
        assert result["max_weight_diff"] < WEIGHT_ATOL, result
    # Per-replica batch norm normalises each half with its own statistics: the step differs.
    assert control["case"] == CONTROL
    assert control["mirrored"][0] != pytest.approx(control["one"][0], rel=LOSS_RTOL), control
    assert control["max_weight_diff"] > WEIGHT_ATOL, control
