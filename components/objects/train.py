"""Train the object classifier on crop shards and write its model folder, tracked in MLflow.

The model folder holds model.keras, history.json and train_info.json (with the MLflow run that
logged the model as `model`, so a push can register it). It uses the segmentation trainer's
strategy choice: one device, MirroredStrategy on several GPUs, MultiWorkerMirroredStrategy under a
TFJob's TF_CONFIG, where only the chief writes and logs.
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

    Returns:
        train_info: sizes, epochs, seconds, the final train and val accuracy, the MLflow run.

    Raises:
        ValueError: not a crops folder, or an empty split, before training starts.
        cityseg.components.tracking.TrackingUnavailableError: the MLflow server does not answer.
    """
    manifest = validate(config)
    is_chief = (task_from_env() or Task()).is_chief
    tracking_uri = tracking.connect(config.tracking_uri, work_dir=config.work_dir) if is_chief else None
    strategy, strategy_name, task = choose_strategy()

    import keras

    keras.utils.set_random_seed(config.seed)
    size = int(manifest["height"])
    steps_per_epoch = math.ceil(manifest["splits"]["train"]["examples"] / config.batch_size)
    train_ds = make_dataset(
        config.data, "train", config.batch_size, training=True, names=config.augment, seed=config.seed
    )
    val_ds = make_dataset(config.data, "val", config.batch_size, training=False)
    with strategy.scope():
        model = _compile(config, size, steps_per_epoch)
    log.info(
        "objects_resnet: %s params, %dx%d crops, %s", f"{model.count_params():,}", size, size, strategy_name
    )
    params = _params(config, manifest, strategy_name, strategy.num_replicas_in_sync)
    if is_chief:
        tracking.set_experiment(config.experiment, config.work_dir)
    with tracking.start_run(kfp_run_id=config.kfp_run_id) if is_chief else contextlib.nullcontext() as run:
        if run is not None:
            tracking.log_params(params)
        log_epoch = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: run is not None and tracking.log_metrics(dict(logs), step=epoch)
        )
        start = time.perf_counter()
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            class_weight=class_weights(manifest, config.class_weighting),
            callbacks=[log_epoch],
            verbose=0,
        ).history
        seconds = time.perf_counter() - start
        info = {
            **params,
            "classes": list(CLASSES),
            "crop_margin": manifest["filters"]["margin"],
            "num_params": int(model.count_params()),
            "training_time_s": round(seconds, 3),
            "train_accuracy": float(history["accuracy"][-1]),
            "val_accuracy": float(history["val_accuracy"][-1]),
            "mlflow_tracking_uri": tracking_uri,
            "mlflow_run_id": run.info.run_id if run is not None else None,
            "mlflow_experiment": config.experiment if run is not None else None,
        }
        if task.is_chief:
            _write_model_folder(Path(config.out), model, history, info)
            if run is not None:
                sample = next(iter(val_ds))[0][:1].numpy()
                tracking.log_keras_model(model, sample)
                tracking.log_files([Path(config.out, "history.json"), Path(config.out, "train_info.json")])
    log.info("trained in %.0f s: val accuracy %.3f", seconds, info["val_accuracy"])
    return info


def _write_model_folder(out: Path, model, history: dict, info: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / KERAS_FILE)
    (out / "history.json").write_text(
        json.dumps({k: [float(v) for v in vs] for k, vs in history.items()}, indent=1)
    )
    (out / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
