"""Train the object classifier on crop shards and write its model folder, tracked in MLflow.

The model folder holds model.keras, history.json and train_info.json (with the MLflow run that
logged the model as `model`, so a push can register it). It uses the segmentation trainer's
strategy choice: one device, MirroredStrategy on several GPUs, MultiWorkerMirroredStrategy under
TF_CONFIG (a TFJob's pods, or `cityseg objects train --workers N`). There Keras's `fit` fails
(keras-team/keras#20585), so the workers train with the segmentation trainer's custom loop; every
worker reads every crop and keeps its slice of each global batch; only the chief writes the model
folder and logs to MLflow, and the others wait until it has. The loop keeps no checkpoints: the
classifier trains in minutes, and a restarted run starts over.
"""

import contextlib
import json
import logging
import math
import time
from pathlib import Path

from cityseg.components import tracking
from cityseg.components.crops.schema import CLASSES, NUM_CLASSES
from cityseg.components.objects.config import ObjectsTrainConfig
from cityseg.components.objects.data import class_weights, load_crops_manifest, make_dataset
from cityseg.components.train.distribute import Task, choose_strategy, task_from_env

log = logging.getLogger(__name__)

KERAS_FILE = "model.keras"


def validate(config: ObjectsTrainConfig) -> dict:
    """The crops manifest of `config.data`, once train and val hold crops.

    Raises:
        ValueError: naming the folder, when it is no crops folder or a split is empty.
    """
    manifest = load_crops_manifest(config.data)
    for split in ("train", "val"):
        if manifest["splits"].get(split, {}).get("examples", 0) < 1:
            raise ValueError(f"{config.data}: manifest.json lists no {split} crops")
    return manifest


def _inputs(config: ObjectsTrainConfig, manifest: dict, replicas: int):
    """(train batches, val batches, optimizer steps per epoch) of the global `batch_size`.

    The class weights ride along as each train crop's sample weight. With several replicas the
    train split's last, partial batch is dropped: split between the replicas it can leave one with
    no crop, and batch norm over an empty batch gives NaN statistics, which the replicas then share.

    Raises:
        ValueError: several replicas, and fewer train crops than one global batch.
    """
    examples = manifest["splits"]["train"]["examples"]
    drop = replicas > 1
    steps = examples // config.batch_size if drop else math.ceil(examples / config.batch_size)
    if steps < 1:
        raise ValueError(
            f"{config.data}: {examples} train crops fill no global batch of {config.batch_size} "
            f"for {replicas} replicas; lower batch_size"
        )
    weights = class_weights(manifest, config.class_weighting)
    train_ds = make_dataset(
        config.data, "train", config.batch_size, training=True, names=config.augment, seed=config.seed,
        weights=weights, drop_remainder=drop,
    )  # fmt: skip
    val_ds = make_dataset(config.data, "val", config.batch_size, training=False)
    return train_ds, val_ds, steps


def _correct_and_total(labels, logits):
    """[correct predictions, crops] of one batch: what the multi-worker loop sums into accuracy."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int64)
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1), labels), tf.int64))
    return tf.stack([correct, tf.size(labels, out_type=tf.int64)])


def _accuracy(counts) -> dict:
    return {"accuracy": float(counts[0]) / max(int(counts[1]), 1)}


def _fit(strategy, task: Task, model, datasets, epochs: int, callbacks: list) -> dict:
    """Train `model`: `fit` on one worker, the custom loop on several; returns the history of every epoch.

    The loop logs what `fit` logs, under the same names (loss, accuracy, val_loss, val_accuracy).
    """
    import keras
    import tensorflow as tf

    from cityseg.components.train.multi_worker_loop import EpochScores, fit_multi_worker

    history = keras.callbacks.History()
    train_ds, val_ds = datasets
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        fit_multi_worker(
            model, strategy, train_ds, val_ds, epochs=epochs, callbacks=[*callbacks, history],
            scores=EpochScores(_correct_and_total, _accuracy), checkpoint_dir=None, is_chief=task.is_chief,
        )  # fmt: skip
    else:
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=[*callbacks, history], verbose=0)
    return history.history


def _copy_outside_strategy(model, size: int, width: int):
    """The trained weights in a model built outside the strategy, which the chief alone can save and run."""
    from cityseg.components.objects.model import build_classifier

    copy = build_classifier(size, NUM_CLASSES, width)
    copy.set_weights(model.get_weights())
    return copy


def _compile(config: ObjectsTrainConfig, size: int, steps_per_epoch: int):
    import keras

    from cityseg.components.objects.model import build_classifier

    model = build_classifier(size, NUM_CLASSES, config.width)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps_per_epoch * config.epochs)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def _params(config: ObjectsTrainConfig, manifest: dict, strategy_name: str, replicas: int) -> dict:
    return {
        "model": "objects_resnet",
        "width": config.width,
        "size": manifest["height"],
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "augment": ",".join(config.augment) or "none",
        "class_weighting": config.class_weighting,
        "seed": config.seed,
        "strategy": strategy_name,
        "replicas": replicas,
        "data_manifest_hash": manifest["content_hash"],
        "train_examples": manifest["splits"]["train"]["examples"],
    }


def train(config: ObjectsTrainConfig) -> dict:
    """Train the classifier on `config.data` and write the model folder `config.out`.

    On a cluster (TF_CONFIG) every worker calls this; only the chief writes the model folder and
    logs to MLflow. `batch_size` is the global batch.

    Returns:
        train_info: sizes, epochs, seconds, the final train and val accuracy, the MLflow run.

    Raises:
        ValueError: not a crops folder, an empty split, or a global batch too small for the
            replicas, before training starts.
        cityseg.components.tracking.TrackingUnavailableError: the MLflow server does not answer.
    """
    manifest = validate(config)
    is_chief = (task_from_env() or Task()).is_chief
    tracking_uri = tracking.connect(config.tracking_uri, work_dir=config.work_dir) if is_chief else None
    strategy, strategy_name, task = choose_strategy()

    import keras

    from cityseg.components.train.multi_worker_loop import wait_for_all_workers

    keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size < replicas:
        raise ValueError(
            f"batch_size {config.batch_size} is the global batch: give each of {replicas} replicas one"
        )
    size = int(manifest["height"])
    train_ds, val_ds, steps_per_epoch = _inputs(config, manifest, replicas)
    with strategy.scope():
        model = _compile(config, size, steps_per_epoch)
    log.info("objects_resnet: %s params, %s x%d", f"{model.count_params():,}", strategy_name, replicas)
    params = _params(config, manifest, strategy_name, replicas)
    if task.is_chief:
        tracking.set_experiment(config.experiment, config.work_dir)
    chief_run = (
        tracking.start_run(kfp_run_id=config.kfp_run_id) if task.is_chief else contextlib.nullcontext()
    )
    with chief_run as run:
        if run is not None:
            tracking.log_params(params)
        log_epoch = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: run is not None and tracking.log_metrics(dict(logs), step=epoch)
        )
        start = time.perf_counter()
        history = _fit(strategy, task, model, (train_ds, val_ds), config.epochs, [log_epoch])
        seconds = time.perf_counter() - start
        export = _copy_outside_strategy(model, size, config.width)
        info = _train_info(params, manifest, export, history, seconds) | {
            "mlflow_tracking_uri": tracking_uri,
            "mlflow_run_id": run.info.run_id if run is not None else None,
            "mlflow_experiment": config.experiment if run is not None else None,
        }
        if task.is_chief:
            _write_model_folder(Path(config.out), export, history, info)
            if run is not None:
                # A registered version carries train_info.json: whoever loads it (the server) cuts
                # crops with the margin it names.
                info_file = Path(config.out, "train_info.json")
                tracking.log_keras_model(export, next(iter(val_ds))[0][:1].numpy(), extra_files=(info_file,))
                tracking.log_files([Path(config.out, "history.json"), info_file])
        if strategy_name == "MultiWorkerMirroredStrategy":
            wait_for_all_workers(strategy)
    log.info("trained in %.0f s: val accuracy %.3f", seconds, info["val_accuracy"])
    return info


def _train_info(params: dict, manifest: dict, model, history: dict, seconds: float) -> dict:
    return {
        **params,
        "classes": list(CLASSES),
        "crop_margin": manifest["filters"]["margin"],
        "num_params": int(model.count_params()),
        "training_time_s": round(seconds, 3),
        "train_accuracy": float(history["accuracy"][-1]),
        "val_accuracy": float(history["val_accuracy"][-1]),
    }


def _write_model_folder(out: Path, model, history: dict, info: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / KERAS_FILE)
    (out / "history.json").write_text(
        json.dumps({k: [float(v) for v in vs] for k, vs in history.items()}, indent=1)
    )
    (out / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
