"""Train a segmentation model on cityseg shards and write the model folder, tracked in MLflow.

The model folder (the KFP Model artifact) holds model.keras, saved_model/, tflite/, history.json,
curves.png and train_info.json. `OUT/backup/` (`cityseg.components.train.backup`) holds what a
run in progress has done, stage by stage: a killed run started again with the same `out` resumes
after its last finished epoch, or finishes the export, and never logs an epoch twice.
"""

import contextlib
import dataclasses
import logging
import math
from pathlib import Path

from cityseg.components import splits, tracking
from cityseg.components.dataset import load_manifest
from cityseg.components.shardcheck import verify_shards
from cityseg.components.train.backup import BACKUP_DIR, TRAINED, Backup
from cityseg.components.train.config import AUGMENTATIONS, TrainConfig, check_config
from cityseg.components.train.distribute import Task, choose_strategy, task_from_env

# Re-exported: callers import these names from the step's core.
__all__ = ["AUGMENTATIONS", "BACKUP_DIR", "TrainConfig", "train", "validate"]

log = logging.getLogger(__name__)


def validate(config: TrainConfig) -> dict:
    """Check the config (`check_config`) and the shard folder before anything heavy starts.

    Returns:
        The shards' manifest.

    Raises:
        ValueError: naming the field or folder that is wrong.
    """
    check_config(dataclasses.replace(config, height=None, width=None))
    manifest = load_manifest(config.data)
    # val is not read here: it judges the trained model, so nothing in training may depend on it.
    for split in (splits.TRAIN, splits.SELECT):
        if manifest.get("splits", {}).get(split, {}).get("examples", 0) < 1:
            hint = (
                ": models are chosen on it; shard again with `cityseg shard` (select_fraction > 0, "
                "enough train frames)"
                if split == splits.SELECT
                else ""
            )
            raise ValueError(f"{config.data}: manifest.json lists no {split} examples{hint}")
    height, width = _size(config, manifest)
    check_config(dataclasses.replace(config, height=height, width=width))
    # Before the MLflow run and training start: a lying manifest or a damaged shard stops here.
    verify_shards(config.data, manifest)
    return manifest


def _size(config: TrainConfig, manifest: dict) -> tuple[int, int]:
    return config.height or int(manifest["height"]), config.width or int(manifest["width"])


def _mlflow_params(config: TrainConfig, size, strategy_name: str, replicas: int, manifest: dict) -> dict:
    return {
        "model": config.model,
        "loss": config.loss,
        "height": size[0],
        "width": size[1],
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "lr_schedule": config.lr_schedule,
        "early_stopping_patience": config.early_stopping_patience,
        "augment": ",".join(config.augment) or "none",
        "class_weighting": config.class_weighting,
        "ignore_void": config.ignore_void,
        "mixed_precision": config.mixed_precision,
        "seed": config.seed,
        "strategy": strategy_name,
        "replicas": replicas,
        "data_manifest_hash": manifest.get("content_hash"),
        "train_examples": manifest["splits"]["train"]["examples"],
        # Early stopping, the LR plateau, the best weights and int8 calibration read this split only.
        "selection_split": splits.SELECT,
        "select_examples": manifest["splits"][splits.SELECT]["examples"],
    }


@contextlib.contextmanager
def _mlflow_run(config: TrainConfig, task: Task, backup: Backup, params: dict):
    """The chief's MLflow run (None elsewhere); a resumed training continues the run it started."""
    if not task.is_chief:
        yield None
        return
    tracking.set_experiment(config.experiment, config.work_dir)
    run_id = backup.run_id()
    if run_id is not None and not tracking.run_exists(run_id):
        log.warning("run %s of the interrupted training is not in this store; starting a new run", run_id)
        run_id = None
    with tracking.start_run(run_id, config.parent_run_id, config.kfp_run_id) as run:
        if run_id is None:
            tracking.log_params(params)
            backup.save_run_id(run.info.run_id)
        yield run
    # Only now that the run has ended: until then a rerun must find where this one stopped.
    backup.remove()


def _fit(config: TrainConfig, strategy, task: Task, size, manifest: dict, datasets) -> tuple[object, dict]:
    """Build and train the model, resuming from the backup; returns it and the summary across resumes."""
    import tensorflow as tf

    from cityseg.components.train.build import SEGMENTATION_SCORES, build_callbacks, build_model
    from cityseg.components.train.multi_worker_loop import fit_multi_worker

    train_split = manifest["splits"]["train"]
    # The schedule counts global batches, the same for every number of replicas.
    steps_per_epoch = math.ceil(int(train_split["examples"]) / config.batch_size)
    model = build_model(config, strategy, size, steps_per_epoch, train_split["category_pixels"])
    log.info("%s: %s params, %dx%d", config.model, f"{model.count_params():,}", *size)
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    # The multi-worker loop checkpoints with a CheckpointManager instead of BackupAndRestore.
    callbacks, recorder = build_callbacks(
        config, task, Path(config.out), steps_per_epoch, backup_and_restore=not multi_worker
    )
    train_ds, select_ds = datasets
    if multi_worker:
        checkpoint_dir = Backup(config.out).root / "chief"
        fit_multi_worker(
            model, strategy, train_ds, select_ds, epochs=config.epochs, callbacks=callbacks,
            scores=SEGMENTATION_SCORES, checkpoint_dir=checkpoint_dir, is_chief=task.is_chief,
        )  # fmt: skip
    else:
        # make_dataset shuffles; Keras would only warn that it cannot shuffle a tf.data.Dataset.
        model.fit(
            train_ds,
            validation_data=select_ds,
            epochs=config.epochs,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )
    return model, recorder.summary()


def _train_info(config: TrainConfig, size, manifest: dict, model, summary: dict, run_info: dict) -> dict:
    """train_info.json: what was trained, and the epochs and seconds of every part of the run."""
    epochs_run, train_seconds = len(summary["epoch_seconds"]), sum(summary["train_seconds"])
    images = int(manifest["splits"]["train"]["examples"]) * epochs_run
    return {
        "model": config.model,
        "loss": config.loss,
        "height": size[0],
        "width": size[1],
        "num_params": int(model.count_params()),
        "epochs": config.epochs,
        "epochs_run": epochs_run,
        "batch_size": config.batch_size,
        "training_time_s": round(sum(summary["epoch_seconds"]), 3),
        "train_images_per_s": round(images / train_seconds, 3) if train_seconds else 0.0,
        "data_manifest_hash": manifest.get("content_hash"),
        **run_info,
    }


def _select_scores(model, select_ds) -> dict:
    """`kept_select_mean_dice` / `_iou`: the selection split's scores of the weights the run keeps."""
    import numpy as np

    from cityseg.components import metrics
    from cityseg.components.train.confusion import confusion_counts

    matrix = sum(
        np.asarray(confusion_counts(masks, model(images, training=False))) for images, masks in select_ds
    )
    scores = metrics.scores(matrix)
    return {f"kept_select_{name}": scores[name] for name in ("mean_dice", "mean_iou")}


def _finish(config: TrainConfig, backup: Backup, model, select_ds, info: dict, history: dict, run) -> None:
    """Write the model folder, then log it to the run: each stage once, even across kills."""
    import numpy as np

    from cityseg.components.train.export import write_model_folder

    out = Path(config.out)
    # int8 calibration reads the selection split: val stays unseen by every choice.
    representative = [image for images, _ in select_ds.take(4) for image in images.numpy()][:8]
    if not backup.done("exported"):
        write_model_folder(model, out, representative, history=history, info=info, tflite=config.tflite)
        backup.mark("exported")
    if run is None or backup.done("logged"):
        return
    logged = (
        "training_time_s",
        "train_images_per_s",
        "num_params",
        "kept_select_mean_dice",
        "kept_select_mean_iou",
    )
    tracking.log_metrics({key: info[key] for key in logged if info[key] is not None})
    tracking.log_keras_model(model, np.stack(representative[:1]).astype(np.float32))
    tracking.log_files([out / name for name in ("history.json", "curves.png", "train_info.json")])
    if config.tflite:
        tracking.log_files([out / "tflite"])
    backup.mark("logged")


def train(config: TrainConfig) -> dict:
    """Train `config.model` on the shards in `config.data` and write the model folder to `config.out`.

    Resumes from `out/backup/` when an earlier run with the same `out` was killed, whether in
    training or in the export. On a cluster (TF_CONFIG) every worker calls this; only the chief
    writes the model folder and logs to MLflow. `batch_size` is the global batch.

    Returns:
        train_info (see the model-folder contract) plus `history` and `float32_weights_sha256`.

    Raises:
        ValueError: bad config or shards, before training starts.
        cityseg.components.tracking.TrackingUnavailableError: the MLflow server does not answer.
    """
    manifest = validate(config)
    size = _size(config, manifest)
    backup = Backup(config.out)
    # Fail on an unreachable MLflow server before TensorFlow spends seconds starting up.
    is_chief = (task_from_env() or Task()).is_chief
    tracking_uri = tracking.connect(config.tracking_uri, work_dir=config.work_dir) if is_chief else None
    strategy, strategy_name, task = choose_strategy()

    import keras

    from cityseg.components.train.build import build_inputs, choose_jit_compile, set_precision
    from cityseg.components.train.export import float32_copy, float32_model, float32_weights_sha256
    from cityseg.components.train.multi_worker_loop import wait_for_all_workers

    precision = set_precision(config.mixed_precision)
    keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size < replicas:
        raise ValueError(
            f"batch_size {config.batch_size} is the global batch: give each of {replicas} replicas one"
        )
    log.info("%s x%d, global batch %d, %s", strategy_name, replicas, config.batch_size, precision)
    datasets = build_inputs(config, size)
    mixed = dataclasses.replace(config, mixed_precision=precision != "float32")
    params = _mlflow_params(mixed, size, strategy_name, replicas, manifest) | {
        "precision": precision,
        "jit_compile": choose_jit_compile(strategy),
    }
    with _mlflow_run(config, task, backup, params) as run:
        if backup.done(TRAINED):
            export = float32_model(config.model, *size)
            summary = backup.load_trained(export)
        else:
            model, summary = _fit(config, strategy, task, size, manifest, datasets)
            export = float32_copy(model, config.model, *size)
            if task.is_chief:
                backup.save_trained(export, summary)
        checksum = float32_weights_sha256(export)
        log.info("worker %d finished; weights sha256 %s", task.index, checksum)
        run_info = {
            "strategy": strategy_name,
            "replicas": replicas,
            "mlflow_tracking_uri": tracking_uri,
            "mlflow_run_id": run.info.run_id if run else None,
            "mlflow_experiment": config.experiment if run else None,
            "selection_split": splits.SELECT,
            **_select_scores(export, datasets[1]),
        }
        info = _train_info(config, size, manifest, export, summary, run_info)
        if task.is_chief:
            _finish(config, backup, export, datasets[1], info, summary["history"], run)
        if strategy_name == "MultiWorkerMirroredStrategy":
            wait_for_all_workers(strategy)
    return {**info, "history": summary["history"], "float32_weights_sha256": checksum}
