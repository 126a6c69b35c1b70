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


def test_two_replicas_give_the_loss_and_weights_of_one_on_the_same_global_batch():
    completed = subprocess.run(
        [sys.executable, "-m", "tests.components.train.mirrored_step", *CASES],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert [result["case"] for result in results] == CASES
    for result in results:
        assert result["replicas"] == 2
        # Training loss, then validation loss: the same numbers, not twice them.
        assert result["mirrored"] == pytest.approx(result["one"], rel=1e-5), result
        assert result["max_weight_diff"] < 1e-4, result
