"""Four "weeks" of scheduled retraining over one folder that changes between runs (kfp.local, real MLflow).

1. initial data: blessed as v1;
2. a new train city and a new val city: remap and shard run again, the champion is re-scored on
   the new val split and v2 is compared against it;
3. a broken batch (a train city whose labels are all void): the run stops at validation naming the
   city, nothing is registered, @champion stays;
4. the broken city removed, data equal to week 2: training is skipped, remap and shard come from the cache.
"""

import logging
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from cityseg.cli import main
from cityseg.components.source.core import fingerprint
from cityseg.components.synth.config import SynthConfig
from cityseg.components.synth.core import generate

log = logging.getLogger(__name__)

NAME = "cityseg-weeks"
# The smallest run that still trains: 64x128, one epoch of the mini U-Net, one shard per split.
# Training chooses on the select split, held out of train by a hash of each frame's id: at a third,
# one of aachen's 3 frames and one of bochum's go to select (at the recipe's 0.15, none of aachen's).
RUN_ARGS = [
    "--model", "unet_mini", "--epochs", "1", "--batch-size", "4", "--height", "64", "--width", "128",
    "--shards", "1", "--select-fraction", "0.34", "--min-dice", "0", "--min-improvement", "-1",
    "--registered-model", NAME,
]  # fmt: skip
WEEK1 = {"train": ["aachen"], "val": ["frankfurt"], "test": ["berlin"]}
WEEK2 = {"train": ["bochum"], "val": ["lindau"]}
BROKEN = ("train", "bremen")


def _copy_city(pool: Path, data: Path, split: str, city: str) -> None:
    for kind in ("leftImg8bit", "gtFine"):
        shutil.copytree(pool / kind / split / city, data / kind / split / city, copy_function=shutil.copy2)


def _remove_city(data: Path, split: str, city: str) -> None:
    for kind in ("leftImg8bit", "gtFine"):
        shutil.rmtree(data / kind / split / city)


def _run(data: Path, work: Path, week: int, times: dict) -> str:
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--work-dir", str(work), *RUN_ARGS])
    times[week] = time.perf_counter() - start
    log.info("week %d: %.1f s", week, times[week])
    return result


def _row(output: str, key: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith(key)]
    return line[len(key) :].strip()


@pytest.mark.slow
def test_four_weeks_of_retraining(tmp_path, mlflow_uri):
    # A pool of synthetic cities at 64x128 (3 frames each), from which the weeks take whole cities.
    pool = tmp_path / "pool"
    generate(SynthConfig(out=str(pool), cities=18, frames_per_city=3, height=64, width=128, workers=1))
    data, work, times = tmp_path / "data", tmp_path / "work", {}
    for split, cities in WEEK1.items():
        for city in cities:
            _copy_city(pool, data, split, city)
    client = MlflowClient()

    week1 = _run(data, work, 1, times)
    assert week1.exit_code == 0, week1.output
    assert f"BLESSED: registered {NAME} version 1" in week1.output
    assert _row(week1.output, "splits") == "train 2, select 1, val 3, test 3"
    assert _row(week1.output, "fingerprint") == fingerprint(str(data)).digest

    for split, cities in WEEK2.items():
        for city in cities:
            _copy_city(pool, data, split, city)
    week2 = _run(data, work, 2, times)
    assert week2.exit_code == 0, week2.output
    assert _row(week2.output, "splits") == "train 4, select 2, val 6, test 3"
    cached = _row(week2.output, "from cache")
    assert "remap" not in cached and "shard" not in cached
    assert f"BLESSED: registered {NAME} version 2" in week2.output
    v2 = client.get_model_version(NAME, "2").tags
    assert v2["compared_with_version"] == "1"  # the champion, re-scored on week 2's val split
    assert v2["source_fingerprint"] == fingerprint(str(data)).digest
    week2_fingerprint = v2["source_fingerprint"]

    _copy_city(pool, data, *BROKEN)
    for label in (data / "gtFine" / BROKEN[0] / BROKEN[1]).glob("*_gtFine_labelIds.png"):
        cv2.imwrite(str(label), np.zeros((64, 128), np.uint8))
    week3 = _run(data, work, 3, times)
    assert week3.exit_code != 0
    assert "train/bremen: 3 of 3 frames are more than 90.0% void" in week3.output
    assert [v.version for v in client.search_model_versions(f"name = '{NAME}'")] == ["2", "1"]
    assert client.get_model_version_by_alias(NAME, "champion").version == "2"

    _remove_city(data, *BROKEN)
    assert fingerprint(str(data)).digest == week2_fingerprint
    week4 = _run(data, work, 4, times)
    assert week4.exit_code == 0, week4.output
    assert "data unchanged since champion v2: nothing to retrain" in week4.output
    assert {"remap", "shard"} <= set(_row(week4.output, "from cache").split(", "))
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 2

    # The champion explains itself: its run, its data and what changed since the champion before it.
    assert v2["pipeline_name"] == "cityseg-training" and v2["data_statistics"].startswith("runs:/")
    lineage = CliRunner().invoke(main, ["lineage", f"models:/{NAME}@champion"])
    assert lineage.exit_code == 0, lineage.output
    assert f"{NAME} v2 (@champion)" in lineage.output
    assert f"fingerprint {week2_fingerprint}" in lineage.output
    assert "frames train 4, select 2, val 6, test 3" in lineage.output
    changes = "select +1 (bochum +1); train +2 (bochum +2); val +3 (lindau +3)"
    assert f"vs champion v1's data: {changes}" in lineage.output
    log.info("wall time per week: %s", {week: round(seconds, 1) for week, seconds in times.items()})
