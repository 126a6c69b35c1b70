"""Per-epoch bookkeeping during fit: tqdm progress, history.json, MLflow metrics, and the curves."""

import json
import logging
import time
from pathlib import Path

import keras
from tqdm import tqdm

from cityseg.components import storage, tracking

log = logging.getLogger(__name__)


class EpochRecorder(keras.callbacks.Callback):
    """Records every epoch's logs, learning rate and seconds; writes them out and logs them to MLflow.

    Progress survives a restart: the epochs of a killed run are read back from `progress_path` and
    kept up to the epoch its checkpoint resumes after, so history and times span every resume.
    """

    def __init__(
        self,
        progress_path: Path | None,
        history_path: Path | None,
        steps_per_epoch: int,
        show_progress: bool,
        log_to_mlflow: bool = False,
    ):
        super().__init__()
        self.progress_path = progress_path
        self.history_path = history_path
        self.steps_per_epoch = steps_per_epoch
        self.show_progress = show_progress
        self.log_to_mlflow = log_to_mlflow
        self.history: dict[str, list] = {}
        # Wall seconds of each finished epoch (training and validation), and of its training part.
        self.epoch_seconds: list[float] = []
        self.train_seconds: list[float] = []
        self._bar = None
        self._epoch_start = self._train_end = 0.0
        self._resume_checked = False

    @property
    def epochs_run(self) -> int:
        """Finished epochs, across resumes."""
        return len(self.epoch_seconds)

    def summary(self) -> dict:
        """History and seconds of every finished epoch, as `progress_path` holds them."""
        return {
            "history": self.history,
            "epoch_seconds": self.epoch_seconds,
            "train_seconds": self.train_seconds,
        }

    def on_train_begin(self, logs=None):
        if self.progress_path is not None and self.progress_path.exists():
            saved = json.loads(self.progress_path.read_text())
            self.history = saved["history"]
            self.epoch_seconds, self.train_seconds = saved["epoch_seconds"], saved["train_seconds"]

    def on_epoch_begin(self, epoch, logs=None):
        if not self._resume_checked:
            # Keep only the epochs that the restored checkpoint contains.
            self.history = {key: values[:epoch] for key, values in self.history.items()}
            self.epoch_seconds, self.train_seconds = self.epoch_seconds[:epoch], self.train_seconds[:epoch]
            self._resume_checked = True
            if epoch:
                log.info("resuming after epoch %d", epoch)
        self._epoch_start = time.perf_counter()
        self._train_end = 0.0
        if self.show_progress:
            self._bar = tqdm(
                total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.params['epochs']}", unit="batch"
            )

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_test_begin(self, logs=None):
        if not self._train_end:
            self._train_end = time.perf_counter()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        self.train_seconds.append(self._train_end - self._epoch_start)
        values = {key: float(value) for key, value in (logs or {}).items()}
        values["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.history.setdefault("epoch", []).append(epoch + 1)
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        summary = ", ".join(f"{key} {value:.4f}" for key, value in sorted(values.items()))
        log.info("epoch %d: %s", epoch + 1, summary)
        if self.progress_path is not None:
            storage.write_text(str(self.progress_path), json.dumps(self.summary()) + "\n")
        if self.history_path is not None:
            storage.write_text(str(self.history_path), json.dumps(self.history, indent=2) + "\n")
        if self.log_to_mlflow:
            tracking.log_metrics(values, step=epoch + 1)


def plot_curves(history: dict[str, list], path: Path) -> None:
    """Loss, train and selection-split scores and learning rate per epoch as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = history.get("epoch", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = (
        ("loss", ("loss", "select_loss")),
        ("scores (streaming, whole split)", ("mean_dice", "select_mean_dice", "mean_iou", "select_mean_iou")),
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
