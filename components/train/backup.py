"""`OUT/backup/`: everything a rerun with the same `out` resumes from, stage by stage.

Each stage is recorded before the next one starts, so a run killed at any point resumes where it
was and never trains or logs an epoch twice:

1. training: a checkpoint after every epoch (BackupAndRestore in `worker-<i>/`, the multi-worker
   loop's CheckpointManager in `chief/`), `progress.json` (history and epoch times, across
   resumes) and `mlflow_run_id`;
2. `trained/`: the final float32 weights and the training summary, once training has ended;
3. `exported`: the model folder is complete;
4. `logged`: the model, its files and the final metrics are in the MLflow run.

The folder is removed only once the MLflow run has ended.
"""

import json
import logging
import shutil
from pathlib import Path

from cityseg.components import storage

log = logging.getLogger(__name__)

BACKUP_DIR = "backup"
TRAINED = "trained"
WEIGHTS = "model.weights.h5"
SUMMARY = "summary.json"


class Backup:
    """The backup folder of one model folder `out`."""

    def __init__(self, out: str | Path):
        self.root = Path(out) / BACKUP_DIR

    @property
    def progress_path(self) -> Path:
        """History and epoch times of the finished epochs, rewritten after each one."""
        return self.root / "progress.json"

    @property
    def run_id_path(self) -> Path:
        return self.root / "mlflow_run_id"

    def run_id(self) -> str | None:
        """The MLflow run of the interrupted training, if any."""
        return self.run_id_path.read_text().strip() if self.run_id_path.exists() else None

    def save_run_id(self, run_id: str) -> None:
        """Remember the MLflow run, so that a rerun continues it."""
        storage.write_text(str(self.run_id_path), run_id)

    def save_trained(self, model, summary: dict) -> None:
        """Record the end of training: `model`'s weights and `summary`, appearing together or not at all."""
        staging = self.root / f".{TRAINED}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        model.save_weights(staging / WEIGHTS)
        (staging / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        staging.replace(self.root / TRAINED)

    def load_trained(self, model) -> dict:
        """Load the trained weights into `model` and return the training summary."""
        folder = self.root / TRAINED
        model.load_weights(folder / WEIGHTS)
        log.info("training had ended in an earlier run: %s", folder)
        return json.loads((folder / SUMMARY).read_text())

    def mark(self, stage: str) -> None:
        """Record that `stage` (exported, logged) is done."""
        storage.write_text(str(self.root / stage), "")

    def done(self, stage: str) -> bool:
        """True when `stage` (trained, exported, logged) was recorded."""
        return (self.root / stage).exists()

    def remove(self) -> None:
        """Drop the backup: the run it resumes has ended."""
        shutil.rmtree(self.root, ignore_errors=True)
