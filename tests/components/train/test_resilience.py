"""Preemption and multi-worker training: a killed run resumes, and two workers stay in lockstep."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.train.core import BACKUP_DIR, TrainConfig, train
from cityseg.components.train.export import weights_sha256

pytestmark = pytest.mark.slow

# What fit's history holds too: the custom multi-worker loop logs the same keys.
HISTORY_KEYS = {"epoch", "loss", "mean_dice", "mean_iou", "val_loss", "val_mean_dice", "val_mean_iou", "lr"}
CITYSEG = [sys.executable, "-c", "from cityseg.cli import main; main()"]


def _wait_for_epochs(history: Path, process: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        if history.exists() and json.loads(history.read_text()).get("epoch"):
            return
        time.sleep(0.05)
    pytest.fail(f"no epoch finished within {timeout_s}s")


def test_killed_run_resumes_and_runs_only_the_remaining_epochs(long_shards, tmp_path):
    out, work = tmp_path / "model", tmp_path / "work"
    args = ["train", "--data", str(long_shards), "--out", str(out), "--epochs", "3", "--batch-size", "2"]
    args += ["--model", "unet_mini", "--loss", "ce", "--no-tflite", "--work-dir", str(work)]
    log = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen([*CITYSEG, *args], stdout=log, stderr=subprocess.STDOUT)
    _wait_for_epochs(out / "history.json", process)
    process.kill()
    process.wait()
    done = json.loads((out / BACKUP_DIR / "worker-0" / "training_metadata.json").read_text())["epoch"]
    assert done in (1, 2)
    run_id = (out / BACKUP_DIR / "mlflow_run_id").read_text()

    config = TrainConfig(
        data=str(long_shards), out=str(out), model="unet_mini", loss="ce", epochs=3, batch_size=2,
        tflite=False, work_dir=str(work),
    )  # fmt: skip
    info = train(config)
    assert info["epochs_run"] == 3 - done
    assert info["history"]["epoch"] == [1, 2, 3]
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2, 3]
    assert info["mlflow_run_id"] == run_id
    assert not (out / BACKUP_DIR).exists()


def test_two_local_workers_end_with_identical_weights(shards, tmp_path):
    out = tmp_path / "model"
    args = ["train", "--workers", "2", "--data", str(shards), "--out", str(out), "--model", "unet_mini"]
    args += ["--epochs", "1"]
    result = CliRunner().invoke(
        main, [*args, "--batch-size", "2", "--no-tflite", "--work-dir", str(tmp_path / "work")]
    )
    assert result.exit_code == 0, result.output
    checksums = []
    for index in (0, 1):
        log = (out / "logs" / f"worker-{index}.log").read_text()
        checksums += re.findall(rf"worker {index} finished; weights sha256 ([0-9a-f]{{64}})", log)
    assert len(checksums) == 2
    assert checksums[0] == checksums[1]
    chief = keras.models.load_model(out / "model.keras", compile=False)
    assert weights_sha256(chief) == checksums[0]
    assert chief.predict(np.zeros((1, 32, 64, 3), np.float32), verbose=0).shape == (1, 32, 64, 8)
    info = json.loads((out / "train_info.json").read_text())
    assert (info["strategy"], info["replicas"], info["epochs_run"]) == ("MultiWorkerMirroredStrategy", 2, 1)
    assert set(json.loads((out / "history.json").read_text())) == HISTORY_KEYS
    assert not (out / BACKUP_DIR).exists()
