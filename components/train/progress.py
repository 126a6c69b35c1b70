"""Per-epoch bookkeeping during fit: tqdm progress, history.json, MLflow metrics, and the curves."""

import json
import logging
import time
from pathlib import Path

import keras
from tqdm import tqdm

from cityseg.components import storage

log = logging.getLogger(__name__)


class EpochRecorder(keras.callbacks.Callback):
    """Records every epoch's logs and learning rate, writes history.json, and logs them to MLflow.

    History survives a restart: entries from a killed run are read back from `history_path` and
    kept for the epochs BackupAndRestore resumes after.
    """

    def __init__(self, history_path: Path | None, steps_per_epoch: int, show_progress: bool):
        super().__init__()
        self.history_path = history_path
        self.steps_per_epoch = steps_per_epoch
        self.show_progress = show_progress
        self.run = None
        self.history: dict[str, list] = {}
        self.epochs_run = 0
        self.train_seconds = 0.0
        self._bar = None
        self._epoch_start = 0.0
        self._in_train_phase = False

    def on_train_begin(self, logs=None):
        self.history = {}
        if self.history_path is not None and self.history_path.exists():
            self.history = json.loads(self.history_path.read_text())

    def on_epoch_begin(self, epoch, logs=None):
        if self.epochs_run == 0:
            # Keep only the epochs that the restored checkpoint contains.
            self.history = {key: values[:epoch] for key, values in self.history.items()}
            if epoch:
                log.info("resuming after epoch %d", epoch)
        self._epoch_start = time.perf_counter()
        self._in_train_phase = True
        if self.show_progress:
            self._bar = tqdm(
                total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.params['epochs']}", unit="batch"
            )

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_test_begin(self, logs=None):
        if self._in_train_phase:
            self.train_seconds += time.perf_counter() - self._epoch_start
            self._in_train_phase = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch_end(self, epoch, logs=None):
        if self._in_train_phase:
            self.on_test_begin()
        self.epochs_run += 1
        values = {key: float(value) for key, value in (logs or {}).items()}
        values["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.history.setdefault("epoch", []).append(epoch + 1)
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        summary = ", ".join(f"{key} {value:.4f}" for key, value in sorted(values.items()))
        log.info("epoch %d: %s", epoch + 1, summary)
        if self.history_path is not None:
            storage.write_text(str(self.history_path), json.dumps(self.history, indent=2) + "\n")
        if self.run is not None:
            import mlflow

            mlflow.log_metrics(values, step=epoch + 1)


def plot_curves(history: dict[str, list], path: Path) -> None:
    """Loss, validation scores and learning rate per epoch as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = history.get("epoch", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = (
        ("loss", ("loss", "val_loss")),
        ("scores (streaming, whole split)", ("mean_dice", "val_mean_dice", "mean_iou", "val_mean_iou")),
        ("learning rate", ("lr",)),
    )
    for axis, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            if key in history:
                axis.plot(epochs, history[key], marker="o", label=key)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
