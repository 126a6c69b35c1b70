"""What one training run is made of: its inputs, its compiled model and its callbacks.

As in TF Model Garden's tasks: `build_inputs`, `build_model` (with the loss and the metrics), the
callbacks `fit` and the multi-worker loop share, and the scores that loop keeps (`SEGMENTATION_SCORES`).
"""

from pathlib import Path

import keras
import tensorflow as tf

from cityseg.components import metrics, splits
from cityseg.components.dataset import AugmentConfig, make_dataset
from cityseg.components.train.backup import Backup
from cityseg.components.train.config import AUGMENTATIONS, TrainConfig
from cityseg.components.train.confusion import ConfusionMatrixScore, confusion_counts
from cityseg.components.train.distribute import Task
from cityseg.components.train.losses import build_loss, class_weights
from cityseg.components.train.models import build_model as build_network
from cityseg.components.train.multi_worker_loop import EpochScores
from cityseg.components.train.progress import EpochRecorder

# Score that early stopping, the LR plateau and the best weights watch: the selection split's, never
# val's, so that the val score the pipeline blesses a model on is of data no choice has seen.
MONITOR = f"{splits.SELECT}_mean_dice"


def _dice_and_iou(matrix) -> dict:
    scores = metrics.scores(matrix)
    return {name: scores[name] for name in ("mean_dice", "mean_iou")}


# What the multi-worker loop scores each epoch: Dice and IoU from the split's confusion matrix, as the
# `ConfusionMatrixScore` metrics that `fit` keeps.
SEGMENTATION_SCORES = EpochScores(counts=confusion_counts, scores=_dice_and_iou)


class SelectionScores(keras.callbacks.Callback):
    """Name the scores of `fit`'s validation data `select_*`: they are the selection split's.

    Keras names them `val_*`. It hands one logs dict to every callback in turn, so running first
    renames them for early stopping, the plateau, history.json and MLflow alike.
    """

    def on_epoch_end(self, epoch, logs=None):
        for key in [key for key in logs or {} if key.startswith("val_")]:
            logs[f"{splits.SELECT}_{key.removeprefix('val_')}"] = logs.pop(key)


def build_inputs(config: TrainConfig, size: tuple[int, int]) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Train and selection batches of `config.batch_size`: the global batch, whatever the replicas.

    A distribution strategy splits each global batch between its replicas, so the optimizer takes
    the same steps on the same batches with 1 replica or N.
    """
    augment = AugmentConfig(**{name: name in config.augment for name in AUGMENTATIONS}, seed=config.seed)
    train_ds = make_dataset(
        config.data,
        splits.TRAIN,
        config.batch_size,
        augment=augment,
        shuffle=True,
        seed=config.seed,
        size=size,
    )
    select_ds = make_dataset(config.data, splits.SELECT, config.batch_size, size=size)
    # Every worker reads all shards and keeps its slice of each global batch: with few shard files,
    # file-level sharding would give workers unequal step counts and stall the collectives.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return train_ds.with_options(options), select_ds.with_options(options)


def _cpu_has_bfloat16() -> bool:
    # Native bfloat16 dot products (AVX512-BF16, AMX); elsewhere bfloat16 is emulated and slower.
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def set_precision(mixed: bool | None) -> str:
    """Set and return Keras's dtype policy: mixed precision on a GPU (float16) or a bfloat16 CPU.

    `mixed` None chooses: on where the hardware computes the low precision natively; False is
    float32 everywhere. Weights and the logits stay float32 either way, and the export is float32.
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if mixed is None:
        mixed = gpu or _cpu_has_bfloat16()
    policy = ("mixed_float16" if gpu else "mixed_bfloat16") if mixed else "float32"
    keras.mixed_precision.set_dtype_policy(policy)
    return policy


def choose_jit_compile(strategy) -> bool:
    """Whether `fit` compiles its step with XLA: on a GPU with one replica, never on a CPU.

    On a CPU TensorFlow's own kernels (oneDNN) beat XLA's: `make bench` times unet at the recipe's
    size with and without XLA, in float32 and bfloat16, and Keras on JAX (XLA too) beside them. On a
    GPU this is what Keras's `jit_compile="auto"` picks, which leaves XLA off under tf.distribute.
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    return gpu and strategy.num_replicas_in_sync == 1


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The initial rate, or the cosine schedule over every step of the run."""
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=steps_per_epoch * config.epochs, alpha=0.05
        )
    return config.learning_rate


def _synchronize_batch_norm(model: keras.Model) -> None:
    """Batch norm over the global batch, not each replica's slice of it, so N replicas train as one."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
        elif isinstance(layer, keras.Model):
            _synchronize_batch_norm(layer)


def build_model(
    config: TrainConfig, strategy, size: tuple[int, int], steps_per_epoch: int, category_pixels: list[int]
) -> keras.Model:
    """The model, compiled with its optimizer, loss and streaming scores, under `strategy`."""
    weights = class_weights(category_pixels, config.class_weighting, config.ignore_void)
    with strategy.scope():
        model = build_network(config.model, *size, weights=config.weights)
        if strategy.num_replicas_in_sync > 1:
            _synchronize_batch_norm(model)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch)),
            loss=build_loss(config.loss, weights, config.ignore_void),
            metrics=[ConfusionMatrixScore("mean_dice"), ConfusionMatrixScore("mean_iou")],
            jit_compile=choose_jit_compile(strategy),
        )
    return model


def build_callbacks(
    config: TrainConfig, task: Task, out: Path, steps_per_epoch: int, backup_and_restore: bool
) -> tuple[list[keras.callbacks.Callback], EpochRecorder]:
    """Keras callbacks in the order they must run: `select_*` naming, then backup, then the rest.

    Every later callback reads the selection scores as `select_*`, and a logged epoch is a saved one.
    """
    backup = Backup(out)
    callbacks: list[keras.callbacks.Callback] = [SelectionScores()]
    if backup_and_restore:
        # Kept after training: only the trained snapshot (`Backup.save_trained`) may replace it.
        callbacks.append(
            keras.callbacks.BackupAndRestore(
                str(backup.root / f"worker-{task.index}"), delete_checkpoint=False
            )
        )
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=MONITOR,
                mode="max",
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    if config.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=MONITOR, mode="max", factor=0.5, patience=2)
        )
    recorder = EpochRecorder(
        backup.progress_path if task.is_chief else None,
        out / "history.json" if task.is_chief else None,
        steps_per_epoch,
        show_progress=task.is_chief,
        log_to_mlflow=task.is_chief,
    )
    callbacks.append(recorder)
    return callbacks, recorder
