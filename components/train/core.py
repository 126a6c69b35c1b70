"""Train a segmentation model on cityseg shards and write the model folder, tracked in MLflow.

The model folder (the KFP Model artifact) holds model.keras, saved_model/, tflite/, history.json,
curves.png and train_info.json. `OUT/backup/` holds checkpoints while a run is in progress
(BackupAndRestore for `fit`, a CheckpointManager in the multi-worker loop of `cityseg.components.train.loop`):
a killed run started again with the same `out` resumes after its last finished epoch.
"""

import contextlib
import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path

from cityseg.components import storage, tracking
from cityseg.components.dataset import AugmentConfig, load_manifest, make_dataset
from cityseg.components.train.distribute import Task, choose_strategy, task_from_env
from cityseg.components.train.losses import CLASS_WEIGHTINGS, LOSSES, class_weights
from cityseg.components.train.models import MODELS, check_size

log = logging.getLogger(__name__)

AUGMENTATIONS = ("flip", "scale_crop", "color_jitter", "noise", "rotate")
LR_SCHEDULES = ("constant", "cosine", "plateau")
BACKUP_DIR = "backup"
# Score that early stopping and the LR plateau watch: the one the pipeline blesses models on.
MONITOR = "val_mean_dice"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; sizes default to the shards' own size."""

    data: str
    out: str
    # Defaults: the recipe that reaches val mean Dice ~0.80 on the synthetic data at 64x128 in about
    # five minutes of a free 2-core CPU (README, "Training recipe").
    model: str = "unet"
    loss: str = "ce_dice"
    epochs: int = 30
    batch_size: int = 8
    height: int | None = None
    width: int | None = None
    learning_rate: float = 3e-3
    lr_schedule: str = "cosine"
    early_stopping_patience: int = 0
    augment: tuple[str, ...] = ("flip",)
    mixed_precision: bool | None = None
    class_weighting: str = "median"
    ignore_void: bool = True
    weights: str | None = None
    seed: int = 0
    experiment: str = "cityseg"
    tracking_uri: str | None = None
    work_dir: str = "work"
    kfp_run_id: str | None = None
    # A sweep's MLflow parent run: this run becomes its child (tag mlflow.parentRunId).
    parent_run_id: str | None = None
    tflite: bool = True


def _choice(field: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{field}: unknown value {value!r}; choose one of {', '.join(allowed)}")


def validate(config: TrainConfig) -> dict:
    """Check the config and the shard folder before anything heavy starts.

    Returns:
        The shards' manifest.

    Raises:
        ValueError: naming the field or folder that is wrong.
    """
    _choice("model", config.model, MODELS)
    _choice("loss", config.loss, LOSSES)
    _choice("lr_schedule", config.lr_schedule, LR_SCHEDULES)
    _choice("class_weighting", config.class_weighting, CLASS_WEIGHTINGS)
    for name in config.augment:
        _choice("augment", name, AUGMENTATIONS)
    for field in ("epochs", "batch_size"):
        if getattr(config, field) < 1:
            raise ValueError(f"{field} must be at least 1, got {getattr(config, field)}")
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {config.learning_rate}")
    if config.early_stopping_patience < 0:
        raise ValueError(
            f"early_stopping_patience must be 0 (off) or more, got {config.early_stopping_patience}"
        )
    manifest = load_manifest(config.data)
    for split in ("train", "val"):
        if manifest.get("splits", {}).get(split, {}).get("examples", 0) < 1:
            raise ValueError(f"{config.data}: manifest.json lists no {split} examples")
    check_size(config.model, *_size(config, manifest))
    return manifest


def _size(config: TrainConfig, manifest: dict) -> tuple[int, int]:
    return config.height or int(manifest["height"]), config.width or int(manifest["width"])


def _atomic_json(path: Path, value) -> None:
    storage.write_text(str(path), json.dumps(value, indent=2, sort_keys=True) + "\n")


def _make_callbacks(config: TrainConfig, task: Task, out: Path, steps_per_epoch: int, backup: bool = True):
    """Keras callbacks in the order they must run: backup first, so a logged epoch is a saved one."""
    import keras

    from cityseg.components.train.progress import EpochRecorder

    callbacks = []
    if backup:
        callbacks.append(keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR / f"worker-{task.index}")))
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
    recorder = EpochRecorder(out / "history.json" if task.is_chief else None, steps_per_epoch, task.is_chief)
    callbacks.append(recorder)
    return callbacks, recorder


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    import keras

    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=steps_per_epoch * config.epochs, alpha=0.05
        )
    return config.learning_rate


def _datasets(config: TrainConfig, size: tuple[int, int], global_batch: int):
    import tensorflow as tf

    augment = AugmentConfig(**{name: name in config.augment for name in AUGMENTATIONS}, seed=config.seed)
    train_ds = make_dataset(
        config.data, "train", global_batch, augment=augment, shuffle=True, seed=config.seed, size=size
    )
    val_ds = make_dataset(config.data, "val", global_batch, size=size)
    # Every worker reads all shards and keeps its slice of each global batch: with few shard files,
    # file-level sharding would give workers unequal step counts and stall the collectives.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return train_ds.with_options(options), val_ds.with_options(options)


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
    }


@contextlib.contextmanager
def _mlflow_run(config: TrainConfig, task: Task, out: Path, params: dict):
    """The chief's MLflow run (None elsewhere); a resumed training continues the run it started."""
    if not task.is_chief:
        yield None
        return
    import mlflow
    from mlflow.exceptions import MlflowException

    tracking.set_experiment(config.experiment, config.work_dir)
    run_id_path = out / BACKUP_DIR / "mlflow_run_id"
    run_id = run_id_path.read_text().strip() if run_id_path.exists() else None
    if run_id is not None:
        try:
            mlflow.get_run(run_id)
        except MlflowException:
            log.warning("run %s of the interrupted training is not in this store; starting a new run", run_id)
            run_id = None
    with mlflow.start_run(
        run_id=run_id, parent_run_id=config.parent_run_id, tags=tracking.run_tags(config.kfp_run_id)
    ) as run:
        if run_id is None:
            mlflow.log_params(params)
            storage.write_text(str(run_id_path), run.info.run_id)
        yield run
    # The run finished: its checkpoints would only make the next run with this `out` skip training.
    shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)


def train(config: TrainConfig) -> dict:
    """Train `config.model` on the shards in `config.data` and write the model folder to `config.out`.

    Resumes from `out/backup/` when an earlier run with the same `out` was killed. On a cluster
    (TF_CONFIG) every worker calls this; only the chief writes the model folder and logs to MLflow.

    Returns:
        train_info (see the model-folder contract) plus `history` and `weights_sha256`.

    Raises:
        ValueError: bad config or shards, before training starts.
        cityseg.components.tracking.TrackingUnavailableError: the MLflow server does not answer.
    """
    manifest = validate(config)
    size = _size(config, manifest)
    out = Path(config.out)
    # Fail on an unreachable MLflow server before TensorFlow spends seconds starting up.
    is_chief = (task_from_env() or Task()).is_chief
    tracking_uri = tracking.connect(config.tracking_uri, work_dir=config.work_dir) if is_chief else None
    strategy, strategy_name, task = choose_strategy()

    import keras
    import tensorflow as tf

    from cityseg.components.train.confusion import ConfusionMatrixScore
    from cityseg.components.train.export import float32_copy, weights_sha256
    from cityseg.components.train.loop import fit_multi_worker, wait_for_all_workers
    from cityseg.components.train.losses import build_loss
    from cityseg.components.train.models import build_model

    mixed = config.mixed_precision
    if mixed is None:
        mixed = bool(tf.config.list_physical_devices("GPU"))
    keras.mixed_precision.set_dtype_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(config.seed)

    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    train_examples = int(manifest["splits"]["train"]["examples"])
    steps_per_epoch = math.ceil(train_examples / global_batch)
    train_ds, val_ds = _datasets(config, size, global_batch)
    weights = class_weights(
        manifest["splits"]["train"]["category_pixels"], config.class_weighting, config.ignore_void
    )
    with strategy.scope():
        model = build_model(config.model, *size, weights=config.weights)
        model.compile(
            optimizer=keras.optimizers.Adam(_learning_rate(config, steps_per_epoch)),
            loss=build_loss(config.loss, weights, config.ignore_void),
            metrics=[ConfusionMatrixScore("mean_dice"), ConfusionMatrixScore("mean_iou")],
        )
    log.info(
        "%s: %s params, %dx%d, %s x%d, mixed precision %s",
        config.model,
        f"{model.count_params():,}",
        *size,
        strategy_name,
        replicas,
        mixed,
    )
    multi_worker = strategy_name == "MultiWorkerMirroredStrategy"
    # The multi-worker loop checkpoints with a CheckpointManager instead of BackupAndRestore.
    callbacks, recorder = _make_callbacks(config, task, out, steps_per_epoch, backup=not multi_worker)
    params = _mlflow_params(
        dataclasses.replace(config, mixed_precision=mixed), size, strategy_name, replicas, manifest
    )
    with _mlflow_run(config, task, out, params) as run:
        recorder.run = run
        start = time.perf_counter()
        if multi_worker:
            fit_multi_worker(
                model,
                strategy,
                train_ds,
                val_ds,
                epochs=config.epochs,
                callbacks=callbacks,
                checkpoint_dir=out / BACKUP_DIR / "chief",
                is_chief=task.is_chief,
            )
        else:
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, verbose=0)
        training_time_s = time.perf_counter() - start
        checksum = weights_sha256(model)
        log.info("worker %d finished; weights sha256 %s", task.index, checksum)
        epochs_run = recorder.epochs_run
        images_per_s = train_examples * epochs_run / recorder.train_seconds if recorder.train_seconds else 0.0
        info = {
            "model": config.model,
            "loss": config.loss,
            "height": size[0],
            "width": size[1],
            "num_params": int(model.count_params()),
            "epochs": config.epochs,
            "epochs_run": epochs_run,
            "batch_size": config.batch_size,
            "training_time_s": round(training_time_s, 3),
            "train_images_per_s": round(images_per_s, 3),
            "strategy": strategy_name,
            "replicas": replicas,
            "data_manifest_hash": manifest.get("content_hash"),
            "mlflow_tracking_uri": tracking_uri,
            "mlflow_run_id": run.info.run_id if run else None,
            "mlflow_experiment": config.experiment if run else None,
        }
        if task.is_chief:
            export = float32_copy(model, config.model, *size)
            _write_model_folder(config, export, val_ds=val_ds, info=info, history=recorder.history, run=run)
        if multi_worker:
            wait_for_all_workers(strategy)
    return {**info, "history": recorder.history, "weights_sha256": checksum}


def _write_model_folder(config: TrainConfig, model, *, val_ds, info: dict, history: dict, run) -> None:
    """Exports, history, curves and train_info into `out`; the model and figures also go to MLflow."""
    import mlflow
    import numpy as np

    from cityseg.components.train.export import export_model
    from cityseg.components.train.progress import plot_curves

    representative = [image for images, _ in val_ds.take(4) for image in images.numpy()][:8]
    out = Path(config.out)
    export_model(model, out, representative, tflite=config.tflite)
    _atomic_json(out / "history.json", history)
    plot_curves(history, out / "curves.png")
    _atomic_json(out / "train_info.json", info)
    if run is None:
        return
    mlflow.log_metrics({key: info[key] for key in ("training_time_s", "train_images_per_s", "num_params")})
    sample = np.stack(representative[:1]).astype(np.float32)
    signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
    mlflow.keras.log_model(model, name="model", signature=signature)
    for name in ("history.json", "curves.png", "train_info.json"):
        mlflow.log_artifact(str(out / name))
    if config.tflite:
        mlflow.log_artifacts(str(out / "tflite"), artifact_path="tflite")
