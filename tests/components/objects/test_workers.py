"""`cityseg objects train --workers 2`: two local workers, MultiWorkerMirroredStrategy, one model folder."""

import json
import math

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from cityseg.cli import main

pytestmark = pytest.mark.slow
# What `fit` logs on one worker: the multi-worker loop logs the same keys.
HISTORY_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_two_workers_write_one_model_folder_and_one_mlflow_run(crops, tmp_path, mlflow_uri):
    out = tmp_path / "model"
    argv = ["objects", "train", "--data", str(crops), "--out", str(out), "--workers", "2", "--epochs", "2"]
    argv += ["--batch-size", "8", "--width", "4", "--work-dir", str(tmp_path / "work")]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "(MultiWorkerMirroredStrategy x2)" in result.output

    # The chief wrote the model folder; the other worker only trained beside it.
    assert sorted(path.name for path in out.iterdir()) == [
        "history.json", "logs", "model.keras", "train_info.json"
    ]  # fmt: skip
    assert sorted(path.name for path in (out / "logs").iterdir()) == ["worker-0.log", "worker-1.log"]
    info = json.loads((out / "train_info.json").read_text())
    assert (info["strategy"], info["replicas"], info["epochs"]) == ("MultiWorkerMirroredStrategy", 2, 2)
    history = json.loads((out / "history.json").read_text())
    assert set(history) == HISTORY_KEYS
    assert all(len(values) == 2 and all(map(math.isfinite, values)) for values in history.values())
    assert info["val_accuracy"] == history["val_accuracy"][-1]

    model = keras.models.load_model(out / "model.keras", compile=False)
    assert model.predict(np.zeros((1, 16, 16, 3), np.float32), verbose=0).shape == (1, 8)
    run = MlflowClient(mlflow_uri).get_run(info["mlflow_run_id"])
    assert (run.data.params["strategy"], run.data.params["replicas"]) == ("MultiWorkerMirroredStrategy", "2")
    assert run.data.metrics["val_accuracy"] == pytest.approx(history["val_accuracy"][-1])


def test_a_global_batch_smaller_than_the_replicas_is_refused(crops, tmp_path, mlflow_uri):
    out = tmp_path / "model"
    argv = ["objects", "train", "--data", str(crops), "--out", str(out), "--workers", "2"]
    result = CliRunner().invoke(main, [*argv, "--batch-size", "1", "--epochs", "1", "--width", "4"])
    assert result.exit_code == 1
    assert "batch_size 1 is the global batch: give each of 2 replicas one" in result.output
