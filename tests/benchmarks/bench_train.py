"""Training benchmarks: input-pipeline overhead, CPU images/s and parameters per model at 256x512,
bfloat16 against float32 on this CPU, and logging the model to MLflow.

The GPU figures (mixed precision at 512x1024) come from `tests/benchmarks/gpu_train.py`, run on a
lent GPU machine; they are read from gpu_results.json beside this file and reported as they are.
"""

import json
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cityseg.components.dataset import AugmentConfig, make_dataset
from cityseg.components.train.losses import build_loss
from cityseg.components.train.models import MODELS, build_model
from tests.benchmarks.common import Result, machine, timed
from tests.components.train.conftest import write_shards

COMMAND = "make bench (tests/benchmarks/bench_train.py)"
GPU_RESULTS = Path(__file__).with_name("gpu_results.json")


def _compiled(name: str, height: int, width: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model(name, height, width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=build_loss("ce"))
    return model


def _fit_seconds(model: keras.Model, data) -> float:
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return time.perf_counter() - start


def pipeline_overhead(work_dir: Path, examples: int = 96, batch: int = 8, rounds: int = 2) -> Result:
    """fit() fed by make_dataset from shards (with flip) against fit() on the same batches in memory."""
    shards = write_shards(work_dir / "shards", {"train": examples}, 64, 128)
    dataset = make_dataset(shards, "train", batch, augment=AugmentConfig(flip=True), shuffle=True)
    in_memory = (
        tf.data.Dataset.from_tensor_slices(
            tuple(
                np.concatenate(parts)
                for parts in zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
            )
        )
        .batch(batch)
        .cache()
    )
    model = _compiled("unet_mini", 64, 128)
    _fit_seconds(model, dataset)  # trace and warm up both inputs
    _fit_seconds(model, in_memory)
    # Alternate the two, best of each: other load on the machine hits both alike.
    timings = [(_fit_seconds(model, dataset), _fit_seconds(model, in_memory)) for _ in range(rounds)]
    from_shards = examples / min(t[0] for t in timings)
    in_memory_rate = examples / min(t[1] for t in timings)
    overhead = 1 - from_shards / in_memory_rate
    return Result(
        name="train images/s through make_dataset (unet_mini, 64x128, batch 8)",
        value=round(from_shards, 2),
        unit="images/s",
        baseline_name="model.fit on the same batches held in memory",
        baseline_value=round(in_memory_rate, 2),
        goal="under 10% overhead (ratio above 0.90)",
        command=COMMAND,
        machine=machine(),
        detail=f"overhead {overhead:.1%} over {examples} examples",
    )


def model_throughput(
    name: str, height: int = 256, width: int = 512, batch: int = 2, steps: int = 3
) -> Result:
    """Training images/s of one model on random batches, and its parameter count."""
    model = _compiled(name, height, width)
    rng = np.random.default_rng(0)
    x = rng.random((batch, height, width, 3), dtype=np.float32)
    y = rng.integers(0, 8, (batch, height, width)).astype(np.int32)
    model.train_on_batch(x, y)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model.train_on_batch(x, y)
    images_per_s = batch * steps / (time.perf_counter() - start)
    # CPU seconds do not grow when other processes share the cores, so they give the figure for an
    # otherwise idle machine too (an estimate: it assumes TensorFlow keeps every core busy).
    idle_estimate = batch * steps / (time.process_time() - cpu_start) * os.cpu_count()
    return Result(
        name=f"train images/s, {name} at {height}x{width} on CPU",
        value=round(images_per_s, 2),
        unit="images/s",
        command=COMMAND,
        machine=machine(),
        detail=f"{model.count_params():,} params; batch {batch}, {steps} steps after one warm-up step; "
        f"{idle_estimate:.2f} images/s from CPU time on an idle machine",
    )


def _images_per_s(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return len(x) * steps / (time.perf_counter() - start)


def cpu_precision(
    name: str, height: int, width: int, batch: int = 4, steps: int = 25, rounds: int = 2
) -> Result:
    """Training images/s under the policy `set_precision` picks here against float32, alternated."""
    from cityseg.components.train.build import set_precision

    rng = np.random.default_rng(0)
    x = rng.random((batch, height, width, 3), dtype=np.float32)
    y = rng.integers(0, 8, (batch, height, width)).astype(np.int32)
    auto = set_precision(None)
    best: dict[str, float] = {}
    try:
        # Alternate the two, best of each: other load on the machine hits both alike.
        for policy in ("float32", auto) * rounds:
            keras.mixed_precision.set_dtype_policy(policy)
            rate = _images_per_s(_compiled(name, height, width), x, y, steps)
            best[policy] = max(best.get(policy, 0.0), rate)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    return Result(
        name=f"train images/s, {name} at {height}x{width}, {auto} (the default here) on CPU",
        value=round(best[auto], 2),
        unit="images/s",
        baseline_name="float32 (--no-mixed-precision)",
        baseline_value=round(best["float32"], 2),
        goal="ratio > 1.0 where the CPU computes bfloat16 natively",
        command=COMMAND,
        machine=machine(),
        detail=f"batch {batch}, {steps} train_on_batch steps after a warm-up, best of {rounds} alternated",
    )


def model_logging(work_dir: Path, rounds: int = 2) -> Result:
    """Seconds to log a model to MLflow with its requirements stated (the train step) or inferred."""
    import mlflow

    from cityseg.components import tracking

    mlflow.set_tracking_uri(f"sqlite:///{work_dir / 'mlflow.db'}")
    # A sqlite store's default artifact root is ./mlruns in the working directory, the repository.
    tracking.set_experiment("bench-model-logging", work_dir)
    model = build_model("unet_mini", 64, 128)
    sample = np.zeros((1, 64, 128, 3), np.float32)
    signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
    stated, inferred = [], []
    for _ in range(rounds):
        with mlflow.start_run():
            stated.append(timed(tracking.log_keras_model, model, sample)[0])
        with mlflow.start_run():
            inferred.append(timed(mlflow.keras.log_model, model, name="model", signature=signature)[0])
    return Result(
        name="seconds to log the trained model to MLflow (unet_mini), requirements stated",
        value=round(min(stated), 3),
        unit="s",
        baseline_name="mlflow.keras.log_model inferring the requirements (loads the model in a subprocess)",
        baseline_value=round(min(inferred), 3),
        goal="ratio < 0.2",
        command=COMMAND,
        machine=machine(),
        detail=f"local sqlite store, best of {rounds} alternated",
    )


def gpu_results() -> list[Result]:
    """The mixed-precision GPU figures recorded by gpu_train.py, with the device they ran on."""
    if not GPU_RESULTS.exists():
        return []
    report = json.loads(GPU_RESULTS.read_text())
    return [
        Result(
            name=f"train images/s, {r['model']} at {r['height']}x{r['width']}, {r['policy']}",
            value=r["images_per_s"],
            unit="images/s",
            command=report.get("command", ""),
            machine=f"{report['device']} ({report['date']}, Keras on {report['backend']})",
            detail=f"{r['params']:,} params; batch {r['batch_size']}; {r.get('note', report['note'])}",
        )
        for r in report["results"]
    ]


def run(work_dir: Path) -> list[Result]:
    """All training benchmarks; about two minutes on a free 2-core machine."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return [
        pipeline_overhead(work_dir),
        *(model_throughput(name) for name in MODELS),
        cpu_precision("unet_mini", 64, 128),
        cpu_precision("unet", 96, 192),
        model_logging(work_dir),
        *gpu_results(),
    ]


if __name__ == "__main__":
    for result in run(Path("work/bench/train")):
        print(result)
