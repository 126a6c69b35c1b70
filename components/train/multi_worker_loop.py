"""A custom training loop for MultiWorkerMirroredStrategy, where Keras 3.15 `fit()` fails.

keras-team/keras#20585: under MultiWorkerMirroredStrategy on TF 2.21, `fit()` first reduces the first
distributed batch eagerly to build the model, then MEAN-reduces scalar metrics over axis 0; both
fail. This loop does what `fit()` does for one compiled model (same loss, optimizer, callbacks) with
`strategy.run`, and takes the place of BackupAndRestore with a `tf.train.CheckpointManager`. What it
scores each epoch is the trainer's (`EpochScores`): Dice and IoU for segmentation, accuracy for the
object classifier.
"""

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochScores:
    """What the loop counts on each batch, inside the distributed step, and a split's scores from the sums.

    Attributes:
        counts: (labels, logits) -> an integer tensor of counts, summed over replicas and batches.
        scores: the split's summed counts (numpy) -> {score name: value}; a None value is left out.
    """

    counts: Callable
    scores: Callable[[np.ndarray], dict]


def _steps(model: keras.Model, strategy: tf.distribute.Strategy, counts: Callable):
    """Distributed train and validation steps: each returns the global batch's loss, size and counts.

    A batch is (inputs, labels) or (inputs, labels, sample weights), as `fit` takes it.
    """

    def train_replica(images, labels, weights=None):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            # Each replica's share of the global batch's loss: their sum is the loss (cityseg.losses,
            # and Keras's own losses, which divide by the replicas under a strategy).
            loss = model.loss(labels, logits, sample_weight=weights)
            scaled = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss, tf.shape(images)[0], counts(labels, logits)

    def val_replica(images, labels, weights=None):
        logits = model(images, training=False)
        return model.loss(labels, logits, sample_weight=weights), tf.shape(images)[0], counts(labels, logits)

    def distributed(replica_fn):
        @tf.function
        def step(batch):
            per_replica = strategy.run(replica_fn, args=batch)
            return tuple(
                strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica
            )

        return step

    return distributed(train_replica), distributed(val_replica)


def _run_epoch(step, dataset, scores: EpochScores, callbacks=None) -> dict[str, float]:
    """One pass over `dataset`: the loss averaged over examples, as `fit` does, and the split's scores."""
    weighted, examples, total = 0.0, 0, 0
    for batch, data in enumerate(dataset):
        loss, size, counts = step(data)
        weighted += float(loss) * int(size)
        examples += int(size)
        total = total + counts.numpy().astype(np.int64)
        if callbacks is not None:
            callbacks.on_train_batch_end(batch, {"loss": float(loss)})
    values = {"loss": weighted / max(examples, 1)}
    if examples:
        values.update({name: value for name, value in scores.scores(total).items() if value is not None})
    return values


def _checkpoints(model: keras.Model, epoch: tf.Variable, checkpoint_dir: Path | None, is_chief: bool):
    """(the manager that saves each epoch, the folder to delete afterwards); (None, None) without a folder.

    Every worker restores the chief's latest checkpoint. Saving is collective: the chief writes to
    `checkpoint_dir`, the other workers to a temporary folder.
    """
    if checkpoint_dir is None:
        return None, None
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    if latest is not None:
        checkpoint.restore(latest).assert_existing_objects_matched()
        log.info("restored %s", latest)
    save_dir = str(checkpoint_dir) if is_chief else tempfile.mkdtemp(prefix="cityseg-ckpt-")
    manager = tf.train.CheckpointManager(checkpoint, save_dir, max_to_keep=1)
    return manager, None if is_chief else save_dir


def fit_multi_worker(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    *,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
    scores: EpochScores,
    checkpoint_dir: Path | None,
    is_chief: bool,
) -> None:
    """Train the compiled `model` for `epochs` under `strategy`, resuming from `checkpoint_dir`.

    With a `checkpoint_dir` every worker restores the chief's latest checkpoint (model, optimizer,
    finished epochs), so a restarted run trains only the remaining epochs, and each epoch is saved
    there; with None nothing is saved, and a restarted run starts over.
    """
    with strategy.scope():
        # Optimizer slots must be created here, as mirrored variables, not on the first step.
        model.optimizer.build(model.trainable_variables)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    manager, scratch = _checkpoints(model, epoch, checkpoint_dir, is_chief)
    train_step, val_step = _steps(model, strategy, scores.counts)
    train_dist = strategy.experimental_distribute_dataset(train_ds)
    val_dist = strategy.experimental_distribute_dataset(val_ds)
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs, verbose=0)
    model.stop_training = False
    try:
        callback_list.on_train_begin()
        for current in range(int(epoch.numpy()), epochs):
            callback_list.on_epoch_begin(current)
            logs = _run_epoch(train_step, train_dist, scores, callback_list)
            callback_list.on_test_begin()
            val_logs = _run_epoch(val_step, val_dist, scores)
            logs.update({f"val_{key}": value for key, value in val_logs.items()})
            epoch.assign(current + 1)
            # Saved before it is logged, as BackupAndRestore runs first in fit: a logged epoch is a saved one.
            if manager is not None:
                manager.save()
            callback_list.on_epoch_end(current, logs)
            if model.stop_training:
                break
        callback_list.on_train_end()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def wait_for_all_workers(strategy: tf.distribute.Strategy) -> None:
    """A last collective, so that no worker exits while the chief still writes the model folder.

    The chief hosts the cluster's coordination service, which reports a worker that left early as
    crashed.
    """
    ones = strategy.run(lambda: tf.constant(1, tf.int32))
    strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)
